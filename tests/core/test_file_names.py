"""File names that are not valid UTF-8 (``caf\\xe9.jpg``) round-trip through ``.lst``, CSV,
JSON and manifests, and every such image is packed, labelled, sorted and corrected like the
others."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np
from conftest import CLASS_COLOURS, write_image

from imgcls_desktop.core.corrections import CORRECTIONS_CSV, add_to_dataset
from imgcls_desktop.core.dataset.folder import import_folder
from imgcls_desktop.core.dataset.lst import import_lst
from imgcls_desktop.core.dataset.manifest import import_manifest
from imgcls_desktop.core.dataset.recordio_export import export_recordio
from imgcls_desktop.core.dataset.split import SplitAssignment
from imgcls_desktop.core.file_names import display_path, json_text, show_file_names_on
from imgcls_desktop.core.labelling import (
    LabellingResult,
    Prediction,
    sort_into_folders,
    write_csv,
    write_jsonl,
)
from imgcls_desktop.core.runtime import mxnet
from tests.file_name_fixtures import read_record, undecodable_path


def test_display_and_json_forms() -> None:
    name = os.fsdecode(b"caf\xe9 \xc3\xa9t\xc3\xa9.jpg")  # one bad byte, then valid UTF-8
    assert display_path(name) == "caf\\xe9 été.jpg"
    text = json_text({"source": name})
    assert text == '{"source": "caf\\udce9 été.jpg"}'
    assert os.fsencode(json.loads(text.encode("utf-8").decode("utf-8"))["source"]) == (
        b"caf\xe9 \xc3\xa9t\xc3\xa9.jpg"
    )


def test_pack_keeps_the_name_in_the_lst_as_the_file_system_has_it(
    class_folder: Path, tmp_path: Path
) -> None:
    odd = write_image(undecodable_path(class_folder / "cat"), CLASS_COLOURS["cat"], seed=7)
    dataset = import_folder(class_folder)
    everything = tuple(range(len(dataset.samples)))
    export_recordio(
        dataset, tmp_path / "out", assignment=SplitAssignment(everything, (), (), 0.0, 0.0, 0)
    )
    lst = tmp_path / "out" / "dataset-train.lst"
    assert b"\tcat/caf\xe9.jpg\n" in lst.read_bytes()  # the file system's bytes, like im2rec

    again = import_lst(lst, root=class_folder)
    assert [sample.path for sample in again.samples] == [sample.path for sample in dataset.samples]
    assert str(odd) in {sample.path for sample in again.samples}
    assert all(Path(sample.path).is_file() for sample in again.samples)

    # MXNet's C++ reader takes the .lst line as bytes: the labels come through.
    records = mxnet().io.ImageRecordIter(
        path_imgrec=str(lst.with_suffix(".rec")),
        path_imglist=str(lst),
        data_shape=(3, 32, 32),
        batch_size=len(dataset.samples),
    )
    labels = next(iter(records)).label[0].asnumpy()
    assert labels.tolist() == [float(sample.label) for sample in dataset.samples]


def test_a_class_folder_named_in_latin_1_gets_a_printable_class_name(tmp_path: Path) -> None:
    folder = undecodable_path(tmp_path / "data", os.fsdecode(b"caf\xe9"))
    write_image(folder / "a.jpg", CLASS_COLOURS["cat"])
    write_image(tmp_path / "data" / "dog" / "b.jpg", CLASS_COLOURS["dog"])
    dataset = import_folder(tmp_path / "data")
    assert dataset.class_names == ["caf\\xe9", "dog"]
    assert Path(dataset.samples[0].path) == folder / "a.jpg"


def _result(paths: list[Path]) -> LabellingResult:
    predictions = [
        Prediction(path, "cat", 0.9, np.array([0.9, 0.1]), [("cat", 0.9), ("dog", 0.1)], ("cat",))
        for path in paths
    ]
    return LabellingResult(predictions, [], ["cat", "dog"], False, 2, 0.5)


def test_predictions_csv_and_json_lines_give_the_same_path_back(tmp_path: Path) -> None:
    odd = write_image(undecodable_path(tmp_path / "in"), CLASS_COLOURS["cat"])
    plain = write_image(tmp_path / "in" / "été.jpg", CLASS_COLOURS["cat"])
    result = _result([odd, plain])

    write_csv(result, tmp_path / "out.csv")
    rows = read_record(tmp_path / "out.csv")
    assert [Path(row["path"]) for row in rows] == [odd, plain]
    assert all(Path(row["path"]).is_file() for row in rows)

    write_jsonl(result, tmp_path / "out.jsonl")
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")  # valid UTF-8 throughout
    assert "caf\\udce9.jpg" in text and "été.jpg" in text
    sources = [Path(json.loads(line)["source"]) for line in text.splitlines()]
    assert sources == [odd, plain] and all(source.is_file() for source in sources)


def test_moving_records_every_image_and_keeps_its_name(tmp_path: Path) -> None:
    odd = write_image(undecodable_path(tmp_path / "in"), CLASS_COLOURS["cat"])
    other = write_image(tmp_path / "in" / "b.jpg", CLASS_COLOURS["dog"])
    contents = {odd.name: odd.read_bytes(), other.name: other.read_bytes()}

    outcome = sort_into_folders(_result([odd, other]), tmp_path / "sorted", move=True)
    rows = read_record(outcome.csv_path)
    assert [Path(row["source"]) for row in rows] == [odd, other]
    assert not odd.exists() and not other.exists()
    for row in rows:
        destination = Path(row["destination"])
        assert destination.read_bytes() == contents[destination.name]
    assert os.fsencode(rows[0]["destination"]).endswith(b"/cat/caf\xe9.jpg")


def test_corrections_record_the_name_as_the_file_system_has_it(tmp_path: Path) -> None:
    odd = write_image(undecodable_path(tmp_path / "in"), CLASS_COLOURS["owl"])
    result = add_to_dataset([(odd, "owl")], tmp_path / "data")
    assert not result.failed
    (row,) = read_record(tmp_path / "data" / CORRECTIONS_CSV)
    assert Path(row["source"]) == odd
    assert Path(row["copied_to"]) == tmp_path / "data" / "owl" / odd.name
    assert Path(row["copied_to"]).read_bytes() == odd.read_bytes()


def test_a_manifest_names_the_file_by_escape_or_by_percent_encoded_bytes(tmp_path: Path) -> None:
    odd = write_image(undecodable_path(tmp_path / "images"), CLASS_COLOURS["cat"])
    manifest = tmp_path / "train.manifest"
    lines = [
        json_text({"source-ref": "images/" + odd.name, "class": 0}),
        json_text({"source-ref": "file://" + quote(os.fsencode(odd)), "class": 1}),
    ]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "%E9.jpg" in lines[1]
    assert [sample.path for sample in import_manifest(manifest).samples] == [str(odd)] * 2


def test_an_output_stream_shows_such_names_instead_of_failing() -> None:
    strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    show_file_names_on(strict)
    print(os.fsdecode(b"caf\xe9.jpg"), "→ été", file=strict)
    strict.flush()
    assert strict.buffer.getvalue() == "caf\\xe9.jpg → été\n".encode()

    as_is = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="surrogateescape")
    show_file_names_on(as_is)  # already writes the name's bytes: left so
    print(os.fsdecode(b"caf\xe9.jpg"), file=as_is)
    as_is.flush()
    assert as_is.buffer.getvalue() == b"caf\xe9.jpg\n"
