"""The augmented-manifest importer: labels, names, multi-label formats, URIs, errors."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from imgcls_desktop.core.dataset.manifest import import_manifest
from imgcls_desktop.core.dataset.samples import DatasetError, SourceKind


def _write_manifest(path: Path, *records: object) -> Path:
    lines = [record if isinstance(record, str) else json.dumps(record) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_single_label_with_class_metadata(tmp_path: Path) -> None:
    manifest = _write_manifest(
        tmp_path / "train.manifest",
        {"source-ref": "img/a.jpg", "class": "1", "class-metadata": {"class-name": "dog"}},
        {"source-ref": "img/b.jpg", "class": 0, "class-metadata": {"class-name": "cat"}},
        "",
        {"source-ref": "img/c.jpg", "class": 2.0, "other": [1, 2]},
    )
    dataset = import_manifest(manifest)

    assert dataset.kind is SourceKind.MANIFEST
    assert dataset.source == manifest
    assert dataset.root == tmp_path
    assert not dataset.multi_label
    assert dataset.class_names == ["cat", "dog", "class_2"]
    assert [(s.path, s.labels) for s in dataset.samples] == [
        (str(tmp_path / "img" / "a.jpg"), (1,)),
        (str(tmp_path / "img" / "b.jpg"), (0,)),
        (str(tmp_path / "img" / "c.jpg"), (2,)),
    ]


def test_label_attribute_and_root(tmp_path: Path) -> None:
    manifest = _write_manifest(
        tmp_path / "m.jsonl",
        {"source-ref": "a.jpg", "animal": "1", "animal-metadata": {"class-name": "dog"}},
        {"source-ref": "b.jpg", "animal": "0", "class": "ignored"},
    )
    dataset = import_manifest(manifest, label_attribute="animal", root=tmp_path / "pics")
    assert dataset.class_names == ["class_0", "dog"]
    assert dataset.samples[0].path == str(tmp_path / "pics" / "a.jpg")


def test_names_from_classes_json_without_metadata(tmp_path: Path) -> None:
    manifest = _write_manifest(tmp_path / "m.jsonl", {"source-ref": "a.jpg", "class": "1"})
    (tmp_path / "classes.json").write_text('["cat", "dog", "owl"]')
    assert import_manifest(manifest).class_names == ["cat", "dog", "owl"]


@pytest.mark.parametrize("as_string", [True, False], ids=["string", "array"])
def test_multi_hot(tmp_path: Path, as_string: bool) -> None:
    vectors = [[1, 0, 1], [0, 0, 1], [0, 0, 0]]
    manifest = _write_manifest(
        tmp_path / "m.jsonl",
        *(
            {"source-ref": f"{i}.jpg", "class": json.dumps(v) if as_string else v}
            for i, v in enumerate(vectors)
        ),
    )
    for multi_label_format in (None, "multi-hot"):
        dataset = import_manifest(manifest, multi_label_format=multi_label_format)
        assert dataset.multi_label
        assert dataset.class_names == ["class_0", "class_1", "class_2"]
        assert [s.labels for s in dataset.samples] == [(0, 2), (2,), ()]


@pytest.mark.parametrize("as_string", [True, False], ids=["string", "array"])
def test_class_ids_with_ground_truth_class_map(tmp_path: Path, as_string: bool) -> None:
    ids = [[0, 2], [2], [], [3, 0, 3]]
    manifest = _write_manifest(
        tmp_path / "m.jsonl",
        *(
            {
                "source-ref": f"{i}.jpg",
                "class": json.dumps(v) if as_string else v,
                "class-metadata": {"class-map": {str(c): f"c{c}" for c in v}},
            }
            for i, v in enumerate(ids)
        ),
    )
    dataset = import_manifest(manifest, multi_label_format="class-id")
    assert dataset.multi_label
    assert dataset.class_names == ["c0", "class_1", "c2", "c3"]
    assert [s.labels for s in dataset.samples] == [(0, 2), (2,), (), (0, 3)]
    assert dataset.class_counts() == [2, 0, 2, 1]


def test_class_ids_read_as_multi_hot_suggest_the_option(tmp_path: Path) -> None:
    manifest = _write_manifest(
        tmp_path / "m.jsonl",
        {"source-ref": "a.jpg", "class": [0, 2]},
        {"source-ref": "b.jpg", "class": [1]},
    )
    with pytest.raises(DatasetError, match=r"line 1: .*is not 0 or 1.*class-id multi-label format"):
        import_manifest(manifest)


def test_file_uris(tmp_path: Path) -> None:
    image = tmp_path / "my images" / "cat #1.jpg"
    manifest = _write_manifest(
        tmp_path / "m.jsonl",
        {"source-ref": "file://" + quote(str(image)), "class": 0},
        {"source-ref": "file://localhost" + quote(str(image)), "class": 1},
        {"source-ref": "FILE://" + quote(str(image)), "class": 1},
    )
    assert [s.path for s in import_manifest(manifest).samples] == [str(image)] * 3


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"source-ref": "s3://bucket/train/a.jpg", "class": 0},
            r"line 2: the image 's3://bucket/train/a.jpg' is in Amazon S3; download the images "
            r"first \(e.g. `aws s3 sync",
        ),
        ({"source-ref": "https://x.org/a.jpg", "class": 0}, "line 2: .* is not a local file"),
        ({"source-ref": "file://server/share/a.jpg", "class": 0}, "names another host"),
        ({"source-ref": "file://[bad/a.jpg", "class": 0}, "not a valid file URI"),
        ({"source-ref": "b.jpg"}, r"line 2: no label attribute 'class' \(attributes found: "),
        ({"class": "0"}, 'line 2: no "source-ref" attribute'),
        ({"source-ref": 5, "class": "0"}, "line 2: source-ref 5 is not a path"),
        ({"source-ref": None, "class": "0"}, "line 2: source-ref None is not a path"),
        ({"source-ref": "b.jpg", "class": "zero"}, "line 2: label 'zero' is not a number"),
        ({"source-ref": "b.jpg", "class": True}, "line 2: label True is not a number"),
        ({"source-ref": "b.jpg", "class": "-1"}, "line 2: label '-1' is negative"),
        ({"source-ref": "b.jpg", "class": [1, 0]}, "line 2: .* is a list but earlier labels"),
        (
            {"source-ref": "b.jpg", "class": "1", "class-metadata": {"class-name": "cat"}},
            "line 2: class-metadata: class 1 is named 'cat' here but 'dog' on an earlier line",
        ),
        (
            {"source-ref": "b.jpg", "class": "2", "class-metadata": {"class-name": "dog"}},
            "the class 'dog' twice",
        ),
        (
            {"source-ref": "b.jpg", "class": "0", "class-metadata": {"class-map": [1]}},
            "line 2: class-metadata: class-map is not an object",
        ),
        ('{"source-ref": "b.jpg", "class": ', "line 2: not valid JSON"),
        ("[1, 2]", "line 2: not a JSON object"),
        ("[" * 100_000, "line 2: not valid JSON"),
    ],
)
def test_bad_lines(tmp_path: Path, record: object, message: str) -> None:
    first = {"source-ref": "a.jpg", "class": "1", "class-metadata": {"class-name": "dog"}}
    manifest = _write_manifest(tmp_path / "m.jsonl", first, record)
    with pytest.raises(DatasetError, match=message) as caught:
        import_manifest(manifest)
    assert str(manifest) in str(caught.value)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"source-ref": "a.jpg", "class": "0"}], "single value but a multi-label format"),
        (
            [{"source-ref": "a.jpg", "class": [1, 0]}, {"source-ref": "b.jpg", "class": [1]}],
            "line 2: the multi-hot label .* has 1 values where earlier labels have 2",
        ),
        ([{"source-ref": "a.jpg", "class": "[1, 0"}], "is not a valid JSON list"),
    ],
)
def test_bad_multi_hot(tmp_path: Path, records: list, message: str) -> None:
    manifest = _write_manifest(tmp_path / "m.jsonl", *records)
    with pytest.raises(DatasetError, match=message):
        import_manifest(manifest, multi_label_format="multi-hot")


def test_class_map_beyond_multi_hot_width(tmp_path: Path) -> None:
    manifest = _write_manifest(
        tmp_path / "m.jsonl",
        {"source-ref": "a.jpg", "class": [1, 0], "class-metadata": {"class-map": {"5": "x"}}},
    )
    with pytest.raises(DatasetError, match="names class 5 but the multi-hot labels have only 2"):
        import_manifest(manifest)


def test_no_classes_at_all(tmp_path: Path) -> None:
    manifest = _write_manifest(tmp_path / "m.jsonl", {"source-ref": "a.jpg", "class": []})
    with pytest.raises(DatasetError, match="no line has a label"):
        import_manifest(manifest, multi_label_format="class-id")


def test_empty_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n  \n")
    with pytest.raises(DatasetError, match="lists no images"):
        import_manifest(manifest)


def test_image_ref_attribute_as_in_sagemaker_docs(tmp_path: Path) -> None:
    manifest = _write_manifest(tmp_path / "m.jsonl", {"image-ref": "a.jpg", "class": [1, 0]})
    assert import_manifest(manifest).samples[0].path == str(tmp_path / "a.jpg")


def test_unknown_format_option(tmp_path: Path) -> None:
    manifest = _write_manifest(tmp_path / "m.jsonl", {"source-ref": "a.jpg", "class": 0})
    with pytest.raises(ValueError, match="multi_label_format"):
        import_manifest(manifest, multi_label_format="one-hot")  # type: ignore[arg-type]
