"""Recognising a data source by itself and loading it with the right importer."""

from __future__ import annotations

from pathlib import Path

from imgcls_desktop.core.dataset.folder import import_folder
from imgcls_desktop.core.dataset.lst import import_lst
from imgcls_desktop.core.dataset.manifest import MultiLabelFormat, import_manifest
from imgcls_desktop.core.dataset.recfile import import_recordio
from imgcls_desktop.core.dataset.samples import Dataset, DatasetError, SourceKind

_KIND_BY_SUFFIX = {
    ".lst": SourceKind.LST,
    ".jsonl": SourceKind.MANIFEST,
    ".manifest": SourceKind.MANIFEST,
    ".json": SourceKind.MANIFEST,
    ".rec": SourceKind.RECORDIO,
}

ACCEPTED_SOURCES = (
    "a folder with one sub-folder of images per class, an im2rec .lst file, "
    "an augmented manifest (.jsonl, .manifest or .json, one JSON object per line) "
    "or a RecordIO .rec file"
)


def detect_kind(path: Path) -> SourceKind:
    """What kind of data source ``path`` is: a folder, or by its file extension."""
    path = Path(path)
    if path.is_dir():
        return SourceKind.FOLDER
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    kind = _KIND_BY_SUFFIX.get(path.suffix.lower())
    if kind is None:
        raise DatasetError(f"{path} is not a data set this app reads; use {ACCEPTED_SOURCES}")
    return kind


def load_dataset(
    path: Path,
    *,
    root: Path | None = None,
    label_attribute: str = "class",
    multi_label_format: MultiLabelFormat | None = None,
) -> Dataset:
    """Load any supported data source (see :func:`detect_kind`).

    ``root`` (the folder image paths are relative to) applies to ``.lst`` files and
    manifests, ``label_attribute`` and ``multi_label_format`` to manifests; a folder or a
    ``.rec`` ignores them.
    """
    path = Path(path)
    kind = detect_kind(path)
    if kind is SourceKind.FOLDER:
        return import_folder(path)
    if kind is SourceKind.LST:
        return import_lst(path, root=root)
    if kind is SourceKind.MANIFEST:
        return import_manifest(
            path,
            label_attribute=label_attribute,
            multi_label_format=multi_label_format,
            root=root,
        )
    return import_recordio(path)
