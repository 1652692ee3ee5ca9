"""The names and shapes of the arrays in an MXNet ``.params`` file, read from its headers
without reading the data (a ResNet-152 file is 240 MB; its index is a few kB), and without
MXNet.

The layout (``NDArray::Save`` of MXNet 1.x): ``uint64 0x112``, ``uint64 0``, ``uint64 N``;
N arrays, each ``uint32 magic`` (V2 ``0xF993FAC9`` or V3 ``0xF993FACA``), ``int32
storage type`` (0 dense), ``uint32 ndim``, ``int64 dims[ndim]``, then unless ndim is 0:
``int32 dev_type, dev_id``, ``int32 dtype`` and the data; then ``uint64 N`` names, each
``uint64 length`` and its bytes. Anything else (older or sparse files) raises
:class:`UnreadableIndex`, and the caller reads the file with MXNet instead.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

_LIST_MAGIC = 0x112
_ARRAY_MAGICS = (0xF993FAC9, 0xF993FACA)
# mshadow's type flags -> bytes per element (float32, float64, float16, uint8, int32, int8,
# int64, bool, int16, uint16, uint32, uint64, bfloat16).
_DTYPE_SIZES = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 8: 2, 9: 2, 10: 4, 11: 8, 12: 2}
_MAX_ARRAYS = 100_000
_MAX_NDIM = 32
_MAX_NAME = 4096


class UnreadableIndex(ValueError):
    """The file is not in the layout this module reads."""


def array_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """``name -> shape`` of every array in the ``.params`` file at ``path``."""
    with Path(path).open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        magic, _reserved, count = _unpack(file, "<QQQ")
        if magic != _LIST_MAGIC or count > _MAX_ARRAYS:
            raise UnreadableIndex(f"{path} is not an MXNet array list")
        shapes = [_skip_array(file, size) for _ in range(count)]
        (names,) = _unpack(file, "<Q")
        if names != count:
            raise UnreadableIndex(f"{path} has {count} arrays but {names} names")
        keys = [_name(file) for _ in range(names)]
    return dict(zip(keys, shapes))


def _skip_array(file: BinaryIO, size: int) -> tuple[int, ...]:
    """Read one array's header and step over its data; its shape."""
    magic, storage = _unpack(file, "<Ii")
    if magic not in _ARRAY_MAGICS or storage != 0:
        raise UnreadableIndex("an array in an older or sparse layout")
    (ndim,) = _unpack(file, "<I")
    if ndim > _MAX_NDIM:
        raise UnreadableIndex(f"an array of {ndim} dimensions")
    shape = _unpack(file, f"<{ndim}q")
    if ndim == 0:
        return ()
    _dev_type, _dev_id, dtype = _unpack(file, "<iii")
    if dtype not in _DTYPE_SIZES or any(dim < 0 for dim in shape):
        raise UnreadableIndex(f"an array of type {dtype} and shape {shape}")
    elements = 1
    for dim in shape:
        elements *= dim
    end = file.tell() + elements * _DTYPE_SIZES[dtype]
    if end > size:
        raise UnreadableIndex("the file ends inside an array")
    file.seek(end)
    return tuple(shape)


def _name(file: BinaryIO) -> str:
    (length,) = _unpack(file, "<Q")
    if length > _MAX_NAME:
        raise UnreadableIndex(f"a name of {length} bytes")
    try:
        return _read(file, length).decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableIndex("a name that is not text") from None


def _unpack(file: BinaryIO, layout: str) -> tuple[int, ...]:
    return struct.unpack(layout, _read(file, struct.calcsize(layout)))


def _read(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise UnreadableIndex("the file ends early")
    return data
