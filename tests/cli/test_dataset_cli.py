"""``imgcls dataset sample | scan | pack | add`` as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, write_image

from imgcls_desktop.cli import main
from imgcls_desktop.core.runtime import mxnet
from tests.core.bad_images import BIG_REASON, DECLARED_REASON, TRUNCATED_REASON, write_bad_images


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


def test_add_copies_images_into_the_class_folder_and_says_where(
    class_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = write_image(tmp_path / "new" / "cat_0.jpg", CLASS_COLOURS["dog"], seed=7)
    original = image.read_bytes()
    before = (class_folder / "dog" / "dog_0.jpg").read_bytes()
    second = write_image(tmp_path / "new" / "dog_0.jpg", CLASS_COLOURS["dog"], seed=8)

    code = main(
        ["dataset", "add", str(image), str(second), "--label", "dog", "--into", str(class_folder)]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert f"{image} -> {class_folder / 'dog' / 'cat_0.jpg'}" in out
    assert f"{second} -> {class_folder / 'dog' / 'dog_0 (1).jpg'}" in out  # never overwritten
    assert (class_folder / "dog" / "dog_0.jpg").read_bytes() == before
    assert image.read_bytes() == original  # copied, not moved
    assert (class_folder / "dog" / "cat_0.jpg").read_bytes() == original
    assert str(class_folder / "corrections.csv") in out


def test_add_reports_bad_images_in_one_line_each_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_image(tmp_path / "good.png", CLASS_COLOURS["cat"])
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "data"

    code = main(["dataset", "add", str(missing), str(good), "--label", "cat", "--into", str(out)])

    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.splitlines() == [
        f"imgcls: error: cannot add {missing}: No such file or directory"
    ]
    assert (out / "cat" / "good.png").is_file()


@pytest.mark.parametrize("label", ["../up", "", "."])
def test_add_refuses_an_unusable_class_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], label: str
) -> None:
    image = write_image(tmp_path / "a.jpg", CLASS_COLOURS["cat"])

    code = main(["dataset", "add", str(image), "--label", label, "--into", str(tmp_path / "data")])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("imgcls: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()


def test_scan_and_pack_report_images_that_would_take_gigabytes(
    class_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1.2 MB PNG of 400 megapixels, a JPEG declaring 3,600 and a truncated one are
    reported from their headers; a 1 x 999,999 strip is usable but cannot be resized."""
    bad = write_bad_images(tmp_path / "bad")
    for name, folder in (("big.png", "cat"), ("declared.jpg", "dog"), ("strip.png", "owl")):
        shutil.copy(bad[name], class_folder / folder / name)
    shutil.copy(bad["truncated.jpg"], class_folder / "owl" / "truncated.jpg")

    assert main(["dataset", "scan", str(class_folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    reasons = {Path(f["path"]).name: f["reason"] for f in report["bad_files"]}
    assert reasons == {
        "big.png": BIG_REASON,
        "declared.jpg": DECLARED_REASON,
        "truncated.jpg": TRUNCATED_REASON,
    }

    out = tmp_path / "out"
    assert main(["dataset", "pack", str(class_folder), str(out), "--resize", "32"]) == 0
    captured = capsys.readouterr()
    for name, reason in reasons.items():
        assert f"{name}: {reason}" in captured.err
    assert "strip.png: resized to a shorter side of 32 px it would be 32 x 31999968" in captured.err
    assert "Traceback" not in captured.err
    assert "Wrote 18 images" in captured.out
