"""Folder-per-class data sets: ``root/<class name>/**/<image>``."""

from __future__ import annotations

import os
from pathlib import Path

from imgcls_desktop.core.dataset.images import IMAGE_EXTENSIONS
from imgcls_desktop.core.dataset.samples import Dataset, DatasetError, Sample, SourceKind
from imgcls_desktop.core.file_names import display_path


def import_folder(root: Path) -> Dataset:
    """Read a folder with one sub-folder of images per class.

    Images nested deeper count for their top-level class folder. Class ids follow the
    sorted folder names, as ``im2rec.py --list --recursive`` assigns them: like im2rec, a
    folder holding no image gets no class (and no id). Unlike im2rec, hidden files and
    folders (leading dot) are ignored, and so are images lying directly in ``root``.
    Images are recognised by extension (see ``IMAGE_EXTENSIONS``, any case); samples come
    in im2rec's order too: by class, then sorted path, a folder's files before its
    sub-folders'. Paths are kept as the file system has them; a class folder whose name is
    not UTF-8 gives a class name with those bytes shown as ``\\xNN`` (class names are text).
    """
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    by_class: dict[str, list[str]] = {}
    loose = 0
    visited: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a symbolic link loop, or a second link to the same folder
            dirs.clear()
            continue
        visited.add(real)
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        images = [
            os.path.join(folder, name)
            for name in sorted(files)
            if _is_image_name(name) and os.path.isfile(os.path.join(folder, name))
        ]
        relative = os.path.relpath(folder, root)
        if relative == os.curdir:
            loose = len(images)
        elif images:
            by_class.setdefault(relative.split(os.sep)[0], []).extend(images)
    if not by_class:
        raise DatasetError(_no_images_message(root, loose))
    folder_names = sorted(by_class)
    return Dataset(
        class_names=[display_path(name) for name in folder_names],
        samples=[
            Sample(path=path, labels=(label,))
            for label, name in enumerate(folder_names)
            for path in by_class[name]
        ],
        kind=SourceKind.FOLDER,
        source=root,
        root=root,
    )


def holds_only_loose_images(folder: Path) -> bool:
    """True when ``folder`` has images directly in it and no sub-folder: images to label,
    not a folder-per-class data set."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    if any(entry.is_dir() and not entry.name.startswith(".") for entry in entries):
        return False
    return any(entry.is_file() and _is_image_name(entry.name) for entry in entries)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _no_images_message(root: Path, loose: int) -> str:
    extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
    where = (
        f"{loose} image(s) lie directly in {root}, outside any class folder"
        if loose
        else f"no images ({extensions}) were found in the sub-folders of {root}"
    )
    example = root / "cat"
    return f"{where}; put each class's images in a sub-folder named after it (e.g. {example})"
