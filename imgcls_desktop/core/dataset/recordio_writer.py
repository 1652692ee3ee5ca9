"""Writing RecordIO (``.rec`` + ``.idx``) without MXNet, byte for byte as MXNet writes it.

Importing MXNet takes about a second, as long as packing a hundred photos itself; the
format is small and documented (dmlc-core's ``recordio.h``, MXNet's ``recordio.py``):

- a record is a 4-byte little-endian magic ``0xced7230a``, a 4-byte word
  ``cflag << 29 | length``, the ``length`` bytes of data, then zeros up to a multiple of 4;
- data holding the magic at a 4-aligned offset is split there into parts (the magic word
  itself dropped; the reader puts it back): ``cflag`` 1 starts a split record, 2 continues
  it, 3 ends it, and 0 is a record in one part;
- the ``.idx`` is a text line ``key<TAB>offset`` per record, the offset of its first part.

:class:`IndexedRecordWriter` writes what ``mx.recordio.MXIndexedRecordIO(idx, rec, "w")``
and ``write_idx`` write; the tests compare the bytes with MXNet's own writer.
"""

from __future__ import annotations

import os
import struct
from types import TracebackType

from imgcls_desktop.core.dataset.recfile import RECORDIO_MAGIC

_MAGIC = struct.pack("<I", RECORDIO_MAGIC)
_MAX_LENGTH = 1 << 29
_WHOLE, _FIRST, _MIDDLE, _LAST = 0, 1, 2, 3


class IndexedRecordWriter:
    """A new ``.rec`` and its ``.idx``; records are appended with :meth:`write`."""

    def __init__(self, idx_path: str | os.PathLike[str], rec_path: str | os.PathLike[str]) -> None:
        self._rec = open(rec_path, "wb")  # noqa: SIM115 - closed by close()
        try:
            self._idx = open(idx_path, "w", encoding="ascii")  # noqa: SIM115
        except BaseException:
            self._rec.close()
            raise

    def write(self, key: int, record: bytes) -> None:
        """Append one record under ``key`` (``ValueError`` when it is 512 MB or more)."""
        if len(record) >= _MAX_LENGTH:
            raise ValueError(f"a RecordIO record is under 512 MB (this one: {len(record):,} bytes)")
        self._idx.write(f"{key}\t{self._rec.tell()}\n")
        self._rec.writelines(framed(record))

    def close(self) -> None:
        """Flush and close both files."""
        try:
            self._rec.close()
        finally:
            self._idx.close()

    def __enter__(self) -> IndexedRecordWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def framed(data: bytes) -> list[bytes | memoryview]:
    """One record as MXNet's ``MXRecordIO.write(data)`` puts it in a file, in pieces to
    write one after the other (the data itself is not copied)."""
    view = memoryview(data)
    pieces: list[bytes | memoryview] = []
    start = 0
    for position in _aligned_magic_positions(data):
        pieces += [_head(_FIRST if start == 0 else _MIDDLE, position - start), view[start:position]]
        start = position + 4
    pieces += [_head(_LAST if start else _WHOLE, len(data) - start), view[start:]]
    pieces.append(bytes(-len(data) % 4))
    return pieces


def _head(cflag: int, length: int) -> bytes:
    return _MAGIC + struct.pack("<I", cflag << 29 | length)


def _aligned_magic_positions(data: bytes) -> list[int]:
    """Offsets (multiples of 4, whole words only) where ``data`` holds the magic word."""
    found = []
    position = data.find(_MAGIC)
    while position != -1 and position + 4 <= len(data):
        if position % 4 == 0:
            found.append(position)
        position = data.find(_MAGIC, position + 1)
    return found
