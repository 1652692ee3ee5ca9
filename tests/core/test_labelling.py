"""Batch labelling a folder: unreadable files listed, CSV and JSON Lines, sorting into folders."""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from inference_fixtures import PLAIN_CLASSES, write_plain_checkpoint

from imgcls_desktop.core.inference import Predictor
from imgcls_desktop.core.jobs import Cancelled
from imgcls_desktop.core.labelling import (
    SORTED_CSV,
    SORTED_CSV_HEADER,
    UNCERTAIN_FOLDER,
    LabellingResult,
    Prediction,
    label_images,
    sort_into_folders,
    write_csv,
    write_jsonl,
)
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.placing import CsvRecord


def _write(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8), (5, 5), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(path.suffix, image)[1].tobytes())
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """7 images in sub-folders (two named ``same.png``, equal), a damaged JPEG, a text file,
    a hidden image and a hidden folder."""
    root = tmp_path / "photos"
    for index in range(5):
        _write(root / "b" / f"{index}.jpg", index)
    _write(root / "a" / "same.png", 9)
    _write(root / "c" / "same.png", 9)
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not an image", encoding="utf-8")
    _write(root / ".hidden.jpg", 1)
    _write(root / ".cache" / "x.jpg", 2)
    return root


@pytest.fixture
def predictor(tmp_path: Path) -> Predictor:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat/dog\n..\nowl\n", encoding="utf-8")
    model = open_model(write_plain_checkpoint(tmp_path / "model"), labels=labels)
    return Predictor(model, batch_size=3)


def test_a_folder_is_labelled_in_order_and_unreadable_files_are_listed(
    folder: Path, predictor: Predictor
) -> None:
    reports = []
    result = label_images(predictor, [folder], top_k=2, progress=lambda *r: reports.append(r))
    paths = [p.path for p in result.predictions]
    assert paths == [
        folder / "a" / "same.png",
        *(folder / "b" / f"{index}.jpg" for index in range(5)),
        folder / "c" / "same.png",
    ]
    assert [(u.path, u.reason) for u in result.unreadable] == [
        (folder / "b" / "broken.jpg", "truncated or corrupt JPEG (no frame header)")
    ]
    assert reports[-1] == (8, 8) and len(reports) >= 3
    np.testing.assert_allclose(
        np.stack([p.probabilities for p in result.predictions]), predictor.predict(paths)
    )
    first = result.predictions[0]
    assert first.top_k[0] == (first.label, first.confidence) and len(first.top_k) == 2
    assert first.labels == (first.label,)


def test_files_and_missing_paths(folder: Path, predictor: Predictor) -> None:
    missing = folder / "gone.jpg"
    result = label_images(predictor, [folder / "b" / "0.jpg", missing])
    assert len(result.predictions) == 1
    assert result.unreadable[0].path == missing and "no such" in result.unreadable[0].reason


def test_cancel(folder: Path, predictor: Predictor) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        label_images(predictor, [folder], cancel=cancel)


def test_csv_and_json_lines(folder: Path, predictor: Predictor, tmp_path: Path) -> None:
    result = label_images(predictor, [folder], top_k=2)
    write_csv(result, tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == [
        "path",
        "label",
        "confidence",
        "top1_label",
        "top1_probability",
        "top2_label",
        "top2_probability",
        "numeric_precision",
    ]
    assert len(rows) == 1 + len(result.predictions)
    assert {row[-1] for row in rows[1:]} == {"fp32"}
    first = result.predictions[0]
    assert rows[1][:4] == [str(first.path), first.label, f"{first.confidence:.6f}", first.label]

    write_jsonl(result, tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(result.predictions)
    for line, prediction in zip(lines, result.predictions):
        item = json.loads(line)
        assert set(item) == {"source", "prediction", "label", "confidence", "numeric_precision"}
        assert item["numeric_precision"] == "fp32"
        assert item["source"] == str(prediction.path)
        assert len(item["prediction"]) == PLAIN_CLASSES
        assert sum(item["prediction"]) == pytest.approx(1, abs=1e-5)
        best = int(np.argmax(item["prediction"]))
        assert item["label"] == result.class_names[best]
        assert item["confidence"] == pytest.approx(item["prediction"][best])


def test_multi_label_sets_in_the_outputs(folder: Path, tmp_path: Path) -> None:
    model = open_model(write_plain_checkpoint(tmp_path / "model", multi_label=True))
    result = label_images(Predictor(model), [folder / "b"], threshold=0.5)
    for prediction in result.predictions:
        expected = [n for n, p in zip(model.class_names, prediction.probabilities) if p >= 0.5]
        assert list(prediction.labels) == expected
    write_csv(result, tmp_path / "out.csv")
    header, row = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[:2]
    assert header.split(",")[3] == "labels"
    assert row.split(",")[3] == ";".join(result.predictions[0].labels)
    write_jsonl(result, tmp_path / "out.jsonl")
    first = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["labels"] == list(result.predictions[0].labels)


def _read_sorted_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def _folder_of(label: str) -> str:
    return {"cat/dog": "cat_dog", "..": "_..", "owl": "owl"}[label]


def test_copy_into_class_folders_never_overwrites(
    folder: Path, predictor: Predictor, tmp_path: Path
) -> None:
    result = label_images(predictor, [folder])
    out = tmp_path / "sorted"
    same = result.predictions[0]
    taken = out / _folder_of(same.label) / "same.png"
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"already here")

    outcome = sort_into_folders(result, out)
    assert taken.read_bytes() == b"already here"
    assert all(p.path.is_file() for p in result.predictions)  # copied, not moved
    destinations = {(s.source, s.destination) for s in outcome.sorted}
    assert (folder / "a" / "same.png", taken.with_name("same (1).png")) in destinations
    assert (folder / "c" / "same.png", taken.with_name("same (2).png")) in destinations
    for image in outcome.sorted:
        assert image.destination.parent == out / _folder_of(image.label)
        assert image.destination.read_bytes() == image.source.read_bytes()

    assert outcome.csv_path == out / SORTED_CSV
    rows = _read_sorted_csv(outcome.csv_path)
    assert [(Path(r["source"]), Path(r["destination"])) for r in rows] == [
        (s.source, s.destination) for s in outcome.sorted
    ]
    assert rows[0]["label"] == same.label and float(rows[0]["confidence"]) == pytest.approx(
        same.confidence, abs=1e-6
    )
    again = sort_into_folders(result, out)
    assert again.csv_path == out / SORTED_CSV  # the record of a re-run is appended
    assert outcome.csv_path.read_text(encoding="utf-8").count("source,destination") == 1
    assert len(_read_sorted_csv(out / SORTED_CSV)) == 2 * len(outcome.sorted)
    assert not list(out.rglob(".*"))  # no temporary file left


def test_below_min_confidence_goes_to_uncertain_and_move_removes_sources(
    folder: Path, predictor: Predictor, tmp_path: Path
) -> None:
    result = label_images(predictor, [folder / "b"])
    confidences = sorted(p.confidence for p in result.predictions)
    threshold = (confidences[1] + confidences[2]) / 2
    outcome = sort_into_folders(result, tmp_path / "out", move=True, min_confidence=threshold)
    uncertain = {s.source for s in outcome.sorted if s.destination.parent.name == UNCERTAIN_FOLDER}
    assert uncertain == {p.path for p in result.predictions if p.confidence < threshold}
    assert len(uncertain) == 2
    assert not any(p.path.exists() for p in result.predictions)  # moved
    assert all(s.destination.is_file() for s in outcome.sorted)
    rows = _read_sorted_csv(outcome.csv_path)
    assert {r["label"] for r in rows} == {p.label for p in result.predictions}

    again = sort_into_folders(result, tmp_path / "out2")  # the sources are gone now
    assert not again.sorted and len(again.failed) == len(result.predictions)
    assert not any((tmp_path / "out2").rglob("*.jpg"))


def test_empty_result_still_writes_the_csv(tmp_path: Path) -> None:
    result = LabellingResult([], [], ["a", "b"], False, 5, 0.5)
    outcome = sort_into_folders(result, tmp_path / "out")
    assert _read_sorted_csv(outcome.csv_path) == []


def _predicted(paths: list[Path], labels: list[str], class_names: list[str]) -> LabellingResult:
    predictions = []
    for path, label in zip(paths, labels):
        probabilities = np.array([0.9 if name == label else 0.1 for name in class_names])
        ranked = [(label, 0.9)]
        predictions.append(Prediction(path, label, 0.9, probabilities, ranked, (label,)))
    return LabellingResult(predictions, [], class_names, False, 1, 0.5)


@pytest.mark.parametrize(
    ("class_names", "expected"),
    [
        (["Cat", "cat"], {"Cat": "Cat", "cat": "cat (1)"}),  # one folder on macOS / Windows
        (["a/b", "a_b"], {"a/b": "a_b (1)", "a_b": "a_b"}),  # the same once made safe
        (["_uncertain", "dog"], {"_uncertain": "_uncertain (1)", "dog": "dog"}),
        (["x", "X", "x (1)"], {"x": "x", "X": "X (1)", "x (1)": "x (1) (1)"}),
    ],
)
def test_every_class_sorts_into_its_own_folder(
    class_names: list[str], expected: dict[str, str], tmp_path: Path
) -> None:
    paths = [_write(tmp_path / "in" / f"{index}.jpg", index) for index in range(len(class_names))]
    result = _predicted(paths, class_names, class_names)
    outcome = sort_into_folders(result, tmp_path / "out", min_confidence=0.5)

    assert {image.label: image.destination.parent.name for image in outcome.sorted} == expected
    folders = [folder.name.casefold() for folder in (tmp_path / "out").iterdir() if folder.is_dir()]
    assert len(folders) == len(set(folders)) == len(class_names)
    rows = _read_sorted_csv(outcome.csv_path)
    assert {row["label"]: row["folder"] for row in rows} == expected
    assert all(Path(row["destination"]).parent.name == row["folder"] for row in rows)


def test_the_uncertain_folder_is_recorded_as_the_folder(tmp_path: Path) -> None:
    paths = [_write(tmp_path / "in" / "0.jpg", 0)]
    result = _predicted(paths, ["_uncertain"], ["_uncertain", "b"])
    outcome = sort_into_folders(result, tmp_path / "out", min_confidence=0.95)
    (row,) = _read_sorted_csv(outcome.csv_path)
    assert (row["label"], row["folder"]) == ("_uncertain", UNCERTAIN_FOLDER)
    assert outcome.sorted[0].destination.parent == tmp_path / "out" / UNCERTAIN_FOLDER


def test_a_record_from_an_older_version_is_kept_and_a_new_one_started(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    older = "source,destination,label,confidence\nx.jpg,out/a/x.jpg,a,0.5"  # no final newline
    (out / SORTED_CSV).write_text(older, encoding="utf-8")
    paths = [_write(tmp_path / "in" / "0.jpg", 0)]

    outcome = sort_into_folders(_predicted(paths, ["a"], ["a", "b"]), out)
    assert (out / SORTED_CSV).read_text(encoding="utf-8") == older
    assert outcome.csv_path == out / "sorted (1).csv"
    again = sort_into_folders(_predicted(paths, ["a"], ["a", "b"]), out)
    assert again.csv_path == outcome.csv_path
    assert [row["destination"] for row in _read_sorted_csv(outcome.csv_path)] == [
        str(out / "a" / "0.jpg"),
        str(out / "a" / "0 (1).jpg"),
    ]


def _sort_state_left_by_a_kill(inbox: Path, out: Path, *, move: bool) -> list[Path]:
    """Three images to sort (into ``a``, ``b``, ``a``), and in ``out`` what a sort killed
    mid-way leaves (see placing's docstring): ``0.jpg`` recorded and placed, its
    ``.partial`` not yet removed and (a move) its original not yet deleted; ``1.jpg``
    recorded but killed before its final name; ``2.jpg`` cut short while copying, not
    recorded. Returns the images."""
    paths = [_write(inbox / f"{index}.jpg", index) for index in range(3)]
    (out / "a").mkdir(parents=True)
    (out / "b").mkdir()
    with CsvRecord(out / SORTED_CSV, SORTED_CSV_HEADER) as record:
        for path, folder in ((paths[0], "a"), (paths[1], "b")):
            record.write([path, out / folder / path.name, folder, "0.900000", folder])
    os.link(paths[0], out / "a" / "0.jpg")
    os.link(paths[0], out / "a" / ".0.jpg.partial")
    if move:
        os.link(paths[1], out / "b" / ".1.jpg.partial")
    else:
        shutil.copyfile(paths[1], out / "b" / ".1.jpg.partial")
    (out / "a" / ".2.jpg.partial").write_bytes(paths[2].read_bytes()[:40])
    return paths


def _what_was_sorted(out: Path) -> tuple[list[tuple[str, bytes]], int]:
    """The images in the class folders (folder, content) and the lines recording them."""
    images = sorted(
        (path.parent.name, path.read_bytes()) for path in out.glob("*/*") if path.is_file()
    )
    return images, len(_read_sorted_csv(out / SORTED_CSV))


@pytest.mark.parametrize("move", [True, False], ids=["move", "copy"])
def test_sorting_again_after_a_kill_finishes_its_copies_and_equals_one_sort(
    move: bool, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    paths = _sort_state_left_by_a_kill(tmp_path / "inbox", out, move=move)
    contents = [path.read_bytes() for path in paths]
    rows = _read_sorted_csv(out / SORTED_CSV)
    done = {row["source"] for row in rows if Path(row["destination"]).is_file()}
    rest = paths if move else [path for path in paths if str(path) not in done]

    labels = ["a", "b", "a"][-len(rest) :]
    again = sort_into_folders(_predicted(rest, labels, ["a", "b"]), out, move=move)

    assert not again.failed
    assert not list(out.rglob(".*"))  # no temporary file left
    assert _what_was_sorted(out) == (
        sorted([("a", contents[0]), ("b", contents[1]), ("a", contents[2])]),
        3,  # one line per image: none written again for the finished copy
    )
    lines = {Path(row["destination"]): row["source"] for row in _read_sorted_csv(out / SORTED_CSV)}
    assert lines == {
        out / "a" / "0.jpg": str(paths[0]),
        out / "b" / "1.jpg": str(paths[1]),
        out / "a" / "2.jpg": str(paths[2]),
    }
    assert {image.source: image.destination for image in again.sorted} == {
        Path(source): destination for destination, source in lines.items() if Path(source) in rest
    }
    assert [path.exists() for path in paths] == [not move] * 3  # moved: originals removed


def test_a_recorded_name_whose_copy_is_of_another_size_is_not_finished(tmp_path: Path) -> None:
    """An old line naming a file the user has since deleted is no proof that a partial copy
    of a later, killed sort under that name is whole."""
    out = tmp_path / "out"
    path = _write(tmp_path / "inbox" / "0.jpg", 0)
    (out / "a").mkdir(parents=True)
    with CsvRecord(out / SORTED_CSV, SORTED_CSV_HEADER) as record:
        record.write([path, out / "a" / "0.jpg", "a", "0.900000", "a"])
    (out / "a" / ".0.jpg.partial").write_bytes(path.read_bytes()[:40])

    again = sort_into_folders(_predicted([path], ["a"], ["a", "b"]), out)

    assert not list(out.rglob(".*"))
    assert [image.destination for image in again.sorted] == [out / "a" / "0.jpg"]
    assert (out / "a" / "0.jpg").read_bytes() == path.read_bytes()
    assert len(_read_sorted_csv(out / SORTED_CSV)) == 2  # the old line and the new one
