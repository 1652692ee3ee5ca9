"""Atomic file writes: readers see the old file or the new one, never a half-written one.

Each write goes to a hidden temporary file in the destination's folder, is flushed and
fsynced, then renamed over the destination with :func:`os.replace` (atomic on POSIX and
Windows within one file system). On any failure the temporary file is removed and the
destination is left untouched. The new file gets the usual permissions (``0o666`` less the
umask), like a file created with :func:`open`. A kill mid-write can leave the temporary file
(``.NAME.xxxxxxxx.tmp``); :func:`remove_leftover_temporaries` clears them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (the folder must exist)."""
    atomic_save(path, lambda temporary: Path(temporary).write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically; newlines are written as given."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: object, *, indent: int | None = 2) -> None:
    """Replace ``path`` with ``obj`` as UTF-8 JSON (and a final newline) atomically.

    The object is serialised before anything touches the disk, so a value JSON cannot hold
    raises :class:`TypeError` (or :class:`ValueError`) and leaves no file behind.
    """
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_save(path: str | os.PathLike[str], save: Callable[[str], object]) -> None:
    """Replace ``path`` atomically with what ``save(file_name)`` writes.

    For writers that want a file name (``mx.nd.save``, ``HybridBlock.save_parameters``): they write
    a temporary file in the same folder, which is fsynced and renamed over ``path``.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        save(str(temporary))
        with temporary.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    sync_folder(target.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open a folder to fsync it)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# The temporary names atomic_save makes: "." + the destination's name + 8 hex digits + ".tmp".
_TEMPORARY_NAME = re.compile(r"\.(.+)\.[0-9a-f]{8}\.tmp")


def remove_leftover_temporaries(
    folder: str | os.PathLike[str], names: Collection[str] | None = None
) -> list[Path]:
    """Delete the temporary files a killed atomic write left in ``folder`` (not below it);
    the paths removed. Only files named exactly as :func:`atomic_save` names them go, and
    with ``names``, only those of writes to these file names."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for path in Path(folder).iterdir():
            match = _TEMPORARY_NAME.fullmatch(path.name)
            if match and (names is None or match.group(1) in names) and is_leftover_temporary(path):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def is_leftover_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_save` (a plain file, no link)."""
    return bool(_TEMPORARY_NAME.fullmatch(path.name)) and path.is_file() and not path.is_symlink()


def files_among(paths: Sequence[Path], others: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The existing files among ``paths`` that are one of ``others``: the same file on disk,
    whatever the path says (links, case-insensitive names). For refusing to write over an
    input."""
    identities = {identity for other in others if (identity := _file_identity(other))}
    return [path for path in paths if _file_identity(path) in identities]


def _file_identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of an existing regular file; None for anything else."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return (status.st_dev, status.st_ino) if stat.S_ISREG(status.st_mode) else None
