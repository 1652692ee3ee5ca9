"""Files placed into folders so that an interruption loses nothing: whole files under new
names, and an append-only CSV record with a line for each.

:func:`place_new_file` writes a file's bytes under a hidden temporary name beside its
destination (``.NAME.partial``), then calls ``record(final_path)``, and only then gives the
file its final name, with a hard link that never overwrites (or, on a file system without
hard links, a rename after checking that the name is free). So whenever a process is killed:

- a file under a final name is whole, and its line is already in the record;
- a recorded line whose file is missing was killed between the two steps: its whole copy
  waits in ``.NAME.partial`` beside it, and its source is untouched (a move deletes the
  source only after the file has its final name).

:class:`CsvRecord` appends lines to a CSV (its header written once, when the file is new),
flushed one by one and fsynced when closed; a re-run appends to the same record.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from imgcls_desktop.core.file_names import PATH_TEXT_ERRORS


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
        candidate, number = path, 0
        while True:
            file = candidate.open("a+", encoding="utf-8", errors=PATH_TEXT_ERRORS, newline="")
            file.seek(0)
            first_line = file.readline()
            if not first_line or next(csv.reader([first_line])) == self._header:
                file.seek(0, os.SEEK_END)
                if file.tell() and not _ends_with_newline(candidate):
                    file.write("\n")
                return candidate, file
            file.close()
            number += 1
            candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")

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
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return final


def _claim(destination: Path) -> tuple[Path, Path]:
    """A free final name and its temporary file, created exclusively so that two of our
    writers never pick the same name."""
    number = 0
    candidate = destination
    while True:
        temporary = candidate.with_name(f".{candidate.name}.partial")
        if not os.path.lexists(candidate):
            try:
                os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                return temporary, candidate
            except FileExistsError:
                pass
        number += 1
        candidate = destination.with_name(f"{destination.stem} ({number}){destination.suffix}")


def _commit(temporary: Path, final: Path) -> None:
    """Give ``temporary`` the name ``final`` without overwriting: a hard link, or (a file
    system without hard links: FAT, exFAT, some network shares) a rename of a free name."""
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "name taken meanwhile", str(final)) from None
        os.rename(temporary, final)


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
