"""Image bytes and decoded pixels as QImages: safe to build in a worker thread and hand over."""

from __future__ import annotations

import math

import cv2
import numpy as np
from PySide6.QtGui import QImage

from imgcls_desktop.core.dataset.images import decode_bgr, probe


def bgr_to_qimage(array: np.ndarray) -> QImage:
    """A QImage holding its own copy of an 8-bit BGR array (height x width x 3).

    The copy owns its pixels, so the array may be freed and the image sent to another thread.
    """
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an 8-bit BGR image, got {array.dtype} {array.shape}")
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    view = QImage(array.data, width, height, array.strides[0], QImage.Format.Format_BGR888)
    return view.copy()


def load_qimage(data: bytes, max_side: int) -> QImage:
    """Decode image bytes to a QImage whose longer side is at most ``max_side`` pixels.

    Smaller images keep their size. Large JPEGs are decoded at a reduced scale, which is much
    faster than a full decode. Raises ``ImageError`` when the bytes are not a usable image.
    """
    info = probe(data)
    longer, shorter = max(info.width, info.height), min(info.width, info.height)
    shorter_when_fitted = max(1, math.ceil(shorter * max_side / longer))
    image = decode_bgr(data, info, shorter_side=shorter_when_fitted)
    return bgr_to_qimage(_fit_within(image, max_side))


def _fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longer side is at most ``max_side``, keeping the aspect ratio."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
