"""``imgcls dataset sample | scan | pack`` as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from imgcls_desktop.core.runtime import mxnet


def test_sample_then_scan_then_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "shapes"
    assert (
        main(
            [
                "dataset",
                "sample",
                str(images),
                "--classes",
                "3",
                "--per-class",
                "12",
                "--size",
                "32",
            ]
        )
        == 0
    )
    classes = sorted(p.name for p in images.iterdir())
    assert len(classes) == 3
    capsys.readouterr()

    assert main(["dataset", "scan", str(images), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["class_counts"] == [12, 12, 12]
    assert len(report["usable_indices"]) == 36

    out = tmp_path / "rec"
    assert (
        main(
            [
                "dataset",
                "pack",
                str(images),
                str(out),
                "--name",
                "shapes",
                "--val-ratio",
                "0.25",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "Wrote 36 images (27 train, 9 val)" in printed
    assert (out / "labels.txt").read_text().split() == classes
    records = mxnet().io.ImageRecordIter(
        path_imgrec=str(out / "shapes-val.rec"),
        path_imgidx=str(out / "shapes-val.idx"),
        data_shape=(3, 32, 32),
        batch_size=9,
    )
    labels = sorted(records.next().label[0].asnumpy().astype(int).tolist())
    assert labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_bad_files_are_reported_on_stderr_and_skipped(
    class_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (class_folder / "cat" / "empty.jpg").write_bytes(b"")
    (class_folder / "dog" / "notes.png").write_text("not an image")
    assert main(["dataset", "pack", str(class_folder), str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "empty.jpg" in captured.err and "notes.png" in captured.err
    assert "2 of 20 images cannot be used" in captured.err
    assert "Wrote 18 images" in captured.out


def test_nothing_usable_exits_non_zero_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "broken" / "cat"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    assert main(["dataset", "pack", str(folder.parent), str(tmp_path / "out")]) == 1
    error_lines = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("imgcls: error:")
    ]
    assert error_lines == [
        f"imgcls: error: no usable image in {folder.parent}; nothing was written"
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["dataset", "scan", "missing-folder"], "missing-folder does not exist"),
        (["dataset", "sample", "{tmp}/s", "--classes", "99"], "classes"),
    ],
)
def test_user_errors_are_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], expected: str
) -> None:
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    assert main(arguments) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("imgcls: error:") and expected in err
    assert len(err.strip().splitlines()) == 1


def test_console_script_is_installed() -> None:
    imgcls = shutil.which("imgcls", path=str(Path(sys.executable).parent))
    assert imgcls, "the imgcls console script is installed with the package"
    result = subprocess.run(
        [imgcls, "dataset", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "pack" in result.stdout


def test_an_unwritable_output_is_one_line(
    class_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["dataset", "pack", str(class_folder), str(blocker / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imgcls: error:") and "Traceback" not in err
