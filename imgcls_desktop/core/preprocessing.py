"""What inference does to an image before the network sees it: one record, two ends.

Training writes it (``preprocessing.json`` in the run folder, from
:func:`~imgcls_desktop.core.training.data.inference_preprocessing`); opening a model reads
it back (:mod:`imgcls_desktop.core.models`) and the Predictor follows it
(:mod:`imgcls_desktop.core.inference`). Either:

- our runs: the shorter side resized to ``shorter_side`` keeping the aspect ratio, then the
  central ``height x width`` cropped (offsets ``(side - crop) // 2``), with the
  :class:`Interpolation` validation used;
- SageMaker and plain MXNet models (``shorter_side`` None): the whole image resized to
  ``height x width``, bilinear, as SageMaker's hosting does.

Either way the network gets RGB (or grey for one channel) raw 0-255 float32 values in NCHW:
our networks normalise inside themselves. The JSON keeps the descriptive keys earlier
versions wrote (``value_range``, ``layout``...), so older readers and people can read it;
:meth:`Preprocessing.from_json` reads the files of every version.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Interpolation(str, enum.Enum):
    """How the shorter side was resized (the JSON values are the ones files have held)."""

    LINEAR = "linear"
    """Bilinear throughout: ``ImageRecordIter``'s own ``resize`` (a ``.rec`` read where it
    was), or SageMaker's whole-image resize."""
    PACKER = "linear, area below half size"
    """The packer's: bilinear, area averaging when shrinking below half size, a JPEG decoded
    at a reduced scale where it can be (:func:`~imgcls_desktop.core.dataset.images.\
resize_shorter_side`)."""


class PreprocessingError(ValueError):
    """A preprocessing record that cannot be followed; the message says what is wrong."""


@dataclass(frozen=True)
class Preprocessing:
    """How to prepare an image for a network of input ``(channels, height, width)``.

    ``shorter_side`` set: resize the shorter side to it, then crop the centre; None: resize
    the whole image to ``height x width``. ``multi_label``: the network gives a sigmoid per
    class instead of a softmax.
    """

    channels: int
    height: int
    width: int
    multi_label: bool = False
    shorter_side: int | None = None
    interpolation: Interpolation = Interpolation.LINEAR

    @property
    def shape(self) -> tuple[int, int, int]:
        """The network input as (C, H, W)."""
        return self.channels, self.height, self.width

    @property
    def center_crop(self) -> bool:
        """True for our runs' shorter-side resize and centre crop."""
        return self.shorter_side is not None

    @classmethod
    def whole_image(cls, shape: tuple[int, int, int], multi_label: bool = False) -> Preprocessing:
        """SageMaker's documented inference preprocessing: the whole image resized to H x W."""
        channels, height, width = shape
        return cls(channels, height, width, multi_label)

    def to_json(self) -> dict[str, Any]:
        """The ``preprocessing.json`` values (the keys and words earlier versions wrote)."""
        if self.shorter_side is None:
            resize: dict[str, Any] = {"resize": "whole image", "crop": "none"}
        else:
            resize = {"resize_shorter_side": self.shorter_side, "crop": "center"}
        return {
            **resize,
            "interpolation": self.interpolation.value,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "color": "RGB" if self.channels == 3 else "grayscale",
            "value_range": [0, 255],
            "normalization": "inside the network",
            "layout": "NCHW",
            "dtype": "float32",
            "multi_label": self.multi_label,
            "output": "sigmoid per class" if self.multi_label else "softmax",
        }

    @classmethod
    def from_json(cls, values: object) -> Preprocessing:
        """Read :meth:`to_json`'s values, from any version; :class:`PreprocessingError`
        says what is wrong. Descriptive keys are not checked: they follow from the others."""
        if not isinstance(values, dict):
            raise PreprocessingError("it is not a JSON object")
        channels = _whole(values, "channels", 3)
        if channels not in (1, 3):
            raise PreprocessingError(f"its 'channels' is {channels}, not 1 or 3")
        height, width = _whole(values, "height"), _whole(values, "width")
        side = None
        if values.get("crop") == "center":
            side = _whole(values, "resize_shorter_side")
        try:
            interpolation = Interpolation(values.get("interpolation", "linear"))
        except ValueError:
            known = " or ".join(repr(item.value) for item in Interpolation)
            raise PreprocessingError(
                f"its 'interpolation' is {values.get('interpolation')!r}, not {known}"
            ) from None
        return cls(channels, height, width, bool(values.get("multi_label")), side, interpolation)


def _whole(values: dict[str, Any], name: str, default: int | None = None) -> int:
    value = values.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PreprocessingError(f"its {name!r} is {value!r}, not a whole number of pixels")
    return value
