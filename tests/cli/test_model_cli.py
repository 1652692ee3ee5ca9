"""``imgcls predict`` and ``imgcls export`` on a tiny trained run, as a user runs them."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import tarfile
from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from tests.conftest import write_image
from tests.core.inference_fixtures import shared_run, write_plain_checkpoint
from tests.file_name_fixtures import (
    check_nothing_lost,
    read_record,
    run_cli_killed_at,
    undecodable_path,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_run(tmp_path_factory)[0]


@pytest.fixture
def new_images(tmp_path: Path) -> Path:
    folder = tmp_path / "new"
    for index in range(5):
        write_image(folder / f"img{index}.jpg", (30 * index, 80, 200), seed=index)
    write_image(folder / "nested" / "deep.png", (10, 200, 10))
    (folder / "broken.jpg").write_bytes(b"")
    return folder


def test_predict_writes_csv_and_reports_unreadable_files(
    run_dir: Path, new_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "labels.csv"
    assert (
        main(
            [
                "predict",
                str(run_dir),
                str(new_images),
                "--output",
                str(out),
                "--top-k",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "Wrote 6 predictions" in captured.out
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6
    classes = json.loads((run_dir / "classes.json").read_text())
    assert all(row["label"] in classes and 0 <= float(row["confidence"]) <= 1 for row in rows)


def test_predict_jsonl_is_sagemaker_batch_form(
    run_dir: Path, new_images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "labels.jsonl"
    assert (
        main(
            [
                "predict",
                str(run_dir),
                str(new_images / "img0.jpg"),
                "--output",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    (line,) = out.read_text().splitlines()
    record = json.loads(line)
    assert set(record) >= {"source", "prediction", "label", "confidence"}
    assert abs(sum(record["prediction"]) - 1) < 1e-4


def test_predict_sorts_into_class_folders(run_dir: Path, new_images: Path, tmp_path: Path) -> None:
    sorted_dir = tmp_path / "sorted"
    assert (
        main(
            [
                "predict",
                str(run_dir),
                str(new_images),
                "--sort-into",
                str(sorted_dir),
                "--min-confidence",
                "1.01",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert len(list((sorted_dir / "_uncertain").iterdir())) == 6
    assert (new_images / "img0.jpg").is_file()  # copied, not moved
    assert (sorted_dir / "sorted.csv").is_file()


def test_predict_without_output_prints_a_table(
    run_dir: Path, new_images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(run_dir), str(new_images / "img1.jpg"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["path", "label", "confidence"]
    assert "img1.jpg" in out


def test_predict_refuses_a_missing_model_in_one_line(
    tmp_path: Path, new_images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(tmp_path / "nothing"), str(new_images)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imgcls: error:") and "Traceback" not in err


@pytest.mark.parametrize(("fmt", "name"), [("sagemaker", "model.tar.gz"), ("onnx", "model.onnx")])
def test_export_writes_the_format(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, name: str
) -> None:
    out = tmp_path / name
    assert main(["export", str(run_dir), "--format", fmt, "--output", str(out)]) == 0
    assert out.is_file() and f"Wrote {out}" in capsys.readouterr().out
    if fmt == "sagemaker":
        with tarfile.open(out) as archive:
            names = sorted(archive.getnames())
        assert "image-classification-symbol.json" in names and "model-shapes.json" in names


def test_evaluate_prints_the_table_and_writes_the_report(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    classes = json.loads((run_dir / "classes.json").read_text())
    labelled = tmp_path / "labelled"
    for index, name in enumerate(reversed(classes)):  # another class order than the model's
        for number in range(3):
            write_image(labelled / name / f"{number}.jpg", (60 * index, 90, 150), seed=number)
    report_path = tmp_path / "report.json"
    assert (
        main(
            [
                "evaluate",
                str(run_dir),
                str(labelled),
                "--output",
                str(report_path),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "accuracy" in out and "precision" in out
    report = json.loads(report_path.read_text())
    assert len(report["confusion_matrix"]) == len(classes)
    assert sum(map(sum, report["confusion_matrix"])) == 3 * len(classes)
    assert [row["class"] for row in report["per_class"]] == classes


DAMAGED_RUN_JSON = {
    "a list": "[]",
    "null": "null",
    "a numeric created": '{"status": "finished", "epochs": 6, "train": "x", "created": 17}',
    "a text accuracy": '{"status": "finished", "epochs": 6, "train": "x", '
    '"best_val_accuracy": "0.9"}',
}


@pytest.mark.parametrize("case", DAMAGED_RUN_JSON)
def test_a_damaged_run_is_refused_in_one_line_by_resume_and_predict(
    case: str, run_dir: Path, new_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    (damaged / "run.json").write_text(DAMAGED_RUN_JSON[case], encoding="utf-8")
    for command in (
        ["train", "--resume", str(damaged)],
        ["predict", str(damaged), str(new_images), "--device", "cpu"],
    ):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.startswith("imgcls: error:") and "is damaged" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_checkpoint_without_shapes_takes_image_shape_or_says_what_it_assumed(
    tmp_path: Path, new_images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = write_plain_checkpoint(tmp_path / "plain", shapes=False)
    image = str(new_images / "img1.jpg")
    assert main(["predict", str(prefix), image, "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "note:" in captured.err and "assumed input shape 3,224,224" in captured.err
    assert "img1.jpg" in captured.out

    command = ["predict", str(prefix), image, "--image-shape", "3,24,24", "--device", "cpu"]
    assert main(command) == 0
    assert "note:" not in capsys.readouterr().err

    output = tmp_path / "exported"
    command = ["export", str(prefix), "--format", "mxnet", "--output", str(output)]
    assert main([*command, "--image-shape", "3,24,24"]) == 0
    shapes = json.loads((tmp_path / "model-shapes.json").read_text())
    assert shapes[0]["shape"][1:] == [3, 24, 24]

    with pytest.raises(SystemExit):  # argparse's one-line usage error
        main(["evaluate", str(prefix), str(new_images), "--image-shape", "224,224"])
    assert "not C,H,W" in capsys.readouterr().err


def test_predict_keeps_images_whose_names_are_not_utf8(
    run_dir: Path, new_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = write_image(undecodable_path(new_images), (30, 80, 200), seed=11)
    model = [str(run_dir), str(new_images), "--device", "cpu"]

    assert main(["predict", *model, "--output", str(tmp_path / "out.csv")]) == 0
    paths = [Path(row["path"]) for row in read_record(tmp_path / "out.csv")]
    assert len(paths) == 7 and odd in paths

    assert main(["predict", *model, "--output", str(tmp_path / "out.jsonl")]) == 0
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert odd in [Path(json.loads(line)["source"]) for line in lines]

    assert main(["predict", *model]) == 0
    assert "caf\\xe9.jpg" in capsys.readouterr().out  # the table shows the byte

    originals = {path: path.read_bytes() for path in paths}
    assert main(["predict", *model, "--sort-into", str(tmp_path / "sorted"), "--move"]) == 0
    record = tmp_path / "sorted" / "sorted.csv"
    rows = check_nothing_lost(originals, tmp_path / "sorted", record, "source", "destination")
    assert {Path(row["source"]) for row in rows} == set(paths)
    assert not any(path.exists() for path in paths)


@pytest.mark.parametrize(
    ("function", "call", "move"),
    [
        ("link", 4, True),  # the second image: recorded, not yet under its final name
        ("unlink", 6, True),  # the second image: in place, the original not yet removed
        ("sendfile", 3, False),  # in the middle of copying the second image
    ],
)
def test_sorting_killed_midway_loses_nothing(
    run_dir: Path, new_images: Path, tmp_path: Path, function: str, call: int, move: bool
) -> None:
    write_image(undecodable_path(new_images), (30, 80, 200), seed=11)
    originals = {
        path: path.read_bytes()
        for path in new_images.rglob("*")
        if path.is_file() and path.name != "broken.jpg"
    }
    target = tmp_path / "sorted"
    command = ["predict", str(run_dir), str(new_images), "--sort-into", str(target)]
    command += ["--device", "cpu"] + (["--move"] if move else [])

    assert run_cli_killed_at(function, call, command) == -signal.SIGKILL
    record = target / "sorted.csv"
    rows = check_nothing_lost(originals, target, record, "source", "destination")
    assert len(rows) == (2 if function in ("link", "unlink") else 1)

    assert main(command) == 0  # run again: the record grows, nothing is lost
    rows = check_nothing_lost(originals, target, record, "source", "destination")
    done = {Path(row["source"]) for row in rows if Path(row["destination"]).is_file()}
    assert done == set(originals)
