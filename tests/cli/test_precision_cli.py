"""``imgcls predict / evaluate --precision``: what was chosen and measured is said, recorded
with the labels, and a precision that cannot be checked or run is refused in one line."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from imgcls_desktop.core.devices import parse_devices
from imgcls_desktop.core.precision import unavailable_reason
from tests.conftest import write_image
from tests.core.inference_fixtures import shared_run, write_plain_checkpoint

CLASSES = ("class_0", "class_1", "class_2")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared run: the precision cache is written into it."""
    copy = tmp_path_factory.mktemp("precision_cli") / "run"
    return Path(shutil.copytree(shared_run(tmp_path_factory)[0], copy))


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """Four images for each class of the plain checkpoint, in a folder per class."""
    folder = tmp_path / "labelled"
    for index, name in enumerate(CLASSES):
        for copy in range(4):
            write_image(folder / name / f"{copy}.png", (80 * index, 60, 200), seed=copy)
    return folder


def test_predict_in_int8_says_what_it_measured_and_records_it(
    run_dir: Path, labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "labels.csv"
    args = ["predict", str(run_dir), str(labelled), "--precision", "int8", "--output", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "precision: int8: " in err and "validation images of the run" in err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 12 and {row["numeric_precision"] for row in rows} == {"int8"}


def test_evaluate_checks_a_plain_model_on_the_data_it_evaluates(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = write_plain_checkpoint(tmp_path / "plain")
    report = tmp_path / "report.json"
    args = ["evaluate", str(prefix), str(labelled), "--precision", "int8", "--output", str(report)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "precision: int8: " in captured.err and "on 12 images of labelled" in captured.err
    assert "network arithmetic: int8" in captured.out
    assert '"numeric_precision": "int8"' in report.read_text()


def test_int8_without_labelled_images_is_refused_in_one_line(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = write_plain_checkpoint(tmp_path / "plain")
    assert main(["predict", str(prefix), str(labelled), "--precision", "int8"]) == 1
    err = capsys.readouterr().err
    assert "--check-data DATA" in err and len(err.strip().splitlines()) == 1
    # Given labelled images, it runs.
    check = ["--check-data", str(labelled)]
    assert main(["predict", str(prefix), str(labelled), "--precision", "int8", *check]) == 0
    assert "precision: int8: " in capsys.readouterr().err


def test_auto_without_labelled_images_keeps_fp32_and_says_why(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = write_plain_checkpoint(tmp_path / "plain")
    assert main(["predict", str(prefix), str(labelled), "--precision", "auto"]) == 0
    assert "precision: auto chose fp32: there are no labelled images" in capsys.readouterr().err


def test_bf16_on_a_cpu_without_it_is_refused_with_the_reason(
    run_dir: Path, labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if unavailable_reason("bf16", parse_devices("cpu")[0]) is None:
        pytest.skip("this CPU runs bf16: the refusal cannot be seen here")
    assert main(["predict", str(run_dir), str(labelled), "--precision", "bf16"]) == 1
    assert "bf16 cannot be used here: this CPU has neither AVX512-BF16 nor AMX" in (
        capsys.readouterr().err
    )
