"""The Predictor: images -> per-class probabilities, prepared exactly as the model expects.

Images are prepared with the model's own preprocessing record
(:attr:`~imgcls_desktop.core.models.LoadedModel.preprocessing`):

- our runs: the shorter side resized to ``S`` then the central ``H x W`` cropped, with the
  interpolation validation used (the packer's, or ``ImageRecordIter``'s bilinear), so the
  accuracy training reported is what inference gets;
- SageMaker and plain MXNet models: the whole image resized to ``H x W`` (bilinear), as
  SageMaker's hosting does.

An image far longer than wide (a 1 x 999,999 strip enlarged to a shorter side of 224 px
would take 150 GB) is never resized whole: only the part the centre crop sees is, so memory
stays a few times the crop's; its pixels differ from a whole resize by a sub-pixel shift.

A JPEG at least twice as large as needed (the shorter side, or H x W for a whole-image
resize) is decoded at the largest reduced scale (1/2, 1/4, 1/8) that still leaves it that
large, then resized as above: the decode costs up to 4x less, as much as a small network.
For a run's packer preprocessing this is exactly what the packer did; otherwise the
decoder's block averaging slightly smooths what a bilinear resize of the full image would
alias: on photo-like JPEGs the prepared pixels differ from a full decode's by a mean of 2-3
(of 255) and at most 4 (tested), less than area averaging instead of bilinear resizing
changes (about 3).

Either way the network gets RGB (or grey) 0-255 float32 pixels in NCHW. The network is a
hybridized ``gluon.SymbolBlock`` on the model's probability symbol (no label input), or on
a reduced-precision version of it (:class:`Network`, made by
:mod:`imgcls_desktop.core.precision`); batches always have ``batch_size`` rows (the last one
padded), so its static memory plan is reused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import cv2
import numpy as np

from imgcls_desktop.core.dataset.images import (
    decode_bgr,
    probe,
    shorter_side_size,
    shrink_interpolation,
)
from imgcls_desktop.core.devices import parse_devices
from imgcls_desktop.core.jobs import chunks
from imgcls_desktop.core.models import LoadedModel, open_model
from imgcls_desktop.core.preprocessing import Interpolation
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import DATA_NAME

if TYPE_CHECKING:
    from mxnet.context import Context
    from mxnet.gluon import HybridBlock
    from mxnet.ndarray import NDArray
    from mxnet.symbol import Symbol

#: What :meth:`Predictor.predict` accepts: a BGR uint8 array, encoded bytes or a file path.
ImageInput = Union[np.ndarray, bytes, str, Path]

DEFAULT_THRESHOLD = 0.5
#: The likeliest classes listed per image, and the k of top-k accuracy.
TOP_K = 5

# Up to this many times the crop's pixels, the whole image is resized (exactly as
# validation did it); beyond, only the window the crop sees.
_WHOLE_RESIZE_LIMIT = 16


@dataclass(frozen=True)
class Network:
    """What a :class:`Predictor` runs: ``symbol`` (``data`` -> probabilities), its weights by
    name, and the arithmetic it does (``fp32``, ``int8``, ``bf16``); ``note`` says how that
    precision was chosen, for the user."""

    symbol: Symbol
    arrays: dict[str, NDArray]
    precision: str = "fp32"
    note: str = ""


def fp32_network(model: LoadedModel) -> Network:
    """The model's own network: its probability symbol and weights, in fp32."""
    return Network(model.probability_symbol(), {**model.arg_params, **model.aux_params})


def symbol_block(network: Network, context: Context) -> HybridBlock:
    """A hybridized block running ``network`` on ``context``, with a static memory plan."""
    mx = mxnet()
    # The input's declared type lets the block infer each weight's own (int8, bf16).
    net = mx.gluon.SymbolBlock(network.symbol, mx.sym.var(DATA_NAME, dtype="float32"))
    params = net.collect_params()
    for name, param in params.items():
        param.shape = tuple(network.arrays[name].shape)
    params.initialize(mx.init.Zero(), ctx=context)
    for name, param in params.items():
        param.set_data(network.arrays[name])
    net.hybridize(static_alloc=True, static_shape=True)
    return net


class Predictor:
    """Per-class probabilities for images, batched on one device (the first of ``device``).

    ``device`` as :func:`~imgcls_desktop.core.devices.parse_devices` (default: a GPU when
    MXNet sees one, else the CPU); ``network`` the model's own in fp32 unless given.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        device: str | None = None,
        batch_size: int = 32,
        network: Network | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"the batch size must be at least 1, not {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.context = parse_devices(device)[0]
        self.network = network or fp32_network(model)
        self._net = symbol_block(self.network, self.context)

    @property
    def class_names(self) -> list[str]:
        """The model's class names, in output order."""
        return self.model.class_names

    @property
    def precision(self) -> str:
        """The arithmetic the network runs in: ``fp32``, ``int8`` or ``bf16``."""
        return self.network.precision

    def preprocess(self, image: bytes | np.ndarray) -> np.ndarray:
        """One image (encoded bytes, or a decoded BGR uint8 array) as the network's input:
        float32 C x H x W, 0-255, RGB or grey. Raises ``ImageError`` for unusable bytes."""
        p = self.model.preprocessing
        height, width, side = p.height, p.width, p.shorter_side
        if isinstance(image, (bytes, bytearray, memoryview)):
            # A JPEG at least twice the size needed is decoded at a reduced scale (see the
            # module docstring).
            data = bytes(image)
            if side is None:
                image = decode_bgr(data, probe(data), size=(width, height))
            else:
                image = decode_bgr(data, probe(data), side)
        if side is not None:
            image = _center_crop_as_validation(image, side, (height, width), p.interpolation)
        else:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        if p.channels == 1:
            pixels = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[np.newaxis]
        else:
            pixels = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
        return pixels.astype(np.float32)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N x classes) for preprocessed images (N x C x H x W)."""
        mx = mxnet()
        count = len(batch)
        outputs = []
        for start in range(0, count, self.batch_size):
            chunk = batch[start : start + self.batch_size]
            rows = len(chunk)
            if rows < self.batch_size:
                padding = np.zeros((self.batch_size - rows, *chunk.shape[1:]), np.float32)
                chunk = np.concatenate([chunk, padding])
            data = mx.nd.array(chunk, ctx=self.context, dtype="float32")
            outputs.append(self._net(data).asnumpy()[:rows])
        if not outputs:
            return np.zeros((0, self.model.num_classes), np.float32)
        return np.concatenate(outputs)

    def predict(self, images: Iterable[ImageInput]) -> np.ndarray:
        """Probabilities (N x classes) for images given as arrays, bytes or paths."""
        prepared = (self.preprocess(read_image(image)) for image in images)
        results = [self.forward(np.stack(chunk)) for chunk in chunks(prepared, self.batch_size)]
        if not results:
            return np.zeros((0, self.model.num_classes), np.float32)
        return np.concatenate(results)


def open_predictor(
    path: Path,
    *,
    labels: Path | None = None,
    input_shape: tuple[int, int, int] | None = None,
    device: str | None = None,
    batch_size: int = 32,
) -> Predictor:
    """Open the model at ``path`` (see :func:`~imgcls_desktop.core.models.open_model`; class
    names from ``labels`` if given) on ``device``, ready for inference."""
    model = open_model(Path(path), labels=labels, input_shape=input_shape)
    return Predictor(model, device=device, batch_size=batch_size)


def read_image(image: ImageInput) -> bytes | np.ndarray:
    """Bytes or an array as they are; a path's bytes (``OSError`` when it cannot be read)."""
    if isinstance(image, (str, Path)):
        return Path(image).read_bytes()
    return image


def top_k(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most probable classes of each row: (indices, probabilities), surest first."""
    k = max(1, min(k, probabilities.shape[1]))
    indices = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return indices, np.take_along_axis(probabilities, indices, axis=1)


def labels_above(
    probabilities: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> list[list[int]]:
    """Multi-label: the classes of each row whose probability reaches ``threshold``."""
    return [np.flatnonzero(row >= threshold).tolist() for row in probabilities]


def _center_crop_as_validation(
    image: np.ndarray, side: int, crop: tuple[int, int], interpolation: Interpolation
) -> np.ndarray:
    """The central ``crop`` (height, width) of the image with its shorter side resized to
    ``side`` as validation did it (see the module docstring)."""
    height, width = image.shape[:2]
    if interpolation is Interpolation.LINEAR:
        # ImageRecordIter's ``resize``: the longer side in integer arithmetic, bilinear.
        longer = side * max(height, width) // min(height, width)
        size = (side, longer) if height > width else (longer, side)
        flag = cv2.INTER_LINEAR
    else:
        size = shorter_side_size(width, height, side)
        flag = shrink_interpolation(side / min(height, width))
    (resized_width, resized_height), (crop_height, crop_width) = size, crop
    top, left = (resized_height - crop_height) // 2, (resized_width - crop_width) // 2
    if resized_width * resized_height > _WHOLE_RESIZE_LIMIT * crop_height * crop_width:
        rows, resized_height, top = _crop_window(top, crop_height, resized_height, height)
        columns, resized_width, left = _crop_window(left, crop_width, resized_width, width)
        image = image[rows, columns]
    if image.shape[:2] != (resized_height, resized_width):
        image = cv2.resize(image, (resized_width, resized_height), interpolation=flag)
    return image[top : top + crop_height, left : left + crop_width]


def _crop_window(start: int, length: int, resized: int, source: int) -> tuple[slice, int, int]:
    """Along one axis, the source pixels that ``length`` resized pixels from ``start`` come
    from (plus what the interpolation reads around them): (source slice, their resized
    length, the crop's start in it)."""
    scale = resized / source
    margin = math.ceil(1 / scale) + 1
    first = max(0, math.floor(start / scale) - margin)
    last = min(source, math.ceil((start + length) / scale) + margin)
    if first == 0 and last == source:
        return slice(None), resized, start
    start = round(start - first * scale)
    return slice(first, last), max(round((last - first) * scale), start + length), start
