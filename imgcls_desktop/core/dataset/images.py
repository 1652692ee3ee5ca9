"""Reading image bytes: what an image is (probe) and its pixels as 8-bit BGR (decode).

Headers of JPEG and PNG are parsed directly, which is cheap and tells what OpenCV hides
(CMYK JPEGs, truncated files, 16-bit and palette PNGs). Other formats are probed by decoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

_JPEG_EOI = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"
# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


class ImageError(Exception):
    """The bytes are not a usable image; the message is the reason."""


@dataclass(frozen=True)
class ImageInfo:
    """What a probe learned about an image without trusting the decoder alone."""

    format: str
    width: int
    height: int
    channels: int
    bit_depth: int
    cmyk: bool = False

    @property
    def needs_conversion(self) -> bool:
        """True unless the image already is 8-bit, 3-channel colour."""
        return self.channels != 3 or self.bit_depth != 8 or self.cmyk

    def describe_conversion(self) -> str:
        """Why the image is converted on export ("grayscale", "alpha", "16-bit", "CMYK")."""
        reasons = []
        if self.cmyk:
            reasons.append("CMYK")
        elif self.channels in (1, 2):
            reasons.append("grayscale")
        if self.channels in (2, 4) and not self.cmyk:
            reasons.append("alpha")
        if self.bit_depth > 8:
            reasons.append(f"{self.bit_depth}-bit")
        return ", ".join(reasons)


def sniff_format(data: bytes) -> str | None:
    """The image format from its magic bytes, or None when the bytes are not an image."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def probe(data: bytes) -> ImageInfo:
    """Size, channels, bit depth and colour model of an image; :class:`ImageError` if unusable.

    Truncated JPEG and PNG files are refused here: OpenCV would decode them with a grey
    bottom and only a warning on stderr.
    """
    if not data:
        raise ImageError("empty file (0 bytes)")
    image_format = sniff_format(data)
    if image_format is None:
        raise ImageError("not an image (unknown file signature)")
    if image_format == "jpeg":
        return _probe_jpeg(data)
    if image_format == "png":
        return _probe_png(data)
    return _probe_by_decoding(data, image_format)


def _probe_jpeg(data: bytes) -> ImageInfo:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ImageError("corrupt JPEG (bad marker)")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF_MARKERS:
            if position + 10 > len(data):
                break
            precision, height, width, components = struct.unpack(
                ">BHHB", data[position + 4 : position + 10]
            )
            if width == 0 or height == 0:
                raise ImageError("corrupt JPEG (zero width or height)")
            if not data.rstrip(b"\x00").endswith(_JPEG_EOI):
                raise ImageError("truncated JPEG (no end-of-image marker)")
            return ImageInfo(
                format="jpeg",
                width=width,
                height=height,
                channels=3 if components == 4 else components,
                bit_depth=precision,
                cmyk=components == 4,
            )
        position += 2 + length
    raise ImageError("truncated or corrupt JPEG (no frame header)")


def _probe_png(data: bytes) -> ImageInfo:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageError("truncated or corrupt PNG (no header)")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", data[16:26])
    if color_type not in _PNG_CHANNELS or width == 0 or height == 0:
        raise ImageError("corrupt PNG header")
    if _PNG_IEND not in data[-64:]:
        raise ImageError("truncated PNG (no end chunk)")
    bit_depth = 8 if color_type == 3 else bit_depth
    return ImageInfo("png", width, height, _PNG_CHANNELS[color_type], max(bit_depth, 8))


def _probe_by_decoding(data: bytes, image_format: str) -> ImageInfo:
    image = _imdecode(data, cv2.IMREAD_UNCHANGED)
    channels = 1 if image.ndim == 2 else image.shape[2]
    bit_depth = image.dtype.itemsize * 8
    return ImageInfo(image_format, image.shape[1], image.shape[0], channels, bit_depth)


def _imdecode(data: bytes, flags: int) -> np.ndarray:
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as error:
        too_large = "CV_IO_MAX_IMAGE_PIXELS" in (error.err or "")
        reason = "more pixels than OpenCV accepts" if too_large else "OpenCV refused it"
        raise ImageError(f"cannot be decoded ({reason})") from None
    if image is None or image.size == 0:
        raise ImageError("cannot be decoded (corrupt or unsupported image data)")
    return image


def reduction_factor(width: int, height: int, shorter_side: int | None) -> int:
    """The largest JPEG DCT scale-down (1, 2, 4, 8) that keeps the shorter side >= target."""
    if not shorter_side:
        return 1
    smallest = min(width, height)
    for factor in (8, 4, 2):
        if smallest // factor >= shorter_side:
            return factor
    return 1


_REDUCED_FLAGS = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def decode_bgr(
    data: bytes, info: ImageInfo | None = None, shorter_side: int | None = None
) -> np.ndarray:
    """Decode to an 8-bit, 3-channel BGR array (grayscale, alpha, 16-bit and CMYK converted).

    When ``shorter_side`` is given, a JPEG is decoded at the largest reduced scale that
    still leaves its shorter side at least that long (much faster for large photos).
    """
    info = info or probe(data)
    factor = reduction_factor(info.width, info.height, shorter_side) if info.format == "jpeg" else 1
    if factor > 1:
        return _imdecode(data, _REDUCED_FLAGS[factor])
    if not info.needs_conversion:
        return _imdecode(data, cv2.IMREAD_COLOR)
    image = _imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 2:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.integer):
        scale = 255.0 / np.iinfo(image.dtype).max
        return (image.astype(np.float32) * scale).round().astype(np.uint8)
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def resize_shorter_side(image: np.ndarray, shorter_side: int) -> np.ndarray:
    """Resize so the shorter side is ``shorter_side`` pixels, keeping the aspect ratio."""
    height, width = image.shape[:2]
    scale = shorter_side / min(height, width)
    if scale == 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Area averaging avoids aliasing on strong shrinks; above half size linear is as good
    # and faster (a reduced JPEG decode leaves at most a 2x shrink).
    interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)
