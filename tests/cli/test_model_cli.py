"""``imgcls predict`` and ``imgcls export`` on a tiny trained run, as a user runs them."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from tests.conftest import write_image
from tests.core.bad_images import BIG_REASON, DECLARED_REASON, TRUNCATED_REASON, write_bad_images
from tests.core.inference_fixtures import (
    labelled_with_a_class_never_right,
    shared_run,
    write_plain_checkpoint,
)
from tests.file_name_fixtures import (
    check_nothing_lost,
    read_record,
    run_cli_killed_at,
    undecodable_path,
)

REPOSITORY = Path(__file__).resolve().parents[2]


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


def test_export_into_the_model_s_own_folder_is_refused_in_one_line(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "run"
    shutil.copytree(run_dir, own)
    before = {path.name: path.read_bytes() for path in own.iterdir() if path.is_file()}

    for overwrite in ([], ["--overwrite"]):
        assert (
            main(["export", str(own), "--format", "mxnet", "--output", str(own), *overwrite]) == 1
        )
        err = capsys.readouterr().err
        assert err.startswith("imgcls: error: cannot write image-classification-symbol.json")
        assert "files of the model being exported" in err and len(err.strip().splitlines()) == 1
    assert {path.name: path.read_bytes() for path in own.iterdir() if path.is_file()} == before


def test_export_over_an_earlier_export_needs_overwrite(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.tar.gz"
    command = ["export", str(run_dir), "--format", "sagemaker", "--output", str(out)]
    assert main(command) == 0
    out.write_bytes(b"an earlier export")
    capsys.readouterr()

    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"imgcls: error: {tmp_path} already holds model.tar.gz: add --overwrite to replace "
        "them, or choose another --output"
    )
    assert out.read_bytes() == b"an earlier export"
    assert main([*command, "--overwrite"]) == 0
    assert tarfile.is_tarfile(out)


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


def test_evaluate_names_a_class_the_model_never_gets_right(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labelled, never_right = labelled_with_a_class_never_right(run_dir, tmp_path / "labelled")
    assert main(["evaluate", str(run_dir), str(labelled), "--device", "cpu"]) == 0
    failing = [line for line in capsys.readouterr().out.splitlines() if "failing" in line]
    assert len(failing) == 1 and f"{never_right} (recall 0.000, 6 images)" in failing[0]


def test_model_commands_say_a_text_file_is_not_a_model_and_a_bad_archive_is_invalid(
    tmp_path: Path, new_images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    assert main(["predict", str(text), str(new_images)]) == 1
    assert "is not a model: a model is" in capsys.readouterr().err
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"truncated download")
    assert main(["evaluate", str(archive), str(new_images)]) == 1
    err = capsys.readouterr().err
    assert "is not a valid archive" in err and "symbol.json" not in err


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
    ("function", "call", "move", "recorded"),
    [
        ("link", 2, True, 1),  # the second image: its name claimed, not yet filled
        ("unlink", 4, True, 2),  # the second image: in place, the original not yet removed
        ("sendfile", 3, False, 1),  # in the middle of copying the second image
    ],
)
def test_sorting_killed_midway_loses_nothing(
    run_dir: Path,
    new_images: Path,
    tmp_path: Path,
    function: str,
    call: int,
    move: bool,
    recorded: int,
) -> None:
    """A copy gets its final name in one step after its line is written (no ``os`` call
    between them to stop at); that state is reproduced in tests/core/test_labelling.py."""
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
    assert len(rows) == recorded

    assert main(command) == 0  # run again: the record grows, nothing is lost
    rows = check_nothing_lost(originals, target, record, "source", "destination")
    done = {Path(row["source"]) for row in rows if Path(row["destination"]).is_file()}
    assert done == set(originals)


@pytest.fixture(scope="module")
def run_224(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared run as one of 224 px (its ResNet ends in global pooling, so it takes any
    size): shorter side resized to 224, the central 224 x 224 cropped."""
    run = tmp_path_factory.mktemp("run224") / "run"
    shutil.copytree(run_dir, run)
    preprocessing = json.loads((run / "preprocessing.json").read_text())
    preprocessing.update(resize_shorter_side=224, height=224, width=224)
    (run / "preprocessing.json").write_text(json.dumps(preprocessing))
    (run / "model-shapes.json").write_text(
        json.dumps([{"name": "data", "shape": [1, 3, 224, 224]}])
    )
    return run


@pytest.fixture(scope="module")
def troublemakers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bad_images(tmp_path_factory.mktemp("bad"))


def test_predict_labels_the_good_images_and_reports_the_troublemakers(
    run_224: Path,
    troublemakers: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The 1 x 999,999 strip once asked OpenCV for 150 GB (a traceback and no CSV); now it
    is labelled like the good images and the images over the budget are reported."""
    images = tmp_path / "images"
    for index in range(3):
        write_image(images / f"good{index}.jpg", (60 * index, 90, 150), seed=index)
    for path in troublemakers.values():
        shutil.copy(path, images / path.name)
    out, sorted_dir = tmp_path / "labels.csv", tmp_path / "sorted"
    arguments = ["predict", str(run_224), str(images), "--output", str(out), "--device", "cpu"]
    assert main([*arguments, "--batch-size", "2", "--sort-into", str(sorted_dir)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"skipped {images / 'big.png'}: {BIG_REASON}" in captured.err
    assert f"skipped {images / 'declared.jpg'}: {DECLARED_REASON}" in captured.err
    assert f"skipped {images / 'truncated.jpg'}: {TRUNCATED_REASON}" in captured.err
    labelled = sorted(Path(row["path"]).name for row in csv.DictReader(out.open()))
    assert labelled == ["good0.jpg", "good1.jpg", "good2.jpg", "strip.png"]
    assert sorted(path.name for path in sorted_dir.rglob("*.*") if path.parent != sorted_dir) == (
        labelled
    )


def test_evaluate_leaves_out_the_troublemakers_and_scores_the_rest(
    run_224: Path,
    troublemakers: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    classes = json.loads((run_224 / "classes.json").read_text())
    labelled = tmp_path / "labelled"
    for index, name in enumerate(classes):
        write_image(labelled / name / "good.jpg", (60 * index, 90, 150), seed=index)
    for path in troublemakers.values():
        shutil.copy(path, labelled / classes[0] / path.name)
    report_path = tmp_path / "report.json"
    arguments = ["evaluate", str(run_224), str(labelled), "--output", str(report_path)]
    assert main([*arguments, "--batch-size", "2", "--device", "cpu"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["count"] == len(classes) + 1  # the good images and the strip
    assert {Path(item["path"]).name: item["reason"] for item in report["skipped"]} == {
        "big.png": BIG_REASON,
        "declared.jpg": DECLARED_REASON,
        "truncated.jpg": TRUNCATED_REASON,
    }


def test_predicting_a_strip_takes_little_more_memory_than_a_small_image(
    run_dir: Path, troublemakers: dict[str, Path], tmp_path: Path
) -> None:
    """A 4 KB PNG of 1 x 999,999 pixels took 3.5 GB to predict with a 32 px model (its
    shorter side enlarged 32 times, then cropped); now only the window the crop sees is
    resized. One fresh process predicts a small image, then the strip; its peak resident
    memory is read after each: Linux's VmHWM, since ``ru_maxrss`` of a child starts at its
    parent's peak (here, the test run's)."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("reads the peak resident memory from /proc")
    script = (
        "import sys\n"
        "from imgcls_desktop.cli import main\n"
        "for image in sys.argv[2:]:\n"
        "    arguments = [sys.argv[1], image, '--output', image + '.csv', '--device', 'cpu']\n"
        "    assert main(['predict', *arguments]) == 0\n"
        "    with open('/proc/self/status') as status:\n"
        "        print(*[line for line in status if line.startswith('VmHWM:')])\n"
    )
    small = write_image(tmp_path / "small.png", (10, 200, 10))
    strip = shutil.copy(troublemakers["strip.png"], tmp_path / "strip.png")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY), *sys.path])}
    finished = subprocess.run(
        [sys.executable, "-c", script, str(run_dir), str(small), str(strip)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPOSITORY,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    peaks = [line.split()[1] for line in finished.stdout.splitlines() if "VmHWM:" in line]
    baseline, after_strip = map(int, peaks)
    assert len((tmp_path / "strip.png.csv").read_text().splitlines()) == 2
    assert after_strip - baseline < 500_000, f"{baseline} kB, then {after_strip} kB"
