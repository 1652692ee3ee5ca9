"""The .lst importer: im2rec's format, multi-hot rows, class names, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from imgcls_desktop.core.dataset.folder import import_folder
from imgcls_desktop.core.dataset.lst import format_lst_line, import_lst, read_lst_names
from imgcls_desktop.core.dataset.samples import DatasetError, SourceKind


def _write_lst(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _pairs(dataset) -> list[tuple[str, tuple[int, ...]]]:
    return [(dataset.relative_path(sample), sample.labels) for sample in dataset.samples]


def test_round_trip_of_im2rec_lines(class_folder: Path) -> None:
    folder = import_folder(class_folder)
    lines = [
        format_lst_line(index, [sample.label], folder.relative_path(sample))
        for index, sample in enumerate(folder.samples)
    ]
    assert lines[0] == "0\t0.000000\tcat/cat_0.jpg\n"
    lst = _write_lst(class_folder / "train.lst", "".join(lines))

    dataset = import_lst(lst)

    assert dataset.kind is SourceKind.LST
    assert dataset.source == lst
    assert dataset.root == class_folder
    assert not dataset.multi_label
    assert [(s.path, s.labels) for s in dataset.samples] == [
        (s.path, s.labels) for s in folder.samples
    ]
    assert dataset.class_names == ["class_0", "class_1", "class_2"]


def test_int_labels_blank_lines_crlf_and_absolute_paths(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "x.jpg"
    lst = _write_lst(
        tmp_path / "data.lst",
        f"\r\n5\t1\timages/a.jpg\r\n\n   \n1000\t0\t{elsewhere}\r\n22\t4\t./images/../b c.png\n",
    )
    dataset = import_lst(lst)
    assert [(s.path, s.labels) for s in dataset.samples] == [
        (str(tmp_path / "images" / "a.jpg"), (1,)),
        (str(elsewhere), (0,)),
        (str(tmp_path / "b c.png"), (4,)),
    ]
    assert dataset.num_classes == 5


def test_root_option(tmp_path: Path) -> None:
    lst = _write_lst(tmp_path / "lists" / "val.lst", "0\t0\tcat/a.jpg\n")
    dataset = import_lst(lst, root=tmp_path / "images")
    assert dataset.samples[0].path == str(tmp_path / "images" / "cat" / "a.jpg")
    assert dataset.root == tmp_path / "images"


def test_multi_hot_rows(tmp_path: Path) -> None:
    lst = _write_lst(
        tmp_path / "m.lst",
        "0\t1.000000\t0.000000\t1.000000\ta.jpg\n1\t0\t0\t0\tb.jpg\n2\t0\t1\t0\tc.jpg\n",
    )
    dataset = import_lst(lst)
    assert dataset.multi_label
    assert dataset.num_classes == 3
    assert [s.labels for s in dataset.samples] == [(0, 2), (), (1,)]
    assert dataset.class_counts() == [1, 1, 1]


def test_multi_label_option(tmp_path: Path) -> None:
    one_column = _write_lst(tmp_path / "one.lst", "0\t1\ta.jpg\n1\t0\tb.jpg\n")
    forced = import_lst(one_column, multi_label=True)
    assert forced.multi_label
    assert [s.labels for s in forced.samples] == [(0,), ()]

    two_columns = _write_lst(tmp_path / "two.lst", "0\t1\t0\ta.jpg\n")
    with pytest.raises(DatasetError, match=r"2 label columns; a single-label \.lst"):
        import_lst(two_columns, multi_label=False)


def test_names_from_classes_json_list(tmp_path: Path) -> None:
    lst = _write_lst(tmp_path / "train.lst", "0\t1\ta.jpg\n")
    (tmp_path / "classes.json").write_text(json.dumps(["cat", "dog", "owl"]))
    (tmp_path / "labels.txt").write_text("ignored\nbecause\nclasses.json wins\n")
    assert import_lst(lst).class_names == ["cat", "dog", "owl"]


@pytest.mark.parametrize(
    "mapping", [{"1": "dog", "0": "cat"}, {"dog": 1, "cat": 0}], ids=["id-to-name", "name-to-id"]
)
def test_names_from_classes_json_mapping(tmp_path: Path, mapping: dict) -> None:
    lst = _write_lst(tmp_path / "train.lst", "0\t1\ta.jpg\n")
    (tmp_path / "classes.json").write_text(json.dumps(mapping))
    assert import_lst(lst).class_names == ["cat", "dog"]


def test_names_from_labels_txt(tmp_path: Path) -> None:
    lst = _write_lst(tmp_path / "train.lst", "0\t0\ta.jpg\n")
    (tmp_path / "labels.txt").write_text("\ufeffcat\r\ndog\n\n")
    assert import_lst(lst).class_names == ["cat", "dog"]


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("classes.json", '["cat"]', "names 1 classes but the labels use 2"),
        ("classes.json", "{not json", "is not valid JSON"),
        ("classes.json", '{"0": "cat", "2": "dog"}', "ids must run from 0 to 1"),
        ("classes.json", '["cat", "cat"]', "names the class 'cat' twice"),
        ("classes.json", '["cat", 3]', "class name 3 is not a non-empty text"),
        ("classes.json", '"cat"', "must hold a JSON list of class names"),
        ("labels.txt", "cat\n\ndog\n", "line 2: blank line"),
    ],
)
def test_bad_class_name_files(tmp_path: Path, file_name: str, content: str, message: str) -> None:
    lst = _write_lst(tmp_path / "train.lst", "0\t1\ta.jpg\n")
    (tmp_path / file_name).write_text(content)
    with pytest.raises(DatasetError, match=message):
        import_lst(lst)


def test_multi_hot_needs_exactly_as_many_names(tmp_path: Path) -> None:
    lst = _write_lst(tmp_path / "m.lst", "0\t1\t0\ta.jpg\n")
    (tmp_path / "classes.json").write_text('["cat", "dog", "owl"]')
    with pytest.raises(DatasetError, match="names 3 classes but the labels use 2"):
        import_lst(lst)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "0\t1\ta.jpg\n1 0 b.jpg\n",
            r"line 2: expected index, label\(s\) and path separated by tabs",
        ),
        ("0\t3.5\ta.jpg\n", "line 1: label '3.5' is not a whole number"),
        ("0\t-1\ta.jpg\n", "line 1: label '-1' is negative"),
        ("0\tcat\ta.jpg\n", "line 1: label 'cat' is not a number"),
        ("0\tnan\ta.jpg\n", "line 1: label 'nan' is not a whole number"),
        ("0\t1e9\ta.jpg\n", "line 1: label '1e9' is too large"),
        ("x\t1\ta.jpg\n", "line 1: the index 'x' is not a whole number"),
        (
            "0\t1\t0\ta.jpg\n1\t2\t0\tb.jpg\n",
            "line 2: multi-hot value '2' for class 0 is not 0 or 1",
        ),
        ("0\t1\t0\ta.jpg\n\n1\t1\tb.jpg\n", "line 3: 1 label column.* where line 1 has 2"),
        ("7\t1\ta.jpg\n7\t0\tb.jpg\n", "line 2: index 7 is already used on line 1"),
        ("0\t1\t \n", r"line 1: expected index, label\(s\) and path"),
        ("\n \n", "lists no images"),
    ],
)
def test_malformed_lines(tmp_path: Path, text: str, message: str) -> None:
    lst = _write_lst(tmp_path / "bad.lst", text)
    with pytest.raises(DatasetError, match=message) as caught:
        import_lst(lst)
    assert str(lst) in str(caught.value)


def test_a_path_that_is_not_utf8_is_the_file_system_name(tmp_path: Path) -> None:
    lst = tmp_path / "latin1.lst"
    lst.write_bytes(b"0\t1\tcaf\xe9.jpg\n")
    (sample,) = import_lst(lst).samples
    assert os.fsencode(sample.path) == os.fsencode(tmp_path) + b"/caf\xe9.jpg"
    assert read_lst_names(lst) == {0: os.fsdecode(b"caf\xe9.jpg")}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        import_lst(tmp_path / "missing.lst")


def test_read_lst_names(tmp_path: Path) -> None:
    lst = _write_lst(tmp_path / "x.lst", "3\t1.000000\tcat/a.jpg\n1\t0.000000\tdog/b.jpg\n")
    assert read_lst_names(lst) == {3: "cat/a.jpg", 1: "dog/b.jpg"}
