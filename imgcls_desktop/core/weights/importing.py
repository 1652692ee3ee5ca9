"""Importing a backbone for machines that never go online: a ``.params`` file copied from
another computer, a folder holding one, or the model zoo's ``.zip``.

The file is copied into a temporary file in the store, recognised there by its arrays
(:func:`.checks.recognise`), then renamed into place with a record of where it came from.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress
from imgcls_desktop.core.weights.catalog import Backbone, WeightsError
from imgcls_desktop.core.weights.checks import recognise
from imgcls_desktop.core.weights.store import BackboneState, Origin, place

MAX_IMPORT_BYTES = 1 << 30  # ResNet-152's file is ~240 MB
MAX_ZIP_MEMBERS = 16
_SUFFIXES = (".params", ".zip")
_CHUNK = 1 << 20


def import_weights(
    path: Path,
    *,
    folder: Path | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> BackboneState:
    """Copy the backbone weights at ``path`` (a ``.params``, a model-zoo ``.zip``, or a
    folder holding one of them) into the store; ``progress(bytes_done, bytes_total)``."""
    source = weights_file_in(Path(path).absolute())
    if source.suffix.lower() == ".zip":
        return _import_from_zip(source, folder, progress, cancel)
    size = source.stat().st_size
    _check_size(source.name, size)

    def write(temporary: Path) -> None:
        with source.open("rb") as reader:
            _copy(reader, temporary, size, progress, cancel)

    return place(write, _recogniser(source.name), Origin("import", str(source)), folder)


def weights_file_in(path: Path) -> Path:
    """``path`` itself when it is a file, or the one ``.params``/``.zip`` in a folder."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise WeightsError(f"{path} does not exist")
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
    if not found:
        raise WeightsError(f"{path} holds no .params or .zip file of backbone weights")
    if len(found) > 1:
        names = ", ".join(p.name for p in found[:4])
        raise WeightsError(f"{path} holds {len(found)} weights files ({names}): import one")
    return found[0]


def _import_from_zip(
    source: Path, folder: Path | None, progress: ProgressFn, cancel: CancelFlag | None
) -> BackboneState:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as error:
        raise WeightsError(f"{source.name} is not a zip file ({error})") from None
    with archive:
        members = archive.infolist()
        params = [m for m in members if m.filename.lower().endswith(".params")]
        if len(members) > MAX_ZIP_MEMBERS or len(params) != 1:
            raise WeightsError(
                f"{source.name} is not a model-zoo zip: it should hold one .params file, "
                f"it holds {len(params)} among {len(members)} files"
            )
        member = params[0]
        _check_size(member.filename, member.file_size)

        def write(temporary: Path) -> None:
            try:
                with archive.open(member) as reader:
                    _copy(reader, temporary, member.file_size, progress, cancel)
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise WeightsError(f"{source.name} is damaged ({error})") from None

        name = Path(member.filename).name
        origin = Origin("import", f"{source} ({name})")
        return place(write, _recogniser(name), origin, folder)


def _recogniser(file_name: str) -> Callable[[Path, str], Backbone]:
    return lambda temporary, _sha1: recognise(temporary, file_name)


def _check_size(name: str, size: int) -> None:
    if size > MAX_IMPORT_BYTES:
        raise WeightsError(f"{name} is {size / 1e6:.0f} MB, more than any backbone's weights")


def _copy(
    reader: BinaryIO,
    target: Path,
    size: int,
    progress: ProgressFn,
    cancel: CancelFlag | None,
) -> None:
    """Copy at most ``size`` bytes from ``reader`` into ``target``, reporting progress."""
    done = 0
    progress(0, size)
    with target.open("wb") as writer:
        while done < size and (chunk := reader.read(min(_CHUNK, size - done))):
            check_cancel(cancel)
            writer.write(chunk)
            done += len(chunk)
            progress(done, size)
