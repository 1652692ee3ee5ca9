"""One hyperparameter value: what it may be, how it is parsed from text, how it is written.

:class:`FieldSpec` describes one field (group, kind, range, choices, meaning); it parses
SageMaker's string form or a native JSON value into the typed value and writes it back as
SageMaker's text. The limits and choices here are SageMaker's, plus the upper bounds that
keep a run within memory, disk and time (see the package docstring).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

LARGE_IMAGE_DEPTHS = (18, 34, 50, 101, 152, 200)
SMALL_IMAGE_DEPTHS = (20, 32, 44, 56, 110)
#: Each ImageNet-style depth: (bottleneck blocks?, blocks per stage), as MXNet's ResNets.
IMAGENET_STAGES = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
    200: (True, (3, 24, 36, 3)),
}
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
class TextFormat:
    """A ``text`` field's form: its parser to whole numbers, and what it allows in words."""

    parse: Callable[[object], tuple[int, ...]]
    allowed: str


@dataclass(frozen=True)
class FieldSpec:
    """One hyperparameter as parsing, the string form, the docs and the form see it.

    ``kind`` is one of :data:`KINDS` and ``group`` one of :data:`GROUPS`; ``default`` and
    ``choices`` hold typed values (``str(choice)`` is the text form); ``minimum`` is
    exclusive when ``exclusive_minimum``; ``optional`` fields may be empty (``None``).
    ``text_format`` parses a ``text`` field. ``too_large`` says what a value above
    ``maximum`` would cost; ``ours`` marks a field that is not SageMaker's (left out of
    :meth:`~imgcls_desktop.core.hyperparams.HyperParameters.to_sagemaker`).
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
    text_format: TextFormat | None = None

    @property
    def allowed(self) -> str:
        """What values this field accepts, in words (used in every message about it)."""
        if self.text_format is not None:
            words = self.text_format.allowed
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
        if self.text_format is not None:
            return ",".join(str(number) for number in self.text_format.parse(raw))
        if self.kind == "bool":
            return type(self.default)(_parse_bool(raw))
        if self.kind == "choice":
            choices = self.choices or ()
            if all(isinstance(choice, int) for choice in choices):
                value: object = parse_int(raw)
            elif isinstance(raw, str):
                value = raw.strip().lower()
            else:
                raise ValueError(f"{show(raw)} is not text")
            if value not in choices:
                raise ValueError(f"{show(raw)} is not a valid choice")
            return value
        number = parse_int(raw) if self.kind == "int" else _parse_number(raw)
        if self.minimum is not None and (
            number <= self.minimum if self.exclusive_minimum else number < self.minimum
        ):
            raise ValueError(f"{_number(number)} is too small")
        if self.maximum is not None and number > self.maximum:
            cost = f": {self.too_large(number)}" if self.too_large else ""
            raise ValueError(f"{_number(number)} is too large{cost}")
        return number


def show(raw: object) -> str:
    """A value as messages quote it: text in quotes, at most 40 characters."""
    shown = json.dumps(raw, ensure_ascii=False) if isinstance(raw, str) else repr(raw)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def format_bytes(size: float) -> str:
    """A size in bytes as MB, GB or TB, one decimal."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size / 1e6:,.1f} MB"


def parse_int(raw: object) -> int:
    """A whole number from an int, ``"30"`` or ``"30.0"``; ValueError says why not."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            pass  # perhaps "30.0"
    number = _parse_number(raw)
    if not number.is_integer():
        raise ValueError(f"{show(raw)} is not a whole number")
    return int(number)


def parse_image_shape(raw: object) -> tuple[int, ...]:
    """(C, H, W) from ``"3,224,224"`` or a list; ValueError says why it is malformed."""
    numbers = _parse_int_list(raw)
    if len(numbers) != 3:
        raise ValueError(f"{show(raw)} has {len(numbers)} number(s), not 3")
    if numbers[0] not in (1, 3):
        raise ValueError(f"{show(raw)} has {numbers[0]} channels")
    if min(numbers[1:]) < 1:
        raise ValueError(f"{show(raw)} has a height or width below 1")
    if max(numbers[1:]) > MAX_LARGE_IMAGE_SIDE:
        raise ValueError(f"{show(raw)} has a height or width above {MAX_LARGE_IMAGE_SIDE:,}")
    return numbers


def parse_lr_steps(raw: object) -> tuple[int, ...]:
    """The epochs of ``"10,20"`` or a list; ValueError says why it is malformed."""
    steps = _parse_int_list(raw)
    if len(steps) > MAX_LR_STEPS:
        raise ValueError(f"{show(raw)} has {len(steps):,} steps, more than {MAX_LR_STEPS:,}")
    if min(steps) < 1:
        raise ValueError(f"{show(raw)} has an epoch below 1")
    if max(steps) > MAX_EPOCHS:
        raise ValueError(f"{show(raw)} has an epoch above {MAX_EPOCHS:,}")
    if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
        raise ValueError(f"{show(raw)} is not strictly increasing")
    return steps


IMAGE_SHAPE_FORMAT = TextFormat(
    parse_image_shape,
    '"C,H,W" with C 1 or 3 and H, W whole numbers from 1 to 2048 (16384 with '
    'allow_large_images), e.g. "3,224,224"',
)
LR_STEPS_FORMAT = TextFormat(
    parse_lr_steps,
    'at most 1000 strictly increasing epochs >= 1 separated by commas, e.g. "10,20"',
)


def _number(number: float) -> str:
    """A parsed number as messages show it: whole, or in e-notation when very long."""
    text = str(number)
    return text if len(text) <= 15 else f"{number:.3g}"


def _bound(value: float) -> str:
    """A range bound as the allowed values show it: 100,000 or 0.5."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _parse_number(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"{show(raw)} is not a number")
    try:
        number = float(raw)
    except (ValueError, OverflowError):
        raise ValueError(f"{show(raw)} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{show(raw)} is not a finite number")
    return number


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("true", "1", "false", "0"):
        return raw.strip().lower() in ("true", "1")
    raise ValueError(f"{show(raw)} is not true/false or 1/0")


def _parse_int_list(raw: object) -> tuple[int, ...]:
    """Whole numbers from ``"10,20"``, ``"10, 20"``, ``[10, 20]`` or ``10``."""
    if isinstance(raw, str):
        items: list[object] = list(raw.split(","))
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        items = [raw]
    else:
        raise ValueError(f"{show(raw)} is not a list of whole numbers")
    try:
        return tuple(parse_int(item) for item in items)
    except ValueError:
        raise ValueError(f"{show(raw)} is not a list of whole numbers") from None
