"""SageMaker's image-classification hyperparameters: defaults, parsing, rules, files."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgcls_desktop.core.hyperparams import (
    FIELDS,
    GROUPS,
    KINDS,
    DataFacts,
    HyperparameterError,
    HyperParameters,
    Problem,
    apply_overrides,
    batch_memory,
    load_hyperparameters,
    save_hyperparameters,
    validate_field,
)

NAMES = [spec.name for spec in FIELDS]

# As SageMaker documents them (DESIGN.md §4).
SAGEMAKER_DEFAULTS = {
    "num_classes": None,
    "num_training_samples": None,
    "num_layers": 152,
    "image_shape": "3,224,224",
    "epochs": 30,
    "learning_rate": 0.1,
    "lr_scheduler_step": None,
    "lr_scheduler_factor": 0.1,
    "mini_batch_size": 32,
    "optimizer": "sgd",
    "momentum": 0.9,
    "weight_decay": 0.0001,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "eps": 1e-8,
    "gamma": 0.9,
    "augmentation_type": "none",
    "resize": None,
    "multi_label": 0,
    "use_weighted_loss": 0,
    "use_pretrained_model": 0,
    "top_k": None,
    "precision_dtype": "float32",
    "checkpoint_frequency": None,
    "early_stopping": False,
    "early_stopping_min_epochs": 10,
    "early_stopping_patience": 5,
    "early_stopping_tolerance": 0.0,
    "kv_store": None,
}
OUR_DEFAULTS = {
    "freeze_backbone": 0,
    "allow_large_images": False,
}  # ours, not SageMaker's (DESIGN.md §4)

# Small, valid and far from every default.
CUSTOM = HyperParameters(
    num_classes=3,
    num_training_samples=120,
    num_layers=20,
    image_shape="3,32,32",
    epochs=12,
    learning_rate=0.05,
    lr_scheduler_step="4,8",
    lr_scheduler_factor=0.5,
    mini_batch_size=16,
    optimizer="adam",
    momentum=0.0,
    weight_decay=0.0,
    beta_1=0.8,
    beta_2=0.99,
    eps=1e-7,
    gamma=0.95,
    augmentation_type="crop_color",
    resize=40,
    multi_label=1,
    use_weighted_loss=1,
    use_pretrained_model=0,
    top_k=2,
    precision_dtype="float16",
    checkpoint_frequency=3,
    early_stopping=True,
    early_stopping_min_epochs=5,
    early_stopping_patience=2,
    early_stopping_tolerance=0.01,
    kv_store="local",
)


def problems_of(error: pytest.ExceptionInfo[HyperparameterError]) -> dict[str, str]:
    return {problem.name: problem.message for problem in error.value.problems}


# --- defaults and forms -------------------------------------------------------------------


def test_defaults_are_sagemakers_with_their_types() -> None:
    hp = HyperParameters()
    assert dataclasses.asdict(hp) == {**SAGEMAKER_DEFAULTS, **OUR_DEFAULTS}
    for name, value in {**SAGEMAKER_DEFAULTS, **OUR_DEFAULTS}.items():
        assert type(getattr(hp, name)) is type(value), name
    assert hp.validate() == []


@pytest.mark.parametrize("hp", [HyperParameters(), CUSTOM], ids=["defaults", "custom"])
def test_string_form_round_trip(hp: HyperParameters) -> None:
    text = hp.to_sagemaker()
    assert all(isinstance(value, str) for value in text.values())
    assert HyperParameters.from_mapping(text) == hp


def test_string_form_spelling() -> None:
    assert HyperParameters().to_sagemaker() == {
        "num_layers": "152",
        "image_shape": "3,224,224",
        "epochs": "30",
        "mini_batch_size": "32",
        "multi_label": "0",
        "use_pretrained_model": "0",
        "optimizer": "sgd",
        "learning_rate": "0.1",
        "momentum": "0.9",
        "weight_decay": "0.0001",
        "beta_1": "0.9",
        "beta_2": "0.999",
        "eps": "1e-08",
        "gamma": "0.9",
        "lr_scheduler_factor": "0.1",
        "early_stopping": "false",
        "early_stopping_min_epochs": "10",
        "early_stopping_patience": "5",
        "early_stopping_tolerance": "0.0",
        "use_weighted_loss": "0",
        "precision_dtype": "float32",
    }
    custom = CUSTOM.to_sagemaker()
    assert custom["early_stopping"] == "true"
    assert custom["multi_label"] == "1"
    assert custom["lr_scheduler_step"] == "4,8"
    assert custom["augmentation_type"] == "crop_color"


def test_sagemaker_all_strings_form() -> None:
    hp = HyperParameters.from_mapping(
        {
            "num_classes": "10",
            "num_training_samples": "50000",
            "epochs": "30",
            "early_stopping": "True",
            "multi_label": "1",
            "lr_scheduler_step": "10, 20",
            "image_shape": "3, 224, 224",
            "eps": "0.00000001",
            "optimizer": "NAG",
        }
    )
    assert (hp.num_classes, hp.num_training_samples, hp.epochs) == (10, 50000, 30)
    assert hp.early_stopping is True and hp.multi_label == 1
    assert hp.lr_scheduler_step == "10,20" and hp.image_shape == "3,224,224"
    assert hp.eps == 1e-8 and hp.optimizer == "nag"


def test_native_json_values() -> None:
    hp = HyperParameters.from_mapping(
        {
            "epochs": 30,
            "early_stopping": True,
            "learning_rate": 1,
            "lr_scheduler_step": [10, 20],
            "image_shape": [1, 28, 28],
            "num_layers": 20.0,
            "multi_label": True,
            "use_weighted_loss": 1,
            "kv_store": None,
        }
    )
    assert hp.epochs == 30 and hp.early_stopping is True
    assert hp.learning_rate == 1.0 and type(hp.learning_rate) is float
    assert hp.lr_scheduler_step == "10,20" and hp.image_shape == "1,28,28"
    assert hp.num_layers == 20 and type(hp.num_layers) is int
    assert hp.multi_label == 1 and type(hp.multi_label) is int
    assert hp.kv_store is None


def test_empty_or_null_means_the_default() -> None:
    hp = HyperParameters.from_mapping(
        {"epochs": "", "top_k": " ", "augmentation_type": "", "resize": None}
    )
    assert hp == HyperParameters()


def test_no_augmentation_is_left_out_of_the_string_form() -> None:
    assert "augmentation_type" not in HyperParameters(augmentation_type="none").to_sagemaker()
    assert HyperParameters.from_mapping({"augmentation_type": "none"}) == HyperParameters()


def test_sagemaker_bookkeeping_names_are_ignored() -> None:
    hp = HyperParameters.from_mapping({"_tuning_objective_metric": "validation:accuracy"})
    assert hp == HyperParameters()


def test_properties() -> None:
    assert CUSTOM.shape == (3, 32, 32)
    assert CUSTOM.lr_steps == (4, 8)
    assert CUSTOM.is_multi_label
    assert HyperParameters().lr_steps == ()
    assert not HyperParameters().is_multi_label


# --- values on their own ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        ("num_classes", "1", "1 is too small"),
        ("num_classes", "2.5", "not a whole number"),
        ("num_training_samples", "0", "too small"),
        ("num_layers", "19", "not a valid choice"),
        ("num_layers", "many", "not a number"),
        ("image_shape", "3,224", "2 number(s), not 3"),
        ("image_shape", "2,32,32", "2 channels"),
        ("image_shape", "3,0,32", "height or width below 1"),
        ("image_shape", "3,40000,40000", "height or width above 16,384"),
        ("image_shape", "3xx224", "not a list of whole numbers"),
        ("image_shape", True, "not a list of whole numbers"),
        ("epochs", "0", "too small"),
        ("epochs", "1e300", "1e+300 is too large"),
        ("epochs", 100_001, "100001 is too large"),
        ("num_classes", "100000000", "819.2 GB as float32"),
        ("num_training_samples", "1e10", "too large"),
        ("mini_batch_size", "1e300", "too large"),
        ("resize", "16385", "too large"),
        ("top_k", "100001", "too large"),
        ("checkpoint_frequency", "100001", "too large"),
        ("early_stopping_min_epochs", "1e6", "too large"),
        ("early_stopping_patience", "100001", "too large"),
        ("lr_scheduler_step", "10,1000000", "epoch above 100,000"),
        ("lr_scheduler_step", ",".join(map(str, range(1, 1002))), "1,001 steps"),
        ("epochs", "ten", "not a number"),
        ("epochs", True, "not a number"),
        ("learning_rate", "0", "too small"),
        ("learning_rate", "1.5", "too large"),
        ("learning_rate", "inf", "not a finite number"),
        ("lr_scheduler_step", "20,10", "not strictly increasing"),
        ("lr_scheduler_step", "10,10", "not strictly increasing"),
        ("lr_scheduler_step", "0,10", "epoch below 1"),
        ("lr_scheduler_step", "10;20", "not a list of whole numbers"),
        ("lr_scheduler_factor", "0", "too small"),
        ("lr_scheduler_factor", "1.01", "too large"),
        ("mini_batch_size", "0", "too small"),
        ("optimizer", "adagrad", "not a valid choice"),
        ("optimizer", 3, "not text"),
        ("momentum", "-0.1", "too small"),
        ("weight_decay", "2", "too large"),
        ("beta_1", "1.1", "too large"),
        ("beta_2", "-1", "too small"),
        ("eps", "nan", "not a finite number"),
        ("gamma", "1e3", "too large"),
        ("augmentation_type", "flip", "not a valid choice"),
        ("resize", "0", "too small"),
        ("multi_label", "2", "not true/false or 1/0"),
        ("use_weighted_loss", "yes", "not true/false or 1/0"),
        ("use_pretrained_model", 2, "not true/false or 1/0"),
        ("top_k", "1", "too small"),
        ("precision_dtype", "float64", "not a valid choice"),
        ("checkpoint_frequency", "0", "too small"),
        ("early_stopping", "maybe", "not true/false or 1/0"),
        ("early_stopping_min_epochs", "0", "too small"),
        ("early_stopping_patience", "-3", "too small"),
        ("early_stopping_tolerance", "1.5", "too large"),
        ("kv_store", "nccl", "not a valid choice"),
    ],
)
def test_bad_value_names_parameter_reason_and_what_is_allowed(
    name: str, raw: object, reason: str
) -> None:
    with pytest.raises(HyperparameterError) as error:
        HyperParameters.from_mapping({name: raw})
    assert error.value.problems == [Problem(name, error.value.problems[0].message)]
    message = problems_of(error)[name]
    assert reason in message and "allowed: " in message
    assert str(error.value).startswith(f"{name}: ")
    assert validate_field(name, raw if isinstance(raw, str) else json.dumps(raw)) is not None


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("learning_rate", "1"),
        ("learning_rate", "1e-9"),
        ("momentum", "0"),
        ("momentum", "1"),
        ("lr_scheduler_factor", "1"),
        ("early_stopping_tolerance", "0"),
        ("num_classes", "2"),
        ("top_k", "2"),
        ("epochs", "30.0"),
        ("epochs", " 7 "),
        ("image_shape", "1,28,28"),
        ("lr_scheduler_step", "5"),
        ("kv_store", "DEVICE"),
        ("early_stopping", "0"),
        ("multi_label", "false"),
        ("mini_batch_size", "1"),
        ("epochs", "100000"),
        ("num_classes", "100000"),
        ("image_shape", "3,2048,2048"),
        ("resize", "2049"),
    ],
)
def test_boundary_values_are_accepted(name: str, raw: str) -> None:
    assert validate_field(name, raw) is None
    HyperParameters.from_mapping({name: raw})


def test_one_line_reasons_for_huge_values() -> None:
    """Issue 9, bug 10: SageMaker's string form of absurd values is refused in one line."""
    with pytest.raises(HyperparameterError) as error:
        HyperParameters.from_mapping({"epochs": "1e300", "num_classes": "100000000"})
    problems = problems_of(error)
    assert problems["epochs"].startswith("1e+300 is too large")
    assert problems["num_classes"].startswith(
        "100000000 is too large: the final layer for 100,000,000 classes holds up to "
        "204,800,000,000 weights (819.2 GB as float32"
    )
    assert all("\n" not in message and len(message) < 400 for message in problems.values())


def test_image_sides_above_2048_need_insisting() -> None:
    with pytest.raises(HyperparameterError) as error:
        HyperParameters(image_shape="3,2049,64", mini_batch_size=1, resize=3000).validate()
    problems = problems_of(error)
    assert "set allow_large_images=true to insist" in problems["image_shape"]
    assert "set allow_large_images=true to insist" in problems["resize"]
    insisted = HyperParameters(
        image_shape="3,2049,64", mini_batch_size=1, resize=3000, allow_large_images=True
    )
    assert insisted.validate() == []


def test_our_fields_are_kept_out_of_sagemakers_form_but_saved(tmp_path: Path) -> None:
    hp = HyperParameters(allow_large_images=True, use_pretrained_model=1, freeze_backbone=1)
    assert "allow_large_images" not in hp.to_sagemaker()
    assert "freeze_backbone" not in hp.to_sagemaker()
    assert hp.to_strings() == {
        **hp.to_sagemaker(),
        "allow_large_images": "true",
        "freeze_backbone": "1",
    }
    assert "allow_large_images" not in HyperParameters().to_strings()
    assert "freeze_backbone" not in HyperParameters().to_strings()
    save_hyperparameters(tmp_path / "hp.json", hp)
    assert load_hyperparameters(tmp_path / "hp.json") == hp


def test_the_batch_must_fit_in_memory() -> None:
    # ResNet-50 at 224 px: about 145 MB an image (MXNet measured 97 MB here).
    assert 140e6 < batch_memory(50, (3, 224, 224), 1) < 150e6
    assert batch_memory(50, (3, 224, 224), 10) == 10 * batch_memory(50, (3, 224, 224), 1)
    assert HyperParameters(num_layers=50, mini_batch_size=440).validate() == []
    with pytest.raises(HyperparameterError) as error:
        HyperParameters(num_layers=50, mini_batch_size=450).validate()
    assert problems_of(error)["mini_batch_size"] == (
        "450 images of 224x224 need about 65.0 GB for one training batch's input and "
        "activations in a ResNet-50, more than the 64.0 GB allowed; use at most 442, or "
        "smaller images"
    )
    huge = HyperParameters(image_shape="3,16384,16384", mini_batch_size=1, allow_large_images=True)
    with pytest.raises(HyperparameterError, match=r"even one image needs .* TB: use a smaller"):
        huge.validate()


def test_validate_field_for_the_form() -> None:
    assert validate_field("epochs", "") is None
    assert validate_field("epochs", "0") == (
        "0 is too small; allowed: a whole number >= 1 and <= 100,000"
    )
    with pytest.raises(KeyError):
        validate_field("epoch", "3")


@pytest.mark.parametrize(
    ("unknown", "suggestion"),
    [
        ("epoch", "epochs"),
        ("EPOCHS", "epochs"),
        ("learningrate", "learning_rate"),
        ("lr_schedule_step", "lr_scheduler_step"),
        ("minibatch_size", "mini_batch_size"),
        ("early_stop_patience", "early_stopping_patience"),
    ],
)
def test_unknown_name_suggests_the_closest(unknown: str, suggestion: str) -> None:
    with pytest.raises(HyperparameterError) as error:
        HyperParameters.from_mapping({unknown: "1"})
    assert problems_of(error) == {unknown: f"unknown hyperparameter; did you mean {suggestion}?"}


def test_unknown_name_without_a_close_one_lists_the_known_ones() -> None:
    with pytest.raises(HyperparameterError) as error:
        HyperParameters.from_mapping({"colour": "blue"})
    assert "num_layers" in problems_of(error)["colour"]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(HyperparameterError) as error:
        HyperParameters.from_mapping(
            {"epochs": "0", "optimizer": "adagrad", "epoch": "3", "momentum": "x"}
        )
    assert set(problems_of(error)) == {"epochs", "optimizer", "epoch", "momentum"}
    assert len(str(error.value).splitlines()) == 4


def test_not_a_mapping() -> None:
    with pytest.raises(HyperparameterError, match="expected name: value pairs, got a list"):
        HyperParameters.from_mapping(["epochs", "3"])  # type: ignore[arg-type]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
NUMBER_LIKE = st.from_regex(r"\s*-?[0-9.,e]{0,12}\s*", fullmatch=True)
ANY_NAME = st.sampled_from(NAMES) | st.text(max_size=30)


@given(st.dictionaries(ANY_NAME, st.text() | NUMBER_LIKE))
def test_any_text_either_parses_or_raises_hyperparameter_error(values: dict[str, str]) -> None:
    check_parses_or_refuses(values)


@given(st.dictionaries(ANY_NAME, JSON_VALUES))
def test_any_json_either_parses_or_raises_hyperparameter_error(values: dict[str, object]) -> None:
    check_parses_or_refuses(values)


def check_parses_or_refuses(values: dict[str, object]) -> None:
    """Only HyperparameterError escapes; what parses survives the string form and validate."""
    try:
        hp = HyperParameters.from_mapping(values)
    except HyperparameterError as error:
        assert error.problems
        return
    assert HyperParameters.from_mapping(hp.to_strings()) == hp  # ours too, unlike SageMaker
    try:
        hp.validate(DataFacts(3, 10, min_image_height=5, min_image_width=5, multi_label=False))
    except HyperparameterError as error:
        assert error.problems


def test_error_survives_pickling() -> None:
    error = HyperparameterError([Problem("epochs", "0 is too small")])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems and str(copy) == str(error)


# --- rules between parameters -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "name", "fragment"),
    [
        ({"resize": 224}, "resize", "not larger than image_shape's height and width"),
        ({"resize": 100}, "resize", "use more than 224"),
        ({"image_shape": "3,200,300", "resize": 250}, "resize", "use more than 300"),
        ({"lr_scheduler_step": "10,31"}, "lr_scheduler_step", "31 is beyond epochs=30"),
        ({"checkpoint_frequency": 31}, "checkpoint_frequency", "more than epochs=30"),
        (
            {"use_pretrained_model": 1, "image_shape": "1,224,224"},
            "use_pretrained_model",
            "need 3 colour channels, not image_shape 1,224,224",
        ),
        ({"freeze_backbone": 1}, "freeze_backbone", "set use_pretrained_model=1"),
        ({"use_pretrained_model": 1, "num_layers": 56}, "use_pretrained_model", "CIFAR-style"),
        ({"num_training_samples": 10}, "mini_batch_size", "larger than the training set (10"),
        ({"num_classes": 4, "top_k": 5}, "top_k", "more than the number of classes (4)"),
    ],
)
def test_rules_between_parameters(changes: dict[str, object], name: str, fragment: str) -> None:
    hp = dataclasses.replace(HyperParameters(), **changes)
    with pytest.raises(HyperparameterError) as error:
        hp.validate()
    assert list(problems_of(error)) == [name]
    assert fragment in problems_of(error)[name]


@pytest.mark.parametrize(
    "changes",
    [
        {"resize": 225},
        {"image_shape": "3,200,300", "resize": 301},
        {"lr_scheduler_step": "10,30"},
        {"checkpoint_frequency": 30},
        {"use_pretrained_model": 1, "num_layers": 18},
        {"use_pretrained_model": 1, "freeze_backbone": 1, "num_layers": 18},
        {"num_training_samples": 32},
        {"num_classes": 5, "top_k": 5},
    ],
)
def test_rules_at_their_limits(changes: dict[str, object]) -> None:
    assert dataclasses.replace(HyperParameters(), **changes).validate() == []


def test_pretrained_with_both_problems_reports_both() -> None:
    hp = HyperParameters(use_pretrained_model=1, num_layers=20, image_shape="1,32,32")
    with pytest.raises(HyperparameterError) as error:
        hp.validate()
    assert [problem.name for problem in error.value.problems] == ["use_pretrained_model"] * 2


@pytest.mark.parametrize(
    ("changes", "warning"),
    [
        ({"use_weighted_loss": 1}, "use_weighted_loss: is ignored unless multi_label=1"),
        ({"kv_store": "dist_async"}, "kv_store: dist_async trains across worker processes"),
        ({"early_stopping": True, "epochs": 10}, "early_stopping: cannot stop the run early"),
        (
            {"use_pretrained_model": 1, "num_layers": 18, "image_shape": "3,64,64"},
            "use_pretrained_model: ImageNet weights suit image_shape 3,224,224 best; 3,64,64",
        ),
    ],
)
def test_warnings_between_parameters(changes: dict[str, object], warning: str) -> None:
    warnings = dataclasses.replace(HyperParameters(), **changes).validate()
    assert len(warnings) == 1 and warnings[0].startswith(warning)


def test_validate_checks_values_set_directly() -> None:
    hp = HyperParameters(epochs=0, optimizer="adagrad", num_layers=None)  # type: ignore[arg-type]
    with pytest.raises(HyperparameterError) as error:
        hp.validate()
    problems = problems_of(error)
    assert set(problems) == {"epochs", "optimizer", "num_layers"}
    assert problems["num_layers"].startswith("a value is required")


def test_a_rule_is_skipped_while_its_inputs_are_invalid() -> None:
    hp = HyperParameters(epochs=0, checkpoint_frequency=5, lr_scheduler_step="4")
    with pytest.raises(HyperparameterError) as error:
        hp.validate()
    assert list(problems_of(error)) == ["epochs"]


# --- rules against the data ---------------------------------------------------------------

SMALL = HyperParameters(num_layers=20, image_shape="3,32,32", mini_batch_size=8)
DATA = DataFacts(num_classes=3, num_training_samples=60, multi_label=False)


@pytest.mark.parametrize(
    ("changes", "data", "name", "fragment"),
    [
        ({"mini_batch_size": 61}, DATA, "mini_batch_size", "larger than the training set (60"),
        # The data's count wins over a given one for this rule.
        (
            {"mini_batch_size": 61, "num_training_samples": 100},
            DATA,
            "mini_batch_size",
            "(60 images)",
        ),
        ({"top_k": 4}, DATA, "top_k", "more than the number of classes (3)"),
        ({"num_classes": 2}, DATA, "num_classes", "has 3 classes (labels up to 2)"),
        ({"multi_label": 1}, DATA, "multi_label", "one label per image; set multi_label=0"),
        (
            {},
            dataclasses.replace(DATA, multi_label=True),
            "multi_label",
            "multi-label; set multi_label=1",
        ),
        (
            {"multi_label": 1, "num_classes": 4},
            dataclasses.replace(DATA, multi_label=True),
            "num_classes",
            "has 3 label columns",
        ),
    ],
)
def test_rules_against_the_data(
    changes: dict[str, object], data: DataFacts, name: str, fragment: str
) -> None:
    with pytest.raises(HyperparameterError) as error:
        dataclasses.replace(SMALL, **changes).validate(data)
    assert list(problems_of(error)) == [name]
    assert fragment in problems_of(error)[name]


@pytest.mark.parametrize(
    ("changes", "data", "warning"),
    [
        ({"num_classes": 5}, DATA, "num_classes: 5, but the training data has 3 classes"),
        (
            {"num_training_samples": 50},
            DATA,
            "num_training_samples: 50, but the training data has 60 images",
        ),
    ],
)
def test_disagreement_with_the_data_is_a_warning(
    changes: dict[str, object], data: DataFacts, warning: str
) -> None:
    warnings = dataclasses.replace(SMALL, **changes).validate(data)
    assert len(warnings) == 1 and warnings[0].startswith(warning)


def test_agreeing_data_gives_no_warning() -> None:
    data = DataFacts(3, 60, min_image_height=32, min_image_width=50, multi_label=False)
    assert dataclasses.replace(SMALL, num_classes=3, num_training_samples=60).validate(data) == []
    tiny_images = dataclasses.replace(data, min_image_height=10, min_image_width=10)
    assert SMALL.validate(tiny_images) == []  # the data pipeline enlarges them


def test_resolved_fills_only_what_is_unset() -> None:
    assert SMALL.resolved(DATA) == dataclasses.replace(
        SMALL, num_classes=3, num_training_samples=60
    )
    given_values = dataclasses.replace(SMALL, num_classes=5, num_training_samples=50)
    assert given_values.resolved(DATA) == given_values


# --- changes ------------------------------------------------------------------------------


def test_replace_checks_and_returns_a_new_object() -> None:
    hp = HyperParameters()
    changed = hp.replace(epochs="5", early_stopping=True, lr_scheduler_step=[2, 4])
    assert (changed.epochs, changed.early_stopping, changed.lr_scheduler_step) == (5, True, "2,4")
    assert hp == HyperParameters()
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.epochs = 5  # type: ignore[misc]
    with pytest.raises(HyperparameterError) as error:
        hp.replace(epochs=0, optimiser="adam")
    assert problems_of(error)["optimiser"] == "unknown hyperparameter; did you mean optimizer?"


def test_overrides_from_the_command_line() -> None:
    hp = apply_overrides(
        HyperParameters(), ["epochs=3", "early_stopping=true", "lr_scheduler_step=1,2", "epochs=4"]
    )
    assert (hp.epochs, hp.early_stopping, hp.lr_scheduler_step) == (4, True, "1,2")
    assert apply_overrides(hp, ["top_k="]).top_k is None


def test_bad_overrides_are_all_reported() -> None:
    with pytest.raises(HyperparameterError) as error:
        apply_overrides(HyperParameters(), ["epochs", "=3", "momentum=2", "epoc=3"])
    problems = problems_of(error)
    assert problems["epochs"] == problems["=3"] == "expected NAME=VALUE, e.g. epochs=10"
    assert "too large" in problems["momentum"]
    assert "did you mean epochs?" in problems["epoc"]


# --- the form table -----------------------------------------------------------------------


def test_fields_cover_every_attribute_exactly_once() -> None:
    attributes = [item.name for item in dataclasses.fields(HyperParameters)]
    assert sorted(NAMES) == sorted(attributes)
    assert len(NAMES) == len(set(NAMES)) == 31
    assert [spec.name for spec in FIELDS if spec.ours] == list(OUR_DEFAULTS)


def test_fields_describe_the_dataclass() -> None:
    hp = HyperParameters()
    for spec in FIELDS:
        assert spec.default == getattr(hp, spec.name)
        assert spec.group in GROUPS and spec.kind in KINDS
        assert spec.help.endswith(".") and 20 < len(spec.help) < 300
        assert (spec.choices is not None) == (spec.kind == "choice"), spec.name
        assert spec.optional == (spec.default is None)
        assert spec.parse(spec.format(spec.default)) == spec.default
        if spec.choices:
            assert spec.default is None or spec.default in spec.choices
    # A form shows the groups in order, each once.
    groups = [spec.group for spec in FIELDS]
    assert sorted(set(groups), key=groups.index) == list(GROUPS)
    assert groups == sorted(groups, key=GROUPS.index)


# --- files --------------------------------------------------------------------------------


def test_save_writes_the_string_form_atomically(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text("{}", encoding="utf-8")
    save_hyperparameters(path, CUSTOM)
    assert json.loads(path.read_text(encoding="utf-8")) == CUSTOM.to_sagemaker()
    assert [item.name for item in tmp_path.iterdir()] == ["hyperparameters.json"]
    assert load_hyperparameters(path) == CUSTOM


def test_load_native_values_and_a_training_job_description(tmp_path: Path) -> None:
    native = tmp_path / "native.json"
    native.write_text('{"epochs": 3, "early_stopping": true, "top_k": null}', encoding="utf-8")
    assert load_hyperparameters(str(native)) == HyperParameters(epochs=3, early_stopping=True)
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps({"TrainingJobName": "x", "HyperParameters": {"epochs": "7"}}),
        encoding="utf-8-sig",
    )
    assert load_hyperparameters(job) == HyperParameters(epochs=7)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        # then the json module's own reason, worded differently from Python 3.13 on
        (b'{"epochs": "3",}', "not valid JSON: "),
        (b'["epochs", "3"]', "expected a JSON object of name: value pairs, found an array"),
        (b"null", "expected a JSON object of name: value pairs, found null"),
        (b"30", "expected a JSON object of name: value pairs, found a number"),
        (b'{"epochs": "\xff"}', "not UTF-8 text"),
    ],
)
def test_load_refuses_what_is_not_a_json_object(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / "hp.json"
    path.write_bytes(content)
    with pytest.raises(HyperparameterError) as error:
        load_hyperparameters(path)
    assert problems_of(error)[str(path)].startswith(fragment)


def test_load_reports_a_missing_file_and_bad_values(tmp_path: Path) -> None:
    with pytest.raises(HyperparameterError, match="cannot read it"):
        load_hyperparameters(tmp_path / "absent.json")
    path = tmp_path / "hp.json"
    path.write_text('{"epochs": "0", "optimzer": "adam"}', encoding="utf-8")
    with pytest.raises(HyperparameterError) as error:
        load_hyperparameters(path)
    assert set(problems_of(error)) == {"epochs", "optimzer"}
