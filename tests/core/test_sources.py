"""Recognising a data source and loading it with the right importer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgcls_desktop.core.dataset.samples import DatasetError, SourceKind
from imgcls_desktop.core.dataset.sources import detect_kind, load_dataset
from imgcls_desktop.core.runtime import mxnet


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("train.lst", SourceKind.LST),
        ("train.LST", SourceKind.LST),
        ("output.manifest", SourceKind.MANIFEST),
        ("data.jsonl", SourceKind.MANIFEST),
        ("data.json", SourceKind.MANIFEST),
        ("train.rec", SourceKind.RECORDIO),
    ],
)
def test_detect_kind_by_extension(tmp_path: Path, name: str, kind: SourceKind) -> None:
    (tmp_path / name).write_text("")
    assert detect_kind(tmp_path / name) is kind


def test_detect_folder(class_folder: Path) -> None:
    assert detect_kind(class_folder) is SourceKind.FOLDER


def test_detect_refuses_unknown_and_missing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(DatasetError, match=r"notes\.txt is not a data set .* \.lst .* \.rec"):
        detect_kind(tmp_path / "notes.txt")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nothing.lst")


def test_load_each_kind(class_folder: Path, tmp_path: Path) -> None:
    assert load_dataset(class_folder).class_names == ["cat", "dog", "owl"]

    lst = tmp_path / "lists" / "a.lst"
    lst.parent.mkdir()
    lst.write_text("0\t1.000000\tcat/cat_0.jpg\n")
    loaded = load_dataset(lst, root=class_folder)
    assert loaded.kind is SourceKind.LST
    assert Path(loaded.samples[0].path).is_file()

    manifest = tmp_path / "m.manifest"
    record = {"source-ref": "images/cat/cat_0.jpg", "animal": [0, 2]}
    manifest.write_text(json.dumps(record) + "\n")
    loaded = load_dataset(manifest, label_attribute="animal", multi_label_format="class-id")
    assert loaded.kind is SourceKind.MANIFEST
    assert loaded.samples[0].labels == (0, 2)
    assert Path(loaded.samples[0].path).is_file()

    mx = mxnet()
    rec = tmp_path / "r.rec"
    writer = mx.recordio.MXRecordIO(str(rec), "w")
    writer.write(mx.recordio.pack(mx.recordio.IRHeader(0, 1.0, 0, 0), b"bytes"))
    writer.close()
    loaded = load_dataset(rec)
    assert loaded.kind is SourceKind.RECORDIO
    assert loaded.samples[0].labels == (1,)
