"""The weights store: a folder of backbone ``.params`` files, each with a small JSON record
of where it came from, beside MXNet's own model cache.

The store is ``paths.data_dir() / "weights"``; ``resnet18_v1.params`` sits there with
``resnet18_v1.json`` (``{"source": "download", "origin": URL, "sha1": ..., ...}``). A file
enters only through :func:`place`: written to a temporary file in the store, checked, then
renamed into place, so the store never holds a half-written or unchecked file. MXNet's cache
(``$MXNET_HOME/models``, by default ``~/.mxnet/models``) is read, never written.

Everything here but :func:`place`'s ``check`` runs without MXNet: listing is by file names.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from imgcls_desktop.core import paths
from imgcls_desktop.core.atomic import atomic_write_json, is_leftover_temporary, sync_folder
from imgcls_desktop.core.weights.catalog import BACKBONES, Backbone

_RECORD_LIMIT = 64 * 1024  # bytes of a record worth reading
_INCOMING_PREFIX = ".incoming.params."  # + 8 hex digits + ".tmp", as atomic.py names them
_STALE = 3600.0  # seconds
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Origin:
    """Where a file came from: ``download`` from a URL, or ``import`` from a path."""

    kind: str
    location: str

    def describe(self) -> str:
        """``downloaded from URL`` / ``imported from PATH``."""
        verb = {"download": "downloaded from", "import": "imported from"}.get(self.kind, "from")
        return f"{verb} {self.location}"


@dataclass(frozen=True)
class BackboneState:
    """One backbone and its file on disk, if any (the store's first, then MXNet's cache)."""

    backbone: Backbone
    path: Path | None = None
    size: int = 0
    source: str = ""
    """Where the file came from, for people (empty when it is not on disk)."""

    @property
    def on_disk(self) -> bool:
        """True when the backbone's weights are on this computer."""
        return self.path is not None


def store_folder() -> Path:
    """The app's weights store: ``paths.data_dir() / "weights"``."""
    return paths.data_dir() / "weights"


def mxnet_cache_folder() -> Path:
    """MXNet's model cache, ``$MXNET_HOME/models`` (by default ``~/.mxnet/models``), found as
    ``mxnet.base.data_dir()`` finds it but without importing MXNet."""
    home = os.getenv("MXNET_HOME")
    if home is None and platform.system() == "Windows":
        home = os.path.join(os.environ.get("APPDATA", ""), "mxnet")
    elif home is None:
        home = os.path.join(os.path.expanduser("~"), ".mxnet")
    return Path(home) / "models"


def stored_file(backbone: Backbone, folder: Path | None = None) -> Path:
    """The store's file for ``backbone``: ``resnet18_v1.params``."""
    return (folder or store_folder()) / f"{backbone.name}.params"


def record_file(backbone: Backbone, folder: Path | None = None) -> Path:
    """The JSON record beside the store's file: ``resnet18_v1.json``."""
    return (folder or store_folder()) / f"{backbone.name}.json"


def backbone_states(folder: Path | None = None, cache: Path | None = None) -> list[BackboneState]:
    """Every backbone with its file, if one is in the store or MXNet's cache."""
    folder = folder or store_folder()
    cache = cache or mxnet_cache_folder()
    return [_state(backbone, folder, cache) for backbone in BACKBONES]


def installed_depths(folder: Path | None = None, cache: Path | None = None) -> list[int]:
    """The ImageNet depths whose weights are on disk, in the store or MXNet's cache (cheap:
    file names only, no MXNet)."""
    return [state.backbone.depth for state in backbone_states(folder, cache) if state.on_disk]


def cached_files(backbone: Backbone, cache: Path | None = None) -> list[Path]:
    """``backbone``'s files in MXNet's cache: the model zoo's ``resnet18_v1-<hash>.params``
    (any hash) and a plain ``resnet18_v1.params``."""
    cache = cache or mxnet_cache_folder()
    pattern = re.compile(rf"{re.escape(backbone.name)}(-[0-9a-f]{{8}})?\.params")
    with contextlib.suppress(OSError):
        return sorted(
            path for path in cache.iterdir() if pattern.fullmatch(path.name) and path.is_file()
        )
    return []


def _state(backbone: Backbone, folder: Path, cache: Path) -> BackboneState:
    stored = stored_file(backbone, folder)
    if stored.is_file():
        return BackboneState(
            backbone, stored, stored.stat().st_size, _recorded_source(backbone, folder)
        )
    for path in cached_files(backbone, cache):
        return BackboneState(backbone, path, path.stat().st_size, f"MXNet's model cache ({cache})")
    return BackboneState(backbone)


def _recorded_source(backbone: Backbone, folder: Path) -> str:
    """The record's ``describe()``; a missing or unreadable record says so."""
    try:
        with record_file(backbone, folder).open("rb") as file:
            record = json.loads(file.read(_RECORD_LIMIT))
        return Origin(str(record["source"]), str(record["origin"])).describe()
    except (OSError, ValueError, KeyError, TypeError):
        return "placed by hand (no record)"


def place(
    write: Callable[[Path], None],
    check: Callable[[Path, str], Backbone],
    origin: Origin,
    folder: Path | None = None,
) -> BackboneState:
    """Put a backbone file into the store: ``write(temporary)`` writes it, ``check(temporary,
    sha1)`` says which backbone it is (raising when it is none), then it is renamed into
    place and its record written. On any failure nothing is left behind."""
    folder = folder or store_folder()
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(folder)
    temporary = folder / f"{_INCOMING_PREFIX}{secrets.token_hex(4)}.tmp"
    try:
        write(temporary)
        with temporary.open("rb+") as file:
            os.fsync(file.fileno())
        sha1 = file_sha1(temporary)
        backbone = check(temporary, sha1)
        target = stored_file(backbone, folder)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    sync_folder(folder)
    record = {
        "backbone": backbone.name,
        "source": origin.kind,
        "origin": origin.location,
        "sha1": sha1,
        "size": target.stat().st_size,
        "placed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(record_file(backbone, folder), record)
    return _state(backbone, folder, mxnet_cache_folder())


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove what a killed import or download left half-written, once no process can still
    be writing it (untouched for an hour)."""
    for path in folder.glob(f"{_INCOMING_PREFIX}*.tmp"):
        with contextlib.suppress(OSError):
            if is_leftover_temporary(path) and time.time() - path.stat().st_mtime > _STALE:
                path.unlink()


def file_sha1(path: Path) -> str:
    """The SHA-1 of a file, in hex."""
    digest = hashlib.sha1()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
