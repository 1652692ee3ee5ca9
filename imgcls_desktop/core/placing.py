"""Files placed into folders so that an interruption loses nothing: whole files under new
names, and an append-only CSV record with a line for each.

:func:`place_new_file` writes a file's bytes under a hidden temporary name beside its
destination (``.NAME.partial``), then calls ``record(final_path)``, and only then gives the
file its final name, with a rename that never overwrites (one atomic step where the system
offers it: Windows, macOS, Linux on its usual local file systems; elsewhere a hard link, then
removal of the temporary name, or, on a file system without hard links, a rename after
checking that the name is free). So whenever a process is killed:

- a file under a final name is whole, and its line is already in the record;
- a recorded line whose file is missing was killed between the two steps: its whole copy
  waits in ``.NAME.partial`` beside it, and its source is untouched (a move deletes the
  source only after the file has its final name);
- any other ``.NAME.partial`` holds a copy that was never recorded (perhaps cut short), or
  (where the rename is not one step) a second name of a file already under its final name.

The next job into the same folders first calls :func:`recover_placements`: a recorded
``.NAME.partial`` whose ``NAME`` is free gets that name (the line becomes true; the job
then skips that image instead of placing and recording it a second time), and every other
``.NAME.partial`` is removed. So after a re-run the record has exactly one line per file
placed, and no temporary file is left. (One job at a time into a folder: a second one
running meanwhile would take the first one's temporary files for left-overs.) The one line
without its file that stays is that of a file whose final name another program took between
the two steps: the job reports that file as failed.

:class:`CsvRecord` appends lines to a CSV (its header written once, when the file is new),
flushed one by one and fsynced when closed; a re-run appends to the same record, and
:func:`read_record` reads the lines a record already holds.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import filecmp
import functools
import os
import shutil
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from imgcls_desktop.core.file_names import PATH_TEXT_ERRORS

_PARTIAL_SUFFIX = ".partial"


class CsvRecord:
    """An append-only CSV file: the header when the file is new, one flushed line per row.

    An existing file with another header (an older record) is kept and a new one started
    beside it (``stem (1).csv``); :attr:`path` is the file used. Rows are UTF-8 with file
    names as the file system has them (see :mod:`imgcls_desktop.core.file_names`).
    """

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._header = list(header)
        self.path, self._file = self._open(Path(path))
        self._writer = csv.writer(self._file, lineterminator="\n")
        if self._file.tell() == 0:
            self.write(self._header)

    def _open(self, path: Path) -> tuple[Path, IO[str]]:
        for candidate in _record_names(path):
            file = candidate.open("a+", encoding="utf-8", errors=PATH_TEXT_ERRORS, newline="")
            file.seek(0)
            first_line = file.readline()
            if not first_line or next(csv.reader([first_line])) == self._header:
                file.seek(0, os.SEEK_END)
                if file.tell() and not _ends_with_newline(candidate):
                    file.write("\n")
                return candidate, file
            file.close()
        raise AssertionError("unreachable: _record_names never ends")

    def write(self, row: Sequence[object]) -> None:
        """Append one line and flush it to the operating system."""
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        """Flush, fsync and close the file."""
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> CsvRecord:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_record(path: Path, header: Sequence[str]) -> list[dict[str, str]]:
    """The whole lines of the record that ``CsvRecord(path, header)`` would append to, as
    dicts keyed by ``header`` (none when it would start a new file)."""
    for candidate in _record_names(path):
        try:
            text = candidate.read_text(encoding="utf-8", errors=PATH_TEXT_ERRORS)
        except FileNotFoundError:
            return []
        rows = csv.reader(text.splitlines())
        if next(rows, list(header)) == list(header):
            return [dict(zip(header, row)) for row in rows if len(row) == len(header)]
    raise AssertionError("unreachable: _record_names never ends")


def _record_names(path: Path) -> Iterator[Path]:
    """``path``, then ``stem (1).suffix``, ``stem (2).suffix``..."""
    yield path
    number = 0
    while True:
        number += 1
        yield path.with_name(f"{path.stem} ({number}){path.suffix}")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def place_new_file(
    destination: Path, fill: Callable[[Path], object], record: Callable[[Path], object]
) -> Path:
    """Create a new file named ``destination`` (``stem (1).suffix``... when the name is
    taken) holding what ``fill(temporary_path)`` writes; ``record(final_path)`` is called
    after the content is complete and before the file gets its final name. Nothing is ever
    overwritten; on failure the temporary file is removed. Returns the final path."""
    temporary, final = _claim(destination)
    try:
        fill(temporary)
        record(final)
        _commit(temporary, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return final


def _claim(destination: Path) -> tuple[Path, Path]:
    """A free final name and its temporary file, created exclusively so that two of our
    writers never pick the same name."""
    number = 0
    candidate = destination
    while True:
        temporary = _partial_path(candidate)
        if not os.path.lexists(candidate):
            try:
                os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                return temporary, candidate
            except FileExistsError:
                pass
        number += 1
        candidate = destination.with_name(f"{destination.stem} ({number}){destination.suffix}")


def _partial_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{_PARTIAL_SUFFIX}")


@dataclass(frozen=True)
class RecordedFile:
    """A line of a record: the file placed (or about to be) at ``destination``, from
    ``source`` (a path, or another address such as ``<file>.rec#<key>``)."""

    source: str
    destination: Path


def recover_placements(
    recorded: Iterable[RecordedFile], folders: Collection[Path]
) -> list[RecordedFile]:
    """Finish or remove what a killed :func:`place_new_file` left in ``folders``.

    A ``.NAME.partial`` that a line of ``recorded`` names as its destination, whose ``NAME``
    is free (and, when the line's source is a file, of that file's size) is whole: it gets
    its final name. Any other ``.NAME.partial`` is removed. Returns the lines whose file
    this call placed.
    """
    by_destination = {line.destination: line for line in recorded}
    finished = []
    for folder in folders:
        for temporary, final in _partials(folder):
            line = by_destination.get(final)
            if line is not None and not os.path.lexists(final) and _fits(temporary, line):
                with contextlib.suppress(OSError):
                    _commit(temporary, final)
                    finished.append(line)
                    continue
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return finished


def _partials(folder: Path) -> Iterator[tuple[Path, Path]]:
    """Each ``.NAME.partial`` file of ``folder`` (a plain file), with ``folder/NAME``."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        name = entry.name
        if (
            name.startswith(".")
            and name.endswith(_PARTIAL_SUFFIX)
            and len(name) > len(_PARTIAL_SUFFIX) + 1
            and entry.is_file(follow_symlinks=False)
        ):
            yield Path(entry.path), folder / name[1 : -len(_PARTIAL_SUFFIX)]


def _fits(temporary: Path, line: RecordedFile) -> bool:
    """Whether ``temporary`` can be the copy ``line`` records: its source's size, when the
    source is a file still there (an older line naming a since deleted file is no proof)."""
    try:
        source_size = os.stat(line.source).st_size
    except (OSError, ValueError):
        return True
    try:
        return os.stat(temporary).st_size == source_size
    except OSError:
        return False


def placement_key(source: str | os.PathLike[str], folder: str) -> tuple[str, str]:
    """How :func:`by_source` finds a file: its source's absolute path and its folder's name."""
    return os.path.abspath(source), folder


def by_source(lines: Iterable[RecordedFile]) -> dict[tuple[str, str], Path]:
    """:func:`placement_key` -> the destination of the last of ``lines`` with that key."""
    return {
        placement_key(line.source, line.destination.parent.name): line.destination for line in lines
    }


def same_content(first: Path, second: Path) -> bool:
    """Whether the two files are one (a hard link) or hold the same bytes."""
    try:
        return os.path.samefile(first, second) or filecmp.cmp(first, second, shallow=False)
    except OSError:
        return False


def _commit(temporary: Path, final: Path) -> None:
    """Rename ``temporary`` to ``final`` without overwriting (FileExistsError when taken): in
    one step where the system can; else a hard link, then the temporary name removed; else
    (a file system without hard links: FAT, exFAT, some network shares) a rename of a free
    name."""
    if _rename_without_replacing(temporary, final):
        return
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "name taken meanwhile", str(final)) from None
        os.rename(temporary, final)
    else:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


_RENAME_NOREPLACE = 1  # Linux renameat2 flag
_RENAME_EXCL = 4  # macOS renamex_np flag
_AT_FDCWD = -100
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}


def _rename_without_replacing(source: Path, target: Path) -> bool:
    """Rename ``source`` to ``target`` in one step unless ``target`` exists (then
    FileExistsError); False when this system or file system cannot."""
    if os.name == "nt":
        os.rename(source, target)  # never replaces on Windows
        return True
    rename = _native_rename()
    if rename is None:
        return False
    if rename(os.fsencode(source), os.fsencode(target)) == 0:
        return True
    error = ctypes.get_errno()
    if error in _UNSUPPORTED:
        return False
    raise OSError(error, os.strerror(error), os.fsdecode(target))


@functools.cache
def _native_rename() -> Callable[[bytes, bytes], int] | None:
    """The C library's rename that refuses a taken name (Linux, macOS), or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        function = libc.renamex_np
        function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        return lambda old, new: function(old, new, _RENAME_EXCL)
    if hasattr(libc, "renameat2"):
        function = libc.renameat2
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        function.argtypes += [ctypes.c_uint]
        return lambda old, new: function(_AT_FDCWD, old, _AT_FDCWD, new, _RENAME_NOREPLACE)
    return None


def copy_file(source: Path) -> Callable[[Path], None]:
    """A ``fill`` for :func:`place_new_file`: ``source``'s bytes, times and permissions."""

    def fill(temporary: Path) -> None:
        shutil.copyfile(source, temporary)
        with contextlib.suppress(OSError):
            shutil.copystat(source, temporary)

    return fill


def link_or_copy_file(source: Path) -> Callable[[Path], None]:
    """A ``fill`` for a move: a hard link to ``source`` (no copy on the same file system),
    else a copy (:func:`copy_file`)."""

    def fill(temporary: Path) -> None:
        os.unlink(temporary)
        try:
            os.link(source, temporary)
        except OSError:
            copy_file(source)(temporary)

    return fill
