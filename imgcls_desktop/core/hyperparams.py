"""SageMaker's image-classification hyperparameters as one typed, validated object.

:class:`HyperParameters` holds every hyperparameter of SageMaker's built-in Image
Classification (MXNet) algorithm under its SageMaker name, with SageMaker's default.
:data:`FIELDS` describes each one (group, kind, range, meaning) once; parsing, range checks,
the string form and the GUI form are all driven by that table.

Values arrive in SageMaker's all-strings form (``{"epochs": "30", "early_stopping":
"true"}``) or as native JSON values (``30``, ``True``, ``[10, 20]``). An empty text or a JSON
``null`` means "not set": the SageMaker default (``None`` for the optional ones).

Decisions where SageMaker leaves room:

* ``resize`` must be *strictly* larger than image_shape's height and width: SageMaker's
  documentation says it "should be larger than both the width and height components of
  image_shape to prevent training failure", so ``resize == H`` is refused too.
* ``use_weighted_loss=1`` without ``multi_label=1`` is a warning, not an error: SageMaker
  accepts it and ignores it ("used only when multi_label = 1").
* A given ``num_classes`` or ``num_training_samples`` that disagrees with the data is a
  warning, except when training could not work: fewer classes than the data's labels, or a
  multi-label class count that differs from the data's label columns, is an error.
* ``augmentation_type="none"`` is our name for SageMaker's "no value"; the string form omits
  it, since SageMaker accepts only crop, crop_color and crop_color_transform.
* Names starting with ``_`` (SageMaker's own bookkeeping, such as ``_tuning_objective_metric``
  in the hyperparameters of a tuning job's training jobs) are ignored.

**Bounds.** Every value that could exhaust memory, disk or time has an upper bound, checked
before any work starts: ``epochs`` and the other epoch counts at most :data:`MAX_EPOCHS`,
``num_classes`` and ``top_k`` at most :data:`MAX_CLASSES` (the message says what the final
layer would weigh), image_shape's height and width and ``resize`` at most
:data:`MAX_IMAGE_SIDE` unless ``allow_large_images`` is set (then
:data:`MAX_LARGE_IMAGE_SIDE`), and ``mini_batch_size`` such that one batch's input and
activations (:func:`batch_memory`, an estimate from the ResNet's shape) stay within
:data:`BATCH_MEMORY_LIMIT`.

**Our extensions.** Fields marked ``ours`` (``allow_large_images``) are not SageMaker's:
:meth:`HyperParameters.to_sagemaker` leaves them out, since SageMaker refuses unknown names;
:meth:`HyperParameters.to_strings` (what ``hyperparameters.json`` holds) keeps them when set.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from imgcls_desktop.core.atomic import atomic_write_json

LARGE_IMAGE_DEPTHS = (18, 34, 50, 101, 152, 200)
SMALL_IMAGE_DEPTHS = (20, 32, 44, 56, 110)
OPTIMIZERS = ("sgd", "nag", "adam", "rmsprop")
NO_AUGMENTATION = "none"
AUGMENTATION_TYPES = (NO_AUGMENTATION, "crop", "crop_color", "crop_color_transform")
PRECISION_DTYPES = ("float32", "float16")
KV_STORES = ("device", "local", "dist_sync", "dist_async")
DISTRIBUTED_KV_STORES = ("dist_sync", "dist_async")
PRETRAINED_SHAPE = (3, 224, 224)

MAX_EPOCHS = 100_000
MAX_CLASSES = 100_000
MAX_TRAINING_SAMPLES = 1_000_000_000
MAX_LR_STEPS = 1_000
MAX_IMAGE_SIDE = 2_048
MAX_LARGE_IMAGE_SIDE = 16_384
BATCH_MEMORY_LIMIT = 64 * 10**9
"""One batch's input and activations may need at most this many bytes (64 GB): more than
a desktop or a single GPU holds."""
_FLOAT_BYTES = 4
_WIDEST_FEATURES = 2_048  # the pooled features of ResNet-50 and deeper, before the last layer

GROUPS = ("Basics", "Optimizer", "Schedule", "Augmentation", "Advanced")
KINDS = ("int", "float", "bool", "choice", "text")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the hyperparameters: which parameter, and why."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class HyperparameterError(ValueError):
    """Hyperparameters that cannot be used; ``problems`` lists every reason, one per line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def __reduce__(self) -> tuple[type[HyperparameterError], tuple[list[Problem]]]:
        return type(self), (self.problems,)


@dataclass(frozen=True)
class DataFacts:
    """What the training data says, for the rules that depend on it.

    The smallest image height and width are for callers to report; no rule refuses small
    images, since the training data pipeline enlarges them (and warns).
    """

    num_classes: int
    num_training_samples: int
    min_image_height: int | None = None
    min_image_width: int | None = None
    multi_label: bool | None = None


@dataclass(frozen=True)
class HyperParameters:
    """Every SageMaker image-classification hyperparameter, with SageMaker's defaults.

    Build one from text or JSON with :meth:`from_mapping`, check it with :meth:`validate`.
    ``num_classes`` and ``num_training_samples`` may stay ``None``: :meth:`resolved` takes
    them from the data.
    """

    num_classes: int | None = None
    num_training_samples: int | None = None
    num_layers: int = 152
    image_shape: str = "3,224,224"
    epochs: int = 30
    learning_rate: float = 0.1
    lr_scheduler_step: str | None = None
    lr_scheduler_factor: float = 0.1
    mini_batch_size: int = 32
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0001
    beta_1: float = 0.9
    beta_2: float = 0.999
    eps: float = 1e-8
    gamma: float = 0.9
    augmentation_type: str = NO_AUGMENTATION
    resize: int | None = None
    multi_label: int = 0
    use_weighted_loss: int = 0
    use_pretrained_model: int = 0
    top_k: int | None = None
    precision_dtype: str = "float32"
    checkpoint_frequency: int | None = None
    early_stopping: bool = False
    early_stopping_min_epochs: int = 10
    early_stopping_patience: int = 5
    early_stopping_tolerance: float = 0.0
    kv_store: str | None = None
    allow_large_images: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        """``image_shape`` as (channels, height, width); ValueError if it is malformed."""
        channels, height, width = _parse_image_shape(self.image_shape)
        return channels, height, width

    @property
    def lr_steps(self) -> tuple[int, ...]:
        """The epochs of ``lr_scheduler_step`` (empty when unset); ValueError if malformed."""
        return _parse_lr_steps(self.lr_scheduler_step) if self.lr_scheduler_step else ()

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
        findings = _Findings()
        checked: dict[str, object] = {}
        for spec in FIELDS:
            value = getattr(self, spec.name)
            try:
                if value is None and not spec.optional:
                    raise ValueError(f"a value is required; allowed: {spec.allowed}")
                checked[spec.name] = spec.parse(value)
            except ValueError as error:
                findings.error(spec.name, str(error))
        hp = dataclasses.replace(self, **checked)
        for rule in _RULES:
            if all(name in checked for name in rule.names):
                rule.check(hp, data, findings)
        if findings.errors:
            raise HyperparameterError(findings.errors)
        return findings.warnings


@dataclass(frozen=True)
class FieldSpec:
    """One hyperparameter as a form and the docs show it.

    ``kind`` is one of :data:`KINDS` and ``group`` one of :data:`GROUPS`; ``default`` and
    ``choices`` hold typed values (``str(choice)`` is the text form); ``minimum`` is
    exclusive when ``exclusive_minimum``; ``optional`` fields may be empty (``None``).
    ``too_large`` says what a value above ``maximum`` would cost; ``ours`` marks a field that
    is not SageMaker's (left out of :meth:`HyperParameters.to_sagemaker`).
    """

    name: str
    group: str
    kind: str
    default: object
    help: str
    choices: tuple[object, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False
    exclusive_minimum: bool = False
    too_large: Callable[[float], str] | None = None
    ours: bool = False

    @property
    def allowed(self) -> str:
        """What values this field accepts, in words (used in every message about it)."""
        if self.kind == "text":
            words = _TEXT_FORMATS[self.name][1]
        elif self.kind == "bool":
            words = "true or false" if isinstance(self.default, bool) else "0 or 1"
        elif self.kind == "choice":
            words = "one of " + ", ".join(str(choice) for choice in self.choices or ())
        else:
            noun = "a whole number" if self.kind == "int" else "a number"
            bounds = []
            if self.minimum is not None:
                bounds.append(f"{'>' if self.exclusive_minimum else '>='} {_bound(self.minimum)}")
            if self.maximum is not None:
                bounds.append(f"<= {_bound(self.maximum)}")
            words = " ".join([noun, " and ".join(bounds)]).strip()
        return f"{words}, or empty" if self.optional else words

    def parse(self, raw: object) -> object:
        """The typed value of text or a native value; ValueError says why it is invalid."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return self.default
        try:
            return self._parse(raw)
        except ValueError as error:
            raise ValueError(f"{error}; allowed: {self.allowed}") from None

    def format(self, value: object) -> str | None:
        """SageMaker's text for ``value``; ``None`` when the value is unset."""
        if value is None or value == NO_AUGMENTATION:
            return None
        if self.kind == "bool":
            if isinstance(self.default, bool):
                return "true" if value else "false"
            return str(int(bool(value)))
        if self.kind == "float":
            return repr(float(value))  # type: ignore[arg-type]
        return str(value)

    def _parse(self, raw: object) -> object:
        if self.kind == "text":
            return ",".join(str(number) for number in _TEXT_FORMATS[self.name][0](raw))
        if self.kind == "bool":
            return type(self.default)(_parse_bool(raw))
        if self.kind == "choice":
            choices = self.choices or ()
            if all(isinstance(choice, int) for choice in choices):
                value: object = _parse_int(raw)
            elif isinstance(raw, str):
                value = raw.strip().lower()
            else:
                raise ValueError(f"{_show(raw)} is not text")
            if value not in choices:
                raise ValueError(f"{_show(raw)} is not a valid choice")
            return value
        number = _parse_int(raw) if self.kind == "int" else _parse_number(raw)
        if self.minimum is not None and (
            number <= self.minimum if self.exclusive_minimum else number < self.minimum
        ):
            raise ValueError(f"{_number(number)} is too small")
        if self.maximum is not None and number > self.maximum:
            cost = f": {self.too_large(number)}" if self.too_large else ""
            raise ValueError(f"{_number(number)} is too large{cost}")
        return number


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


def apply_overrides(hp: HyperParameters, assignments: Iterable[str]) -> HyperParameters:
    """``hp`` with ``NAME=VALUE`` assignments (the CLI's ``--set``) applied; later ones win.

    Raises :class:`HyperparameterError` listing every malformed assignment and bad value.
    """
    changes: dict[str, object] = {}
    problems = []
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            problems.append(Problem(assignment, "expected NAME=VALUE, e.g. epochs=10"))
        else:
            changes[name.strip()] = value
    try:
        result = hp.replace(**changes)
    except HyperparameterError as error:
        problems.extend(error.problems)
    if problems:
        raise HyperparameterError(problems)
    return result


def load_hyperparameters(path: str | os.PathLike[str]) -> HyperParameters:
    """Read a hyperparameters JSON object (SageMaker's string form or native values).

    A DescribeTrainingJob response (an object with a ``HyperParameters`` object) works too.
    Raises :class:`HyperparameterError`, also for an unreadable file or bad JSON.
    """
    source = Path(path)
    try:
        document = json.loads(source.read_bytes().decode("utf-8-sig"))
    except OSError as error:
        raise _file_error(source, f"cannot read it: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise _file_error(source, f"not UTF-8 text (bad byte at {error.start})") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise _file_error(source, f"not valid JSON: {error.msg} at {where}") from None
    if isinstance(document, dict) and isinstance(document.get("HyperParameters"), dict):
        document = document["HyperParameters"]
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), "a number")
        raise _file_error(source, f"expected a JSON object of name: value pairs, found {kind}")
    return HyperParameters.from_mapping(document)


def save_hyperparameters(path: str | os.PathLike[str], hp: HyperParameters) -> None:
    """Write ``hp`` atomically as JSON in SageMaker's string form, plus our own fields when
    set (:meth:`HyperParameters.to_strings`)."""
    atomic_write_json(path, hp.to_strings())


_JSON_KINDS = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}


def _file_error(path: Path, message: str) -> HyperparameterError:
    return HyperparameterError([Problem(str(path), message)])


# --- parsing single values ----------------------------------------------------------------


def _show(raw: object) -> str:
    """A value as messages quote it: text in quotes, at most 40 characters."""
    shown = json.dumps(raw, ensure_ascii=False) if isinstance(raw, str) else repr(raw)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def _number(number: float) -> str:
    """A parsed number as messages show it: whole, or in e-notation when very long."""
    text = str(number)
    return text if len(text) <= 15 else f"{number:.3g}"


def _bound(value: float) -> str:
    """A range bound as the allowed values show it: 100,000 or 0.5."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _bytes(size: float) -> str:
    """A size in bytes as MB, GB or TB, one decimal."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size / 1e6:,.1f} MB"


def _parse_number(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"{_show(raw)} is not a number")
    try:
        number = float(raw)
    except (ValueError, OverflowError):
        raise ValueError(f"{_show(raw)} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{_show(raw)} is not a finite number")
    return number


def _parse_int(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            pass  # perhaps "30.0"
    number = _parse_number(raw)
    if not number.is_integer():
        raise ValueError(f"{_show(raw)} is not a whole number")
    return int(number)


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("true", "1", "false", "0"):
        return raw.strip().lower() in ("true", "1")
    raise ValueError(f"{_show(raw)} is not true/false or 1/0")


def _parse_int_list(raw: object) -> tuple[int, ...]:
    """Whole numbers from ``"10,20"``, ``"10, 20"``, ``[10, 20]`` or ``10``."""
    if isinstance(raw, str):
        items: list[object] = list(raw.split(","))
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        items = [raw]
    else:
        raise ValueError(f"{_show(raw)} is not a list of whole numbers")
    try:
        return tuple(_parse_int(item) for item in items)
    except ValueError:
        raise ValueError(f"{_show(raw)} is not a list of whole numbers") from None


def _parse_image_shape(raw: object) -> tuple[int, ...]:
    numbers = _parse_int_list(raw)
    if len(numbers) != 3:
        raise ValueError(f"{_show(raw)} has {len(numbers)} number(s), not 3")
    if numbers[0] not in (1, 3):
        raise ValueError(f"{_show(raw)} has {numbers[0]} channels")
    if min(numbers[1:]) < 1:
        raise ValueError(f"{_show(raw)} has a height or width below 1")
    if max(numbers[1:]) > MAX_LARGE_IMAGE_SIDE:
        raise ValueError(f"{_show(raw)} has a height or width above {MAX_LARGE_IMAGE_SIDE:,}")
    return numbers


def _parse_lr_steps(raw: object) -> tuple[int, ...]:
    steps = _parse_int_list(raw)
    if len(steps) > MAX_LR_STEPS:
        raise ValueError(f"{_show(raw)} has {len(steps):,} steps, more than {MAX_LR_STEPS:,}")
    if min(steps) < 1:
        raise ValueError(f"{_show(raw)} has an epoch below 1")
    if max(steps) > MAX_EPOCHS:
        raise ValueError(f"{_show(raw)} has an epoch above {MAX_EPOCHS:,}")
    if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
        raise ValueError(f"{_show(raw)} is not strictly increasing")
    return steps


# The "text" fields: name -> (parser to whole numbers, what is allowed).
_TEXT_FORMATS: dict[str, tuple[Callable[[object], tuple[int, ...]], str]] = {
    "image_shape": (
        _parse_image_shape,
        '"C,H,W" with C 1 or 3 and H, W whole numbers from 1 to 2048 (16384 with '
        'allow_large_images), e.g. "3,224,224"',
    ),
    "lr_scheduler_step": (
        _parse_lr_steps,
        'at most 1000 strictly increasing epochs >= 1 separated by commas, e.g. "10,20"',
    ),
}


def _unknown_name(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(_SPECS), n=1, cutoff=0.6)
    if close:
        return f"unknown hyperparameter; did you mean {close[0]}?"
    return "unknown hyperparameter; the known ones are " + ", ".join(_SPECS)


# --- the table ----------------------------------------------------------------------------

_DEFAULTS = {item.name: item.default for item in dataclasses.fields(HyperParameters)}


def _spec(name: str, group: str, kind: str, help: str, **options: Any) -> FieldSpec:
    """A FieldSpec with the dataclass's default; fields defaulting to None are optional."""
    default = _DEFAULTS[name]
    return FieldSpec(name, group, kind, default, help, optional=default is None, **options)


_UNIT = {"minimum": 0.0, "maximum": 1.0}
_POSITIVE_UNIT = {"minimum": 0.0, "maximum": 1.0, "exclusive_minimum": True}

FIELDS: tuple[FieldSpec, ...] = (
    # Basics
    _spec(
        "num_classes",
        "Basics",
        "int",
        "Number of output classes, the size of the network's output; for multi-label data, "
        "the number of label columns. Empty takes it from the training data.",
        minimum=2,
        maximum=MAX_CLASSES,
        too_large=lambda classes: _final_layer_cost(int(classes)),
    ),
    _spec(
        "num_training_samples",
        "Basics",
        "int",
        "Number of images in the training set; the learning-rate schedule is placed with it. "
        "Empty counts them in the training data.",
        minimum=1,
        maximum=MAX_TRAINING_SAMPLES,
    ),
    _spec(
        "num_layers",
        "Basics",
        "choice",
        "Depth of the ResNet: 18, 34, 50, 101, 152 or 200 for large images such as "
        "224 x 224; 20, 32, 44, 56 or 110 (CIFAR-style) for small images such as 32 x 32.",
        choices=LARGE_IMAGE_DEPTHS + SMALL_IMAGE_DEPTHS,
    ),
    _spec(
        "image_shape",
        "Basics",
        "text",
        'Size of the network input as "channels,height,width" with 1 or 3 channels; '
        "training images are cropped to it.",
    ),
    _spec(
        "epochs",
        "Basics",
        "int",
        "Number of passes over the training data.",
        minimum=1,
        maximum=MAX_EPOCHS,
    ),
    _spec(
        "mini_batch_size",
        "Basics",
        "int",
        "Images per training step; with several devices each one takes an equal share. "
        "Bounded by the memory one batch needs (see the README).",
        minimum=1,
        maximum=1_000_000,
    ),
    _spec(
        "multi_label",
        "Basics",
        "bool",
        "1 when an image may belong to several classes at once (a 0/1 label per class); "
        "accuracy is then the average over the classes.",
    ),
    _spec(
        "use_pretrained_model",
        "Basics",
        "bool",
        "1 to start from ImageNet weights of the same depth, with only the final layer "
        "trained from scratch; needs image_shape 3,224,224 and a large-image depth.",
    ),
    # Optimizer
    _spec(
        "optimizer",
        "Optimizer",
        "choice",
        "The optimizer: sgd, nag (Nesterov momentum), adam or rmsprop.",
        choices=OPTIMIZERS,
    ),
    _spec("learning_rate", "Optimizer", "float", "The initial learning rate.", **_POSITIVE_UNIT),
    _spec(
        "momentum",
        "Optimizer",
        "float",
        "Momentum for sgd and nag; the other optimizers ignore it.",
        **_UNIT,
    ),
    _spec(
        "weight_decay",
        "Optimizer",
        "float",
        "Weight-decay (L2 regularisation) coefficient for sgd and nag.",
        **_UNIT,
    ),
    _spec(
        "beta_1",
        "Optimizer",
        "float",
        "For adam: the exponential decay rate of the first-moment (mean) estimates.",
        **_UNIT,
    ),
    _spec(
        "beta_2",
        "Optimizer",
        "float",
        "For adam: the exponential decay rate of the second-moment (variance) estimates.",
        **_UNIT,
    ),
    _spec(
        "eps",
        "Optimizer",
        "float",
        "For adam and rmsprop: a small constant that avoids division by zero.",
        **_UNIT,
    ),
    _spec(
        "gamma",
        "Optimizer",
        "float",
        "For rmsprop: the decay factor of the moving average of squared gradients.",
        **_UNIT,
    ),
    # Schedule
    _spec(
        "lr_scheduler_step",
        "Schedule",
        "text",
        "Epochs after which the learning rate is multiplied by lr_scheduler_factor, e.g. "
        '"10,20" reduces it after the 10th and again after the 20th epoch.',
    ),
    _spec(
        "lr_scheduler_factor",
        "Schedule",
        "float",
        "Factor applied to the learning rate at each lr_scheduler_step epoch "
        "(new rate = old rate x factor).",
        **_POSITIVE_UNIT,
    ),
    _spec(
        "checkpoint_frequency",
        "Schedule",
        "int",
        "Keep the model every this many epochs (at most epochs). Empty keeps only the "
        "epoch with the best validation accuracy.",
        minimum=1,
        maximum=MAX_EPOCHS,
    ),
    _spec(
        "early_stopping",
        "Schedule",
        "bool",
        "Stop training early when the validation accuracy stops improving.",
    ),
    _spec(
        "early_stopping_min_epochs",
        "Schedule",
        "int",
        "Epochs to train before early stopping may stop the run.",
        minimum=1,
        maximum=MAX_EPOCHS,
    ),
    _spec(
        "early_stopping_patience",
        "Schedule",
        "int",
        "Epochs without improvement in validation accuracy after which training stops.",
        minimum=1,
        maximum=MAX_EPOCHS,
    ),
    _spec(
        "early_stopping_tolerance",
        "Schedule",
        "float",
        "Relative gain in validation accuracy (gain / previous best) below which an epoch "
        "does not count as an improvement.",
        **_UNIT,
    ),
    # Augmentation
    _spec(
        "augmentation_type",
        "Augmentation",
        "choice",
        "Random changes to training images: crop (random crop and horizontal flip), "
        "crop_color (also hue, saturation and lightness shifts), crop_color_transform "
        "(also rotation, shear and aspect-ratio changes).",
        choices=AUGMENTATION_TYPES,
    ),
    _spec(
        "resize",
        "Augmentation",
        "int",
        "Length in pixels of the shorter image side after resizing, before cropping; it must "
        "be larger than image_shape's height and width. Empty uses the images as they are.",
        minimum=1,
        maximum=MAX_LARGE_IMAGE_SIDE,
    ),
    # Advanced
    _spec(
        "use_weighted_loss",
        "Advanced",
        "bool",
        "1 to weight the multi-label cross-entropy loss by the class distribution; used only "
        "when multi_label is 1.",
    ),
    _spec(
        "top_k",
        "Advanced",
        "int",
        "Also report top-k accuracy (correct when the true class is among the k most "
        "probable); k is 2 or more, as top-1 is the ordinary accuracy.",
        minimum=2,
        maximum=MAX_CLASSES,
    ),
    _spec(
        "precision_dtype",
        "Advanced",
        "choice",
        "Precision of the weights in training: float32, or float16 (mixed precision, GPU "
        "only), which uses less memory.",
        choices=PRECISION_DTYPES,
    ),
    _spec(
        "kv_store",
        "Advanced",
        "choice",
        "How weight updates from several devices are combined: device (on the GPUs) or local "
        "(on the CPU); dist_sync and dist_async are for several machines. Empty means device.",
        choices=KV_STORES,
    ),
    _spec(
        "allow_large_images",
        "Advanced",
        "bool",
        "Ours, not SageMaker's (left out of anything handed to SageMaker): true lets "
        "image_shape's height and width and resize go above 2048 pixels, up to 16384.",
        ours=True,
    ),
)

_SPECS = {spec.name: spec for spec in FIELDS}


# --- rules between parameters and against the data ----------------------------------------


@dataclass
class _Findings:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, name: str, message: str) -> None:
        self.errors.append(Problem(name, message))

    def warn(self, name: str, message: str) -> None:
        self.warnings.append(str(Problem(name, message)))


class _Check(Protocol):
    def __call__(self, hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None: ...


@dataclass(frozen=True)
class _Rule:
    names: tuple[str, ...]
    check: _Check


_RULES: list[_Rule] = []


def _rule(*names: str) -> Callable[[_Check], _Check]:
    """Register a rule that reads the parameters ``names`` (checked only when they are valid)."""

    def register(check: _Check) -> _Check:
        _RULES.append(_Rule(names, check))
        return check

    return register


def _final_layer_cost(classes: int) -> str:
    weights = classes * _WIDEST_FEATURES
    return (
        f"the final layer for {classes:,} classes holds up to {weights:,} weights "
        f"({_bytes(weights * _FLOAT_BYTES)} as float32, and training keeps their gradients "
        "and optimizer state beside them)"
    )


# depth -> (bottleneck blocks?, units per stage) of the ImageNet-style ResNets (model zoo)
_IMAGENET_STAGES = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
    200: (True, (3, 24, 36, 3)),
}


def batch_memory(num_layers: int, shape: tuple[int, int, int], batch: int) -> int:
    """About how many bytes one training batch's input and activations take (float32).

    Counted from the network's shape: every map a block keeps for the backward pass, at its
    stage's resolution. A basic block keeps 7 maps of its width (convolution, norm, ReLU,
    convolution, norm, sum, ReLU), a bottleneck block 1.5 of its width for the two
    quarter-width convolutions and 4 for the rest; a stage's first block adds 2 for its
    projection. Weights, gradients and optimizer state come on top.
    """
    channels, height, width = shape

    def area(scale: int) -> int:
        return math.ceil(height / scale) * math.ceil(width / scale)

    if num_layers in SMALL_IMAGE_DEPTHS:
        units = (num_layers - 2) // 6
        stages = [(16, units, 1), (32, units, 2), (64, units, 4)]
        maps_per_unit = 7.0
        floats = 2 * 16 * area(1)  # stem convolution and norm
    else:
        bottleneck, counts = _IMAGENET_STAGES[num_layers]
        widths = (256, 512, 1024, 2048) if bottleneck else (64, 128, 256, 512)
        stages = [(w, n, 4 * 2**i) for i, (w, n) in enumerate(zip(widths, counts))]
        maps_per_unit = 5.5 if bottleneck else 7.0
        floats = 3 * 64 * area(2) + 64 * area(4)  # stem convolution, norm, ReLU; pooling
    for stage_width, units, scale in stages:
        floats += int((units * maps_per_unit + 2) * stage_width * area(scale))
    return batch * (channels * height * width + floats) * _FLOAT_BYTES


@_rule("image_shape", "allow_large_images")
def _image_side_within_limit(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    channels, height, width = hp.shape
    if max(height, width) > MAX_IMAGE_SIDE and not hp.allow_large_images:
        found.error(
            "image_shape",
            f"{height}x{width} has a side above {MAX_IMAGE_SIDE:,} pixels (one image is "
            f"{_bytes(channels * height * width * _FLOAT_BYTES)} as network input, its "
            "activations many times more); use a smaller shape, or set "
            "allow_large_images=true to insist",
        )


@_rule("resize", "allow_large_images")
def _resize_within_limit(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    if hp.resize is not None and hp.resize > MAX_IMAGE_SIDE and not hp.allow_large_images:
        found.error(
            "resize",
            f"{hp.resize:,} is above {MAX_IMAGE_SIDE:,} pixels (every image would be stored "
            "and decoded at that size); use a smaller value, or set allow_large_images=true "
            "to insist",
        )


@_rule("mini_batch_size", "image_shape", "num_layers")
def _batch_fits_memory(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    need = batch_memory(hp.num_layers, hp.shape, hp.mini_batch_size)
    if need <= BATCH_MEMORY_LIMIT:
        return
    _, height, width = hp.shape
    per_image = batch_memory(hp.num_layers, hp.shape, 1)
    fits = BATCH_MEMORY_LIMIT // per_image
    advice = (
        f"use at most {fits:,}, or smaller images"
        if fits
        else f"even one image needs {_bytes(per_image)}: use a smaller image_shape"
    )
    found.error(
        "mini_batch_size",
        f"{hp.mini_batch_size:,} images of {height}x{width} need about {_bytes(need)} for "
        f"one training batch's input and activations in a ResNet-{hp.num_layers}, more than "
        f"the {_bytes(BATCH_MEMORY_LIMIT)} allowed; {advice}",
    )


@_rule("resize", "image_shape")
def _resize_exceeds_crop(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    _, height, width = hp.shape
    if hp.resize is not None and hp.resize <= max(height, width):
        found.error(
            "resize",
            f"{hp.resize} is not larger than image_shape's height and width ({height} x "
            f"{width}); use more than {max(height, width)}, or leave it empty",
        )


@_rule("lr_scheduler_step", "epochs")
def _steps_within_epochs(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    late = [step for step in hp.lr_steps if step > hp.epochs]
    if late:
        found.error(
            "lr_scheduler_step",
            f"epoch {late[0]} is beyond epochs={hp.epochs}; steps must be at most {hp.epochs}",
        )


@_rule("checkpoint_frequency", "epochs")
def _checkpoints_within_epochs(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if hp.checkpoint_frequency is not None and hp.checkpoint_frequency > hp.epochs:
        found.error(
            "checkpoint_frequency",
            f"{hp.checkpoint_frequency} is more than epochs={hp.epochs}; use at most "
            f"{hp.epochs}, or leave it empty to keep only the best epoch",
        )


@_rule("use_pretrained_model", "image_shape", "num_layers")
def _pretrained_needs_imagenet_network(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if not hp.use_pretrained_model:
        return
    if hp.shape != PRETRAINED_SHAPE:
        found.error(
            "use_pretrained_model",
            f"ImageNet weights need image_shape 3,224,224, not {hp.image_shape}; change "
            "image_shape or set use_pretrained_model=0",
        )
    if hp.num_layers not in LARGE_IMAGE_DEPTHS:
        depths = ", ".join(map(str, LARGE_IMAGE_DEPTHS))
        found.error(
            "use_pretrained_model",
            f"num_layers={hp.num_layers} is a small-image (CIFAR-style) network without "
            f"ImageNet weights; choose num_layers from {depths}",
        )


@_rule("use_weighted_loss", "multi_label")
def _weighted_loss_is_multi_label(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if hp.use_weighted_loss and not hp.is_multi_label:
        found.warn("use_weighted_loss", "is ignored unless multi_label=1")


@_rule("kv_store")
def _kv_store_on_one_machine(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    if hp.kv_store in DISTRIBUTED_KV_STORES:
        found.warn(
            "kv_store",
            f"{hp.kv_store} is for training across several machines; on one machine use "
            "device or local",
        )


@_rule("early_stopping", "early_stopping_min_epochs", "epochs")
def _early_stopping_can_act(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    if hp.early_stopping and hp.early_stopping_min_epochs >= hp.epochs:
        found.warn(
            "early_stopping",
            f"cannot stop the run early: early_stopping_min_epochs="
            f"{hp.early_stopping_min_epochs} is not below epochs={hp.epochs}",
        )


@_rule("num_classes", "multi_label")
def _num_classes_matches_data(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if data is None or hp.num_classes is None or hp.num_classes == data.num_classes:
        return
    given, actual = hp.num_classes, data.num_classes
    if hp.is_multi_label:
        found.error(
            "num_classes",
            f"{given}, but the multi-label training data has {actual} label columns; "
            "leave it empty to use the data's count",
        )
    elif given < actual:
        found.error(
            "num_classes",
            f"{given}, but the training data has {actual} classes (labels up to {actual - 1}); "
            "leave it empty to use the data's count",
        )
    else:
        found.warn(
            "num_classes",
            f"{given}, but the training data has {actual} classes; the other "
            f"{given - actual} outputs are never trained",
        )


@_rule("num_training_samples")
def _sample_count_matches_data(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    given = hp.num_training_samples
    if data is not None and given is not None and given != data.num_training_samples:
        found.warn(
            "num_training_samples",
            f"{given}, but the training data has {data.num_training_samples} images; "
            "leave it empty to use the data's count",
        )


@_rule("mini_batch_size", "num_training_samples")
def _batch_fits_training_set(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    samples = data.num_training_samples if data is not None else hp.num_training_samples
    if samples is not None and hp.mini_batch_size > samples:
        found.error(
            "mini_batch_size",
            f"{hp.mini_batch_size} is larger than the training set ({samples} images); "
            f"use at most {samples}",
        )


@_rule("top_k", "num_classes")
def _top_k_within_classes(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    classes = hp.num_classes
    if classes is None and data is not None:
        classes = data.num_classes
    if hp.top_k is not None and classes is not None and hp.top_k > classes:
        found.error(
            "top_k",
            f"{hp.top_k} is more than the number of classes ({classes}); use at most {classes}",
        )


@_rule("multi_label")
def _multi_label_matches_data(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if data is None or data.multi_label is None or data.multi_label == hp.is_multi_label:
        return
    if data.multi_label:
        message = "0, but the training data is multi-label; set multi_label=1"
    else:
        message = "1, but the training data has one label per image; set multi_label=0"
    found.error("multi_label", message)
