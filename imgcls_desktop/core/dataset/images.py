"""Reading image bytes: what an image is (probe) and its pixels as 8-bit BGR (decode).

Headers of JPEG and PNG are parsed directly, which is cheap and tells what OpenCV hides
(CMYK JPEGs, truncated files, 16-bit and palette PNGs). BMP, TIFF and WebP headers give
the size; their channels and depth are then learned by decoding.

A pixel budget guards memory: a few kilobytes of PNG can declare 400 megapixels (1.2 GB
decoded). :func:`probe` refuses, from the header and before anything is decoded, an image
of more than :func:`max_pixels` (100 megapixels unless ``$IMGCLS_MAX_PIXELS`` says
otherwise), and :func:`resize_shorter_side` refuses to make one. Every step that reads one
image among many catches :data:`IMAGE_ERRORS` and reports :func:`image_error_reason` for
that image.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

#: The environment variable that sets the pixel budget (a whole number of pixels).
MAX_PIXELS_VARIABLE = "IMGCLS_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 100_000_000

_JPEG_EOI = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"
# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


class ImageError(Exception):
    """The bytes are not a usable image; the message is the reason."""


#: What reading, decoding or resizing one image can raise: that image's problem, not the job's.
IMAGE_ERRORS = (ImageError, OSError, cv2.error, MemoryError)


def image_error_reason(error: BaseException) -> str:
    """Why one image could not be used, in words for users (one of :data:`IMAGE_ERRORS`)."""
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(error, OSError):
        return f"cannot be read ({error.strerror or error})"
    if isinstance(error, MemoryError):
        return "not enough memory to decode it"
    if isinstance(error, cv2.error):
        detail = (error.err or str(error)).strip().splitlines()[0]
        return f"OpenCV could not process it ({detail})"
    return str(error) or type(error).__name__


def max_pixels() -> int:
    """The pixel budget: ``$IMGCLS_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(
            f"{MAX_PIXELS_VARIABLE} must be a whole number of pixels, at least 1 (not {text!r})"
        )
    return limit


def check_pixel_budget(width: int, height: int, what: str = "") -> None:
    """Raise :class:`ImageError` when ``width x height`` is over :func:`max_pixels`.

    ``what`` starts the message (e.g. ``"resized, it would be "``)."""
    limit = max_pixels()
    if width * height > limit:
        raise ImageError(
            f"{what}{width} x {height} = {_megapixels(width * height)} megapixels, more than "
            f"the {_megapixels(limit)}-megapixel limit ({MAX_PIXELS_VARIABLE} changes it)"
        )


def _megapixels(pixels: int) -> str:
    value = pixels / 1e6
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}".removesuffix(".0") if value >= 1 else f"{value:.3g}"


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
    bottom and only a warning on stderr. So is an image over the pixel budget (see
    :func:`check_pixel_budget`), before any of it is decoded.
    """
    if not data:
        raise ImageError("empty file (0 bytes)")
    image_format = sniff_format(data)
    if image_format is None:
        raise ImageError("not an image (unknown file signature)")
    if image_format in ("jpeg", "png"):
        info = _probe_jpeg(data) if image_format == "jpeg" else _probe_png(data)
        check_pixel_budget(info.width, info.height)
        return info
    width, height = _HEADER_SIZE[image_format](data)
    if width < 1 or height < 1:
        raise ImageError(f"corrupt {image_format.upper()} header (no image size)")
    check_pixel_budget(width, height)
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


def _bmp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise ImageError("truncated or corrupt BMP (no header)")
    (header_size,) = struct.unpack_from("<I", data, 14)
    # The old OS/2 header has 16-bit sizes; a negative height means rows stored top-down.
    width, height = struct.unpack_from("<HH" if header_size == 12 else "<ii", data, 18)
    return width, abs(height)


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:  # extended: 24-bit canvas size minus one
        return _uint24(data, 24) + 1, _uint24(data, 27) + 1
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:  # lossless: 14 bits each
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":  # lossy
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    raise ImageError("truncated or corrupt WebP (no header)")


def _uint24(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 3], "little")


_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
_TIFF_VALUE_FORMATS = {3: "H", 4: "I"}  # SHORT, LONG


def _tiff_size(data: bytes) -> tuple[int, int]:
    """The size in the first image directory (the page OpenCV decodes)."""
    order = "<" if data[:2] == b"II" else ">"
    found: dict[int, int] = {}
    try:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, offset)
        for entry in range(count):
            tag, kind, _count, value = struct.unpack_from(
                order + "HHI4s", data, offset + 2 + 12 * entry
            )
            if tag in (_TIFF_WIDTH, _TIFF_HEIGHT) and kind in _TIFF_VALUE_FORMATS:
                found[tag] = struct.unpack_from(order + _TIFF_VALUE_FORMATS[kind], value)[0]
    except struct.error:
        raise ImageError("truncated or corrupt TIFF (no image directory)") from None
    return found.get(_TIFF_WIDTH, 0), found.get(_TIFF_HEIGHT, 0)


_HEADER_SIZE = {"bmp": _bmp_size, "tiff": _tiff_size, "webp": _webp_size}


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


def reduction_factor(
    width: int,
    height: int,
    shorter_side: int | None,
    size: tuple[int, int] | None = None,
) -> int:
    """The largest JPEG DCT scale-down (1, 2, 4, 8) that keeps the shorter side at least
    ``shorter_side`` and the image at least ``size`` (width, height); 1 when neither is set."""
    if not shorter_side and size is None:
        return 1
    least_width, least_height = size or (0, 0)
    for factor in (8, 4, 2):
        if (
            min(width, height) // factor >= (shorter_side or 0)
            and width // factor >= least_width
            and height // factor >= least_height
        ):
            return factor
    return 1


_REDUCED_FLAGS = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def decode_bgr(
    data: bytes,
    info: ImageInfo | None = None,
    shorter_side: int | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode to an 8-bit, 3-channel BGR array (grayscale, alpha, 16-bit and CMYK converted).

    When ``shorter_side`` (or ``size``, width and height) is given, a JPEG is decoded at the
    largest reduced scale that still leaves its shorter side at least that long (its sides
    at least that size): much faster for large photos, and the 1/2 to 1/8 scale-down of the
    decoder averages blocks of pixels, as an area resize does.
    """
    info = info or probe(data)
    factor = (
        reduction_factor(info.width, info.height, shorter_side, size)
        if info.format == "jpeg"
        else 1
    )
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


def shorter_side_size(width: int, height: int, shorter_side: int) -> tuple[int, int]:
    """(width, height) after :func:`resize_shorter_side`."""
    scale = shorter_side / min(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrink_interpolation(scale: float) -> int:
    """The OpenCV interpolation :func:`resize_shorter_side` uses for a ``scale`` factor."""
    # Area averaging avoids aliasing on strong shrinks; above half size linear is as good
    # and faster (a reduced JPEG decode leaves at most a 2x shrink).
    return cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR


def resize_shorter_side(image: np.ndarray, shorter_side: int) -> np.ndarray:
    """Resize so the shorter side is ``shorter_side`` pixels, keeping the aspect ratio.

    :class:`ImageError` when the result would be over the pixel budget (a thin strip
    enlarged: 1 x 999,999 to a shorter side of 224 px would take 150 GB)."""
    height, width = image.shape[:2]
    if shorter_side == min(height, width):
        return image
    size = shorter_side_size(width, height, shorter_side)
    check_pixel_budget(*size, f"resized to a shorter side of {shorter_side} px it would be ")
    interpolation = shrink_interpolation(shorter_side / min(height, width))
    return cv2.resize(image, size, interpolation=interpolation)
