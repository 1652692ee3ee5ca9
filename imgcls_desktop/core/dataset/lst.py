"""The im2rec / SageMaker ``.lst`` format: ``index<TAB>label(s)<TAB>path``.

A ``.lst`` is UTF-8 text whose paths are the file system's bytes: a name that is not UTF-8
is written and read with :data:`~imgcls_desktop.core.file_names.PATH_TEXT_ERRORS`, so it
round-trips to the same file (as MXNet's C++ readers, which take the bytes as they are).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imgcls_desktop.core.dataset.class_names import (
    class_id,
    class_names_for,
    multi_hot_ids,
    quote,
    read_text,
)
from imgcls_desktop.core.dataset.samples import Dataset, DatasetError, Sample, SourceKind
from imgcls_desktop.core.file_names import PATH_TEXT_ERRORS


def format_lst_line(index: int, labels: Sequence[float], path: str) -> str:
    """One ``.lst`` line exactly as im2rec writes it (labels as ``%f``), newline included;
    write it with :data:`~imgcls_desktop.core.file_names.PATH_TEXT_ERRORS`."""
    columns = [str(index), *(f"{float(label):f}" for label in labels), path]
    return "\t".join(columns) + "\n"


@dataclass(frozen=True)
class _Row:
    line: int
    index: int
    labels: list[str]
    path: str


def import_lst(path: Path, root: Path | None = None, multi_label: bool | None = None) -> Dataset:
    """Read a ``.lst`` file; image paths are relative to ``root`` (default: its folder).

    One label column means single-label; several mean multi-hot multi-label rows, one 0/1
    column per class, unless ``multi_label`` says otherwise (True reads even one column
    as multi-hot). Labels may be written as ints or floats (``3.000000``). Class names come
    from ``classes.json`` / ``labels.txt`` beside the file, else ``class_0 ..``.
    """
    path = Path(os.path.abspath(path))
    root = Path(os.path.abspath(root if root is not None else path.parent))
    rows = _read_rows(path)
    width = len(rows[0].labels)
    if multi_label is None:
        multi_label = width > 1
    elif not multi_label and width > 1:
        raise DatasetError(f"{path} has {width} label columns; a single-label .lst has exactly one")
    samples = []
    for row in rows:
        try:
            labels = multi_hot_ids(row.labels) if multi_label else (class_id(row.labels[0]),)
        except DatasetError as error:
            raise DatasetError(f"{path}, line {row.line}: {error}") from None
        samples.append(Sample(path=os.path.normpath(os.path.join(root, row.path)), labels=labels))
    used = width if multi_label else 1 + max(sample.label for sample in samples)
    return Dataset(
        class_names=class_names_for(path.parent, used, exact=multi_label),
        samples=samples,
        kind=SourceKind.LST,
        source=path,
        multi_label=multi_label,
        root=root,
    )


def read_lst_names(path: Path) -> dict[int, str]:
    """Image index -> path column (as written) of a ``.lst`` file."""
    return {row.index: row.path for row in _read_rows(path)}


def _read_rows(path: Path) -> list[_Row]:
    """The rows of a ``.lst``, checked for shape: columns, index, a path, same width."""
    rows: list[_Row] = []
    first_line_of: dict[int, int] = {}
    for number, text in enumerate(read_text(path, PATH_TEXT_ERRORS).split("\n"), start=1):
        if not text.strip():
            continue
        where = f"{path}, line {number}"
        row = _parse_row(number, text, where)
        if rows and len(row.labels) != len(rows[0].labels):
            raise DatasetError(
                f"{where}: {len(row.labels)} label column(s) where line {rows[0].line} has "
                f"{len(rows[0].labels)}; every line needs the same number of labels"
            )
        if row.index in first_line_of:
            raise DatasetError(
                f"{where}: index {row.index} is already used on line "
                f"{first_line_of[row.index]} (the first column must be unique)"
            )
        first_line_of[row.index] = number
        rows.append(row)
    if not rows:
        raise DatasetError(f"{path} lists no images")
    return rows


def _parse_row(number: int, text: str, where: str) -> _Row:
    # Split and strip exactly as im2rec's read_list does.
    columns = [column.strip() for column in text.strip().split("\t")]
    if len(columns) < 3:
        raise DatasetError(
            f"{where}: expected index, label(s) and path separated by tabs, found "
            f"{len(columns)} column(s)"
        )
    try:
        index = int(columns[0])
    except ValueError:
        raise DatasetError(
            f"{where}: the index {quote(columns[0])} is not a whole number"
        ) from None
    return _Row(line=number, index=index, labels=columns[1:-1], path=columns[-1])
