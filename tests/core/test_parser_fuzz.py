"""Fuzzing the .lst and manifest parsers: any input gives a Dataset or a DatasetError."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from imgcls_desktop.core.dataset.lst import import_lst
from imgcls_desktop.core.dataset.manifest import MULTI_LABEL_FORMATS, import_manifest
from imgcls_desktop.core.dataset.samples import Dataset, DatasetError

FUZZ = settings(max_examples=200, deadline=None)


@contextmanager
def _file(name: str, content: str | bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        yield path


def _check(load, path: Path) -> None:
    """The loader either returns a consistent Dataset or refuses with a DatasetError."""
    try:
        dataset = load(path)
    except DatasetError as error:
        assert str(error)
        return
    assert isinstance(dataset, Dataset)
    assert dataset.samples
    for sample in dataset.samples:
        assert all(0 <= label < dataset.num_classes for label in sample.labels)
        assert dataset.multi_label or len(sample.labels) == 1
    assert len(set(dataset.class_names)) == dataset.num_classes


_NUMBER_TEXT = st.one_of(
    st.integers(-3, 12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["1.000000", "0.0", "2.5", "1e9", "", " ", "x", "01", "1_0"]),
)
_LABEL_TEXT = st.one_of(st.sampled_from(["0", "1", "2", "1.000000", "0.000000"]), _NUMBER_TEXT)
_PATH_TEXT = st.one_of(st.sampled_from(["a.jpg", "c/b.png", "/abs/x.jpg"]), st.text(max_size=8))


def _lst_rows(width: int) -> st.SearchStrategy[str]:
    """Mostly well-formed .lst text with ``width`` label columns (so some rows parse)."""
    row = st.tuples(st.lists(_LABEL_TEXT, min_size=width, max_size=width), _PATH_TEXT)
    return st.lists(row, min_size=1, max_size=6).map(
        lambda rows: "".join(
            "\t".join([str(index), *labels, path]) + "\n"
            for index, (labels, path) in enumerate(rows)
        )
    )


_LST_LINE = st.lists(st.one_of(_NUMBER_TEXT, st.text(max_size=8)), max_size=6).map("\t".join)
_LST_TEXT = st.one_of(
    st.text(),
    st.lists(_LST_LINE, max_size=8).map("\n".join),
    st.integers(1, 3).flatmap(_lst_rows),
    st.tuples(st.integers(1, 3).flatmap(_lst_rows), _LST_LINE).map("".join),
)


@FUZZ
@given(_LST_TEXT)
def test_lst_text(content: str) -> None:
    with _file("x.lst", content) as path:
        for multi_label in (None, True, False):
            _check(lambda p, m=multi_label: import_lst(p, multi_label=m), path)


@FUZZ
@given(st.binary())
def test_lst_bytes(content: bytes) -> None:
    with _file("x.lst", content) as path:
        _check(import_lst, path)


_JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(),
    _NUMBER_TEXT,
    st.text(max_size=10),
)
_JSON = st.recursive(
    _JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
_CLASS_ID = st.one_of(st.integers(0, 3), st.integers(0, 3).map(str), st.sampled_from([1.0, "2.0"]))
_MULTI_HOT = st.lists(st.sampled_from([0, 1, 1.0, "0"]), min_size=3, max_size=3)
_LABEL = st.one_of(
    _CLASS_ID,
    _MULTI_HOT,
    _MULTI_HOT.map(json.dumps),
    st.lists(_CLASS_ID, max_size=4),
    st.lists(st.integers(0, 3), max_size=4).map(json.dumps),
    _JSON,
)
_CLASS_NAME = st.one_of(st.sampled_from(["cat", "dog", "class_1"]), _JSON_SCALAR)
_METADATA = st.fixed_dictionaries(
    {},
    optional={
        "class-name": _CLASS_NAME,
        "class-map": st.dictionaries(
            st.one_of(_CLASS_ID.map(str), st.text(max_size=3)), _CLASS_NAME
        ),
    },
)
_SOURCE = st.one_of(
    _PATH_TEXT,
    st.sampled_from(["s3://b/a.jpg", "file:///a.jpg", "file://h/a", "file://[x", "http://x"]),
    _JSON_SCALAR,
)
_RECORD = st.fixed_dictionaries(
    {"source-ref": _SOURCE, "class": _LABEL},
    optional={"class-metadata": st.one_of(_METADATA, _JSON)},
)
_PARTIAL_RECORD = st.fixed_dictionaries(
    {}, optional={"source-ref": _SOURCE, "class": _LABEL, "class-metadata": _METADATA}
)
_MANIFEST_LINE = st.one_of(
    _RECORD.map(json.dumps),
    _PARTIAL_RECORD.map(json.dumps),
    _JSON.map(json.dumps),
    st.text(max_size=20),
)
_MANIFEST_TEXT = st.one_of(
    st.text(),
    st.lists(_RECORD.map(json.dumps), min_size=1, max_size=5).map("\n".join),
    st.lists(_MANIFEST_LINE, max_size=6).map("\n".join),
)


@FUZZ
@given(_MANIFEST_TEXT, st.sampled_from([None, *MULTI_LABEL_FORMATS]))
def test_manifest_text(content: str, multi_label_format: str | None) -> None:
    with _file("x.jsonl", content) as path:
        _check(lambda p: import_manifest(p, multi_label_format=multi_label_format), path)


@FUZZ
@given(st.binary())
def test_manifest_bytes(content: bytes) -> None:
    with _file("x.jsonl", content) as path:
        _check(import_manifest, path)
