"""Small files that make big trouble, for the pixel budget tests: each a few kilobytes (or
one megabyte) on disk, written in little time and memory."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

#: 20000 x 20000: 400 megapixels, 1.2 GB once decoded, from a 1.2 MB file.
BIG_SIDE = 20_000
#: 1 x 999,999: one megapixel, but 150 GB once its shorter side is resized to 224 px.
STRIP_LENGTH = 999_999
#: The size a tampered JPEG header declares.
DECLARED_SIDE = 60_000


def uniform_png(width: int, height: int) -> bytes:
    """A black RGB PNG of any size. One band of rows is compressed, ending in a full flush
    (so its compressed bytes stand alone), and repeated: no image is ever in memory."""
    row = bytes(1 + 3 * width)  # filter byte 0, then black pixels
    rows_per_band = max(1, min(height, (1 << 20) // len(row)))
    bands, rest = divmod(height, rows_per_band)
    band_rows = row * rows_per_band
    compressor = zlib.compressobj(9)
    first = compressor.compress(band_rows) + compressor.flush(zlib.Z_FULL_FLUSH)
    band = compressor.compress(band_rows) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(row * rest) + compressor.flush(zlib.Z_FINISH)
    checksum = 1
    for _ in range(bands):
        checksum = zlib.adler32(band_rows, checksum)
    checksum = zlib.adler32(row * rest, checksum)
    stream = first + band * (bands - 1) + tail[:-4] + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", stream)
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def undecodable_png() -> bytes:
    """A 16 x 16 PNG whose headers are sound but whose pixel data is not zlib: only decoding
    finds it unusable (see :data:`UNDECODABLE_REASON`)."""
    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"not zlib")
        + _chunk(b"IEND", b"")
    )


def good_jpeg(colour: tuple[int, int, int] = (40, 40, 200), size: int = 32) -> bytes:
    """A small noisy JPEG of one dominant colour."""
    rng = np.random.default_rng(sum(colour))
    image = np.clip(np.array(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255)
    return cv2.imencode(".jpg", image.astype(np.uint8))[1].tobytes()


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small valid JPEG whose frame header claims ``width x height``."""
    data = bytearray(good_jpeg())
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def write_bad_images(folder: Path) -> dict[str, Path]:
    """Write the troublemakers into ``folder``: big.png, strip.png (1 x 999,999),
    declared.jpg (claims 60000 x 60000) and truncated.jpg; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "big.png": uniform_png(BIG_SIDE, BIG_SIDE),
        "strip.png": uniform_png(1, STRIP_LENGTH),
        "declared.jpg": jpeg_declaring(DECLARED_SIDE, DECLARED_SIDE),
        "truncated.jpg": good_jpeg()[:200],
    }
    paths = {}
    for name, data in contents.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


BIG_REASON = (
    "20000 x 20000 = 400 megapixels, more than the 100-megapixel limit "
    "(IMGCLS_MAX_PIXELS changes it)"
)
DECLARED_REASON = (
    "60000 x 60000 = 3,600 megapixels, more than the 100-megapixel limit "
    "(IMGCLS_MAX_PIXELS changes it)"
)
TRUNCATED_REASON = "truncated JPEG (no end-of-image marker)"
UNDECODABLE_REASON = "cannot be decoded (corrupt or unsupported image data)"
