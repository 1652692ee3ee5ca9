"""Existing RecordIO files (``.rec``, with its ``.idx`` and ``.lst`` when present)."""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imgcls_desktop.core.dataset.class_names import (
    class_id,
    class_names_for,
    multi_hot_ids,
    read_text,
)
from imgcls_desktop.core.dataset.lst import read_lst_names
from imgcls_desktop.core.dataset.samples import Dataset, DatasetError, Sample, SourceKind
from imgcls_desktop.core.runtime import mxnet

RECORDIO_MAGIC = 0xCED7230A


def import_recordio(path: Path) -> Dataset:
    """Read labels and counts of a ``.rec`` from its record headers, decoding no image.

    Records are keyed as in the ``.idx`` beside the file; without one they are keyed by
    position (0, 1, ...) and their offsets are kept in ``Dataset.record_offsets``. A record
    is named after its entry in a ``.lst`` with the same stem (matched on the header id,
    which im2rec sets to the ``.lst`` index), else ``<file>.rec#<key>``. A label is a class
    id, or a 0/1 vector (header flag = width >= 2) for multi-label data; a 1-wide vector is
    read as a class id. Class names come from ``classes.json`` / ``labels.txt`` beside it.
    """
    path = Path(os.path.abspath(path))
    _check_magic(path)
    headers = list(_scan_headers(path))
    if not headers:
        raise DatasetError(f"{path} holds no records")
    idx_path = path.with_suffix(".idx")
    if idx_path.is_file():
        by_offset = {offset: header for offset, header in headers}
        keyed = _keyed_by_index(idx_path, by_offset, path)
        offsets: dict[int, int] = {}
    else:
        keyed = [(key, header) for key, (_offset, header) in enumerate(headers)]
        offsets = {key: offset for key, (offset, _header) in enumerate(headers)}
    lst_path = path.with_suffix(".lst")
    names = _lst_names(lst_path, path) if lst_path.is_file() else {}
    width = _label_width(keyed[0][1])
    multi_label = width >= 2
    samples = []
    for key, header in keyed:
        if _label_width(header) != width:
            raise DatasetError(
                f"{path}: record {key} has {_label_width(header)} label value(s) where the "
                f"first record has {width}; every record needs the same number of labels"
            )
        try:
            labels = _labels(header.label, multi_label)
        except DatasetError as error:
            raise DatasetError(f"{path}, record {key}: {error}") from None
        name = names.get(header.id, f"{path.name}#{key}")
        samples.append(Sample(path=name, labels=labels, record=key))
    used = width if multi_label else 1 + max(sample.label for sample in samples)
    return Dataset(
        class_names=class_names_for(path.parent, used, exact=multi_label),
        samples=samples,
        kind=SourceKind.RECORDIO,
        source=path,
        multi_label=multi_label,
        record_file=path,
        record_offsets=offsets,
    )


def _check_magic(path: Path) -> None:
    """Refuse files that are not RecordIO before MXNet reads them."""
    try:
        with path.open("rb") as handle:
            start = handle.read(4)
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None
    if len(start) < 4 or struct.unpack("<I", start)[0] != RECORDIO_MAGIC:
        raise DatasetError(f"{path} is not a RecordIO (.rec) file")


def _scan_headers(path: Path) -> Iterator[tuple[int, Any]]:
    """(byte offset, header) of every record, in file order."""
    mx = mxnet()
    reader = mx.recordio.MXRecordIO(str(path), "r")
    position = ctypes.c_size_t()
    try:
        while True:
            # The reader's position, from MXNet's C API (the Python class exposes it
            # only for writers).
            mx.base.check_call(
                mx.base._LIB.MXRecordIOReaderTell(reader.handle, ctypes.byref(position))
            )
            record = reader.read()
            if record is None:
                return
            header, _image = mx.recordio.unpack(record)
            yield position.value, header
    except (mx.base.MXNetError, ValueError, struct.error) as error:
        detail = str(error).strip().splitlines()[-1:] or ["unreadable record"]
        raise DatasetError(
            f"{path} is damaged or truncated: the record at byte {position.value} cannot be "
            f"read ({detail[0]})"
        ) from None
    finally:
        reader.close()


def _keyed_by_index(idx_path: Path, by_offset: dict[int, Any], rec_path: Path) -> list[Any]:
    """(key, header) for each ``.idx`` entry; the index must match the records exactly."""
    mismatch = (
        f"{idx_path} does not match {rec_path.name}; delete it to have the records "
        "indexed by reading the whole file"
    )
    keyed = []
    seen: set[int] = set()
    for number, line in enumerate(read_text(idx_path).splitlines(), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        try:
            key, offset = int(columns[0]), int(columns[1])
        except (ValueError, IndexError):
            raise DatasetError(f"{idx_path}, line {number}: expected key<TAB>offset") from None
        if key in seen or offset not in by_offset:
            raise DatasetError(f"{mismatch} (line {number})")
        seen.add(key)
        keyed.append((key, by_offset[offset]))
    if len(keyed) != len(by_offset):
        raise DatasetError(f"{mismatch} ({len(keyed)} entries for {len(by_offset)} records)")
    return keyed


def _lst_names(lst_path: Path, rec_path: Path) -> dict[int, str]:
    try:
        return read_lst_names(lst_path)
    except DatasetError as error:
        raise DatasetError(
            f"{error} (the .lst beside {rec_path.name} names its images; fix or remove it)"
        ) from None


def _label_width(header: Any) -> int:
    """How many label values a record has (its header flag; 0 means one float label)."""
    return max(header.flag, 1)


def _labels(label: Any, multi_label: bool) -> tuple[int, ...]:
    if multi_label:
        return multi_hot_ids(label.tolist())
    if not isinstance(label, float):  # a 1-wide label vector
        label = float(label[0])
    return (class_id(label),)
