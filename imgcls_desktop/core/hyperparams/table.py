"""The hyperparameter table: every field declared once, with its type, default and rules.

:class:`HyperParameters` is the table. Each field is one line of it: its SageMaker name
and Python type, then (in :func:`_field`) its SageMaker default, its group and kind in the
form, its help text and its range or choices. :data:`FIELDS` (the :class:`FieldSpec` of
every field, in form order) is derived from it, and parsing, range checks, the string form
and the GUI form are all driven by :data:`FIELDS`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imgcls_desktop.core.hyperparams.rules import DataFacts, check_rules, final_layer_cost
from imgcls_desktop.core.hyperparams.values import (
    AUGMENTATION_TYPES,
    IMAGE_SHAPE_FORMAT,
    KV_STORES,
    LARGE_IMAGE_DEPTHS,
    LR_STEPS_FORMAT,
    MAX_CLASSES,
    MAX_EPOCHS,
    MAX_LARGE_IMAGE_SIDE,
    MAX_TRAINING_SAMPLES,
    NO_AUGMENTATION,
    OPTIMIZERS,
    PRECISION_DTYPES,
    SMALL_IMAGE_DEPTHS,
    FieldSpec,
    HyperparameterError,
    Problem,
    parse_image_shape,
    parse_lr_steps,
)

_SPEC_KEY = "hyperparameter"
_UNIT = {"minimum": 0.0, "maximum": 1.0}
_POSITIVE_UNIT = {"minimum": 0.0, "maximum": 1.0, "exclusive_minimum": True}


def _field(default: object, group: str, kind: str, help: str, **options: Any) -> Any:
    """One row of the table: the dataclass field with its default, and the rest of its
    :class:`FieldSpec` (name, default and ``optional`` are added from the field)."""
    spec = {"group": group, "kind": kind, "help": help, **options}
    return dataclasses.field(default=default, metadata={_SPEC_KEY: spec})


@dataclass(frozen=True)
class HyperParameters:
    """Every SageMaker image-classification hyperparameter, with SageMaker's defaults.

    Build one from text or JSON with :meth:`from_mapping`, check it with :meth:`validate`.
    ``num_classes`` and ``num_training_samples`` may stay ``None``: :meth:`resolved` takes
    them from the data.
    """

    # Basics
    num_classes: int | None = _field(
        None,
        "Basics",
        "int",
        "Number of output classes, the size of the network's output; for multi-label data, "
        "the number of label columns. Empty takes it from the training data.",
        minimum=2,
        maximum=MAX_CLASSES,
        too_large=lambda classes: final_layer_cost(int(classes)),
    )
    num_training_samples: int | None = _field(
        None,
        "Basics",
        "int",
        "Number of images in the training set; the learning-rate schedule is placed with it. "
        "Empty counts them in the training data.",
        minimum=1,
        maximum=MAX_TRAINING_SAMPLES,
    )
    num_layers: int = _field(
        152,
        "Basics",
        "choice",
        "Depth of the ResNet: 18, 34, 50, 101, 152 or 200 for large images such as "
        "224 x 224; 20, 32, 44, 56 or 110 (CIFAR-style) for small images such as 32 x 32.",
        choices=LARGE_IMAGE_DEPTHS + SMALL_IMAGE_DEPTHS,
    )
    image_shape: str = _field(
        "3,224,224",
        "Basics",
        "text",
        'Size of the network input as "channels,height,width" with 1 or 3 channels; '
        "training images are cropped to it.",
        text_format=IMAGE_SHAPE_FORMAT,
    )
    epochs: int = _field(
        30,
        "Basics",
        "int",
        "Number of passes over the training data.",
        minimum=1,
        maximum=MAX_EPOCHS,
    )
    mini_batch_size: int = _field(
        32,
        "Basics",
        "int",
        "Images per training step; with several devices each one takes an equal share. "
        "Bounded by the memory one batch needs (see the README).",
        minimum=1,
        maximum=1_000_000,
    )
    multi_label: int = _field(
        0,
        "Basics",
        "bool",
        "1 when an image may belong to several classes at once (a 0/1 label per class); "
        "accuracy is then the average over the classes.",
    )
    use_pretrained_model: int = _field(
        0,
        "Basics",
        "bool",
        "1 to start from ImageNet weights of the same depth, with only the final layer "
        "trained from scratch; needs a large-image depth (18 to 152), and 3,224,224 suits "
        "the weights best.",
    )
    freeze_backbone: int = _field(
        0,
        "Basics",
        "bool",
        "Ours, not SageMaker's (left out of anything handed to SageMaker): 1 for quick "
        "transfer: the pretrained backbone stays frozen, its features are computed once and "
        "cached, and only the final layer is trained (seconds per epoch). Needs "
        "use_pretrained_model=1.",
        ours=True,
    )
    # Optimizer
    optimizer: str = _field(
        "sgd",
        "Optimizer",
        "choice",
        "The optimizer: sgd, nag (Nesterov momentum), adam or rmsprop.",
        choices=OPTIMIZERS,
    )
    learning_rate: float = _field(
        0.1,
        "Optimizer",
        "float",
        "The initial learning rate.",
        **_POSITIVE_UNIT,
    )
    momentum: float = _field(
        0.9,
        "Optimizer",
        "float",
        "Momentum for sgd and nag; the other optimizers ignore it.",
        **_UNIT,
    )
    weight_decay: float = _field(
        0.0001,
        "Optimizer",
        "float",
        "Weight-decay (L2 regularisation) coefficient for sgd and nag.",
        **_UNIT,
    )
    beta_1: float = _field(
        0.9,
        "Optimizer",
        "float",
        "For adam: the exponential decay rate of the first-moment (mean) estimates.",
        **_UNIT,
    )
    beta_2: float = _field(
        0.999,
        "Optimizer",
        "float",
        "For adam: the exponential decay rate of the second-moment (variance) estimates.",
        **_UNIT,
    )
    eps: float = _field(
        1e-8,
        "Optimizer",
        "float",
        "For adam and rmsprop: a small constant that avoids division by zero.",
        **_UNIT,
    )
    gamma: float = _field(
        0.9,
        "Optimizer",
        "float",
        "For rmsprop: the decay factor of the moving average of squared gradients.",
        **_UNIT,
    )
    # Schedule
    lr_scheduler_step: str | None = _field(
        None,
        "Schedule",
        "text",
        "Epochs after which the learning rate is multiplied by lr_scheduler_factor, e.g. "
        '"10,20" reduces it after the 10th and again after the 20th epoch.',
        text_format=LR_STEPS_FORMAT,
    )
    lr_scheduler_factor: float = _field(
        0.1,
        "Schedule",
        "float",
        "Factor applied to the learning rate at each lr_scheduler_step epoch "
        "(new rate = old rate x factor).",
        **_POSITIVE_UNIT,
    )
    checkpoint_frequency: int | None = _field(
        None,
        "Schedule",
        "int",
        "Keep the model every this many epochs (at most epochs). Empty keeps only the "
        "epoch with the best validation accuracy.",
        minimum=1,
        maximum=MAX_EPOCHS,
    )
    early_stopping: bool = _field(
        False,
        "Schedule",
        "bool",
        "Stop training early when the validation accuracy stops improving.",
    )
    early_stopping_min_epochs: int = _field(
        10,
        "Schedule",
        "int",
        "Epochs to train before early stopping may stop the run.",
        minimum=1,
        maximum=MAX_EPOCHS,
    )
    early_stopping_patience: int = _field(
        5,
        "Schedule",
        "int",
        "Epochs without improvement in validation accuracy after which training stops.",
        minimum=1,
        maximum=MAX_EPOCHS,
    )
    early_stopping_tolerance: float = _field(
        0.0,
        "Schedule",
        "float",
        "Relative gain in validation accuracy (gain / previous best) below which an epoch "
        "does not count as an improvement.",
        **_UNIT,
    )
    # Augmentation
    augmentation_type: str = _field(
        NO_AUGMENTATION,
        "Augmentation",
        "choice",
        "Random changes to training images: crop (random crop and horizontal flip), "
        "crop_color (also hue, saturation and lightness shifts), crop_color_transform "
        "(also rotation, shear and aspect-ratio changes).",
        choices=AUGMENTATION_TYPES,
    )
    resize: int | None = _field(
        None,
        "Augmentation",
        "int",
        "Length in pixels of the shorter image side after resizing, before cropping; it must "
        "be larger than image_shape's height and width. Empty uses the images as they are.",
        minimum=1,
        maximum=MAX_LARGE_IMAGE_SIDE,
    )
    # Advanced
    use_weighted_loss: int = _field(
        0,
        "Advanced",
        "bool",
        "1 to weight the multi-label cross-entropy loss by the class distribution; used only "
        "when multi_label is 1.",
    )
    top_k: int | None = _field(
        None,
        "Advanced",
        "int",
        "Also report top-k accuracy (correct when the true class is among the k most "
        "probable); k is 2 or more, as top-1 is the ordinary accuracy.",
        minimum=2,
        maximum=MAX_CLASSES,
    )
    precision_dtype: str = _field(
        "float32",
        "Advanced",
        "choice",
        "Precision of the weights in training: float32, or float16 (mixed precision, GPU "
        "only), which uses less memory.",
        choices=PRECISION_DTYPES,
    )
    kv_store: str | None = _field(
        None,
        "Advanced",
        "choice",
        "How weight updates from several devices are combined: device (on the GPUs) or local "
        "(on the CPU); dist_sync and dist_async train across launched workers. Empty means device.",
        choices=KV_STORES,
    )
    allow_large_images: bool = _field(
        False,
        "Advanced",
        "bool",
        "Ours, not SageMaker's (left out of anything handed to SageMaker): true lets "
        "image_shape's height and width and resize go above 2048 pixels, up to 16384.",
        ours=True,
    )

    @property
    def shape(self) -> tuple[int, int, int]:
        """``image_shape`` as (channels, height, width); ValueError if it is malformed."""
        channels, height, width = parse_image_shape(self.image_shape)
        return channels, height, width

    @property
    def lr_steps(self) -> tuple[int, ...]:
        """The epochs of ``lr_scheduler_step`` (empty when unset); ValueError if malformed."""
        return parse_lr_steps(self.lr_scheduler_step) if self.lr_scheduler_step else ()

    @property
    def is_multi_label(self) -> bool:
        """Whether an image may carry several labels (``multi_label=1``)."""
        return bool(self.multi_label)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> HyperParameters:
        """Parse SageMaker's string form or native JSON values; unset names keep defaults.

        Each value is checked on its own (type, range, choices); rules between parameters
        and against the data are :meth:`validate`'s. Raises :class:`HyperparameterError`
        listing every unknown name (with the closest valid one) and every bad value.
        """
        if not isinstance(values, Mapping):
            kind = type(values).__name__
            problem = Problem("hyperparameters", f"expected name: value pairs, got a {kind}")
            raise HyperparameterError([problem])
        parsed: dict[str, object] = {}
        problems = []
        for key, raw in values.items():
            name = str(key)
            if name.startswith("_"):
                continue
            spec = _SPECS.get(name)
            if spec is None:
                problems.append(Problem(name, _unknown_name(name)))
                continue
            try:
                parsed[name] = spec.parse(raw)
            except ValueError as error:
                problems.append(Problem(name, str(error)))
        if problems:
            raise HyperparameterError(problems)
        return cls(**parsed)  # type: ignore[arg-type]

    def to_sagemaker(self) -> dict[str, str]:
        """SageMaker's string form: every set value as text, unset ones and ours left out."""
        texts = {spec.name: spec.format(getattr(self, spec.name)) for spec in FIELDS}
        return {
            name: text for name, text in texts.items() if text is not None and not _SPECS[name].ours
        }

    def to_strings(self) -> dict[str, str]:
        """:meth:`to_sagemaker` plus our own fields that differ from their default."""
        ours = {
            spec.name: spec.format(getattr(self, spec.name))
            for spec in FIELDS
            if spec.ours and getattr(self, spec.name) != spec.default
        }
        return {**self.to_sagemaker(), **{k: v for k, v in ours.items() if v is not None}}

    def replace(self, **changes: object) -> HyperParameters:
        """A copy with ``changes`` (text or native values), checked like :meth:`from_mapping`."""
        return HyperParameters.from_mapping({**dataclasses.asdict(self), **changes})

    def resolved(self, data: DataFacts) -> HyperParameters:
        """A copy with ``num_classes`` and ``num_training_samples`` taken from the data if unset."""
        return dataclasses.replace(
            self,
            num_classes=data.num_classes if self.num_classes is None else self.num_classes,
            num_training_samples=(
                data.num_training_samples
                if self.num_training_samples is None
                else self.num_training_samples
            ),
        )

    def validate(self, data: DataFacts | None = None) -> list[str]:
        """Check every value, the rules between them and, given ``data``, against the data.

        Returns warnings (``"name: message"``); raises :class:`HyperparameterError` listing
        every problem. A rule is checked only when each parameter it reads is valid itself.
        """
        problems: list[Problem] = []
        checked: dict[str, object] = {}
        for spec in FIELDS:
            value = getattr(self, spec.name)
            try:
                if value is None and not spec.optional:
                    raise ValueError(f"a value is required; allowed: {spec.allowed}")
                checked[spec.name] = spec.parse(value)
            except ValueError as error:
                problems.append(Problem(spec.name, str(error)))
        errors, warnings = check_rules(dataclasses.replace(self, **checked), data, set(checked))
        if problems or errors:
            raise HyperparameterError([*problems, *errors])
        return warnings


FIELDS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(
        name=item.name,
        default=item.default,
        optional=item.default is None,
        **item.metadata[_SPEC_KEY],
    )
    for item in dataclasses.fields(HyperParameters)
)
"""Every field's :class:`FieldSpec`, in the order the form shows them (grouped)."""

_SPECS = {spec.name: spec for spec in FIELDS}


def validate_field(name: str, text: str) -> str | None:
    """Why one raw form value is invalid on its own, or ``None`` if it is fine.

    Rules between fields come from :meth:`HyperParameters.validate`. KeyError for an
    unknown name.
    """
    try:
        _SPECS[name].parse(text)
    except ValueError as error:
        return str(error)
    return None


def _unknown_name(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(_SPECS), n=1, cutoff=0.6)
    if close:
        return f"unknown hyperparameter; did you mean {close[0]}?"
    return "unknown hyperparameter; the known ones are " + ", ".join(_SPECS)
