"""The Predictor: images -> per-class probabilities, prepared exactly as the model expects.

Images are prepared with the model's own preprocessing record
(:attr:`~imgcls_desktop.core.models.LoadedModel.preprocessing`):

- our runs: the shorter side resized to ``S`` then the central ``H x W`` cropped, with the
  interpolation validation used (the packer's, or ``ImageRecordIter``'s bilinear), so the
  accuracy training reported is what inference gets;
- SageMaker and plain MXNet models: the whole image resized to ``H x W`` (bilinear), as
  SageMaker's hosting does.

Either way the network gets RGB (or grey) 0-255 float32 pixels in NCHW. The network is a
hybridized ``gluon.SymbolBlock`` on the model's probability symbol (no label input); batches
always have ``batch_size`` rows (the last one padded), so its static memory plan is reused.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np

from imgcls_desktop.core.dataset.images import decode_bgr, probe, resize_shorter_side
from imgcls_desktop.core.devices import parse_devices
from imgcls_desktop.core.models import LoadedModel
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import DATA_NAME

#: What :meth:`Predictor.predict` accepts: a BGR uint8 array, encoded bytes or a file path.
ImageInput = Union[np.ndarray, bytes, str, Path]

DEFAULT_THRESHOLD = 0.5

# ``interpolation`` in a run's preprocessing record when ``ImageRecordIter`` resized the
# validation images itself (a ``.rec`` read where it was).
_RECORD_ITER_RESIZE = "linear"


class Predictor:
    """Per-class probabilities for images, batched on one device (the first of ``device``).

    ``device`` as :func:`~imgcls_desktop.core.devices.parse_devices` (default: a GPU when
    MXNet sees one, else the CPU).
    """

    def __init__(
        self, model: LoadedModel, *, device: str | None = None, batch_size: int = 32
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"the batch size must be at least 1, not {batch_size}")
        mx = mxnet()
        self.model = model
        self.batch_size = batch_size
        self.context = parse_devices(device)[0]
        net = mx.gluon.SymbolBlock(
            model.probability_symbol(), mx.sym.var(DATA_NAME, dtype="float32")
        )
        arrays = {**model.arg_params, **model.aux_params}
        params = net.collect_params()
        for name, param in params.items():
            param.shape = tuple(arrays[name].shape)
        params.initialize(mx.init.Zero(), ctx=self.context)
        for name, param in params.items():
            param.set_data(arrays[name])
        net.hybridize(static_alloc=True, static_shape=True)
        self._net = net

    @property
    def class_names(self) -> list[str]:
        """The model's class names, in output order."""
        return self.model.class_names

    def preprocess(self, image: bytes | np.ndarray) -> np.ndarray:
        """One image (encoded bytes, or a decoded BGR uint8 array) as the network's input:
        float32 C x H x W, 0-255, RGB or grey. Raises ``ImageError`` for unusable bytes."""
        p = self.model.preprocessing
        height, width = int(p["height"]), int(p["width"])
        side = p.get("resize_shorter_side") if p.get("crop") == "center" else None
        if isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
            # A JPEG may be decoded at a reduced scale only where the packer did so too.
            reduce_to = side if side and p.get("interpolation") != _RECORD_ITER_RESIZE else None
            image = decode_bgr(data, probe(data), reduce_to)
        if side:
            image = _resize_as_validation(image, int(side), p.get("interpolation"))
            top = (image.shape[0] - height) // 2
            left = (image.shape[1] - width) // 2
            image = image[top : top + height, left : left + width]
        else:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        if int(p.get("channels", 3)) == 1:
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
        results = [self.forward(np.stack(chunk)) for chunk in _chunks(prepared, self.batch_size)]
        if not results:
            return np.zeros((0, self.model.num_classes), np.float32)
        return np.concatenate(results)


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


def _resize_as_validation(image: np.ndarray, side: int, interpolation: Any) -> np.ndarray:
    """Shorter side to ``side`` exactly as validation did it (see the module docstring)."""
    if interpolation != _RECORD_ITER_RESIZE:
        return resize_shorter_side(image, side)
    # ImageRecordIter's ``resize``: the longer side in integer arithmetic, bilinear.
    height, width = image.shape[:2]
    size = (side, side * height // width) if height > width else (side * width // height, side)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` items."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
