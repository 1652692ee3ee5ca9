"""``imgcls dataset sample | scan | pack | add`` as a user runs them."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, write_image

from imgcls_desktop.cli import main
from imgcls_desktop.core.corrections import CORRECTIONS_CSV
from imgcls_desktop.core.runtime import mxnet
from tests.core.bad_images import (
    BIG_REASON,
    DECLARED_REASON,
    TRUNCATED_REASON,
    UNDECODABLE_REASON,
    undecodable_png,
    write_bad_images,
)
from tests.file_name_fixtures import (
    check_nothing_lost,
    run_cli,
    run_cli_killed_at,
    undecodable_path,
)


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


def _split_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("dataset-*"))}


def test_packing_a_rec_into_its_own_folder_keeps_every_split(
    class_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["dataset", "pack", str(class_folder), str(out), "--test-ratio", "0.2"]) == 0
    before = _split_files(out)
    assert {"dataset-test.rec", "dataset-test.idx", "dataset-test.lst"} <= set(before)
    capsys.readouterr()

    assert main(["dataset", "pack", str(out / "dataset-test.rec"), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imgcls: error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "--overwrite" in err
    assert _split_files(out) == before

    # allowed to overwrite the earlier export, it still never deletes the file it reads
    assert main(["dataset", "pack", str(out / "dataset-test.rec"), str(out), "--overwrite"]) == 0
    after = _split_files(out)
    for suffix in (".rec", ".idx", ".lst"):
        assert after[f"dataset-test{suffix}"] == before[f"dataset-test{suffix}"]
    assert after["dataset-train.rec"] != before["dataset-train.rec"]


def test_packing_over_the_file_being_read_is_refused_even_with_overwrite(
    class_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["dataset", "pack", str(class_folder), str(out), "--val-ratio", "0"]) == 0
    before = _split_files(out)
    capsys.readouterr()

    source = out / "dataset-train.rec"
    assert main(["dataset", "pack", str(source), str(out), "--val-ratio", "0", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "dataset-train.rec" in err and "part of the data set" in err and "Traceback" not in err
    assert _split_files(out) == before
    assert not list(out.glob(".*"))


@pytest.mark.parametrize("call", [2, 5])
def test_add_killed_midway_leaves_whole_recorded_files(tmp_path: Path, call: int) -> None:
    """Killed before it claims a name for its ``call``-th image (``os.open``). A copy gets its
    final name in one step after its line is written; the state between the two is
    reproduced in tests/core/test_corrections.py, and every other one by tests/faults."""
    images = [write_image(undecodable_path(tmp_path / "new"), CLASS_COLOURS["owl"], seed=99)]
    images += [
        write_image(tmp_path / "new" / f"img{index}.jpg", CLASS_COLOURS["owl"], seed=index)
        for index in range(5)
    ]
    originals = {image: image.read_bytes() for image in images}
    data = tmp_path / "data"
    command = ["dataset", "add", *map(str, images), "--label", "owl", "--into", str(data)]

    assert run_cli_killed_at("open", call, command) == -signal.SIGKILL
    record = data / CORRECTIONS_CSV
    rows = check_nothing_lost(originals, data, record, "source", "copied_to")
    assert len(rows) == call - 1  # a line for each image added

    assert main(command) == 0  # the same command again: the record grows
    rows = check_nothing_lost(originals, data, record, "source", "copied_to")
    finished = {Path(row["source"]) for row in rows if Path(row["copied_to"]).is_file()}
    assert finished == set(images)


def test_pack_keeps_an_image_whose_name_is_not_utf8(
    class_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(undecodable_path(class_folder / "dog"), CLASS_COLOURS["dog"], seed=5)
    out = tmp_path / "packed"
    assert main(["dataset", "pack", str(class_folder), str(out), "--val-ratio", "0"]) == 0
    assert "Wrote 19 images" in capsys.readouterr().out
    assert b"\tdog/caf\xe9.jpg\n" in (out / "dataset-train.lst").read_bytes()
    assert (
        main(["dataset", "scan", str(out / "dataset-train.lst"), "--root", str(class_folder)]) == 0
    )


def test_scan_prints_a_bad_file_whose_name_is_not_utf8(class_folder: Path) -> None:
    undecodable_path(class_folder / "dog").write_bytes(b"not an image")
    # PYTHONIOENCODING: a stdout that fails on such bytes, as under a UTF-8 desktop locale
    completed = run_cli(["dataset", "scan", str(class_folder)], PYTHONIOENCODING="utf-8:strict")
    assert completed.returncode == 0, completed.stderr
    assert b"dog/caf\\xe9.jpg: not an image" in completed.stdout
    assert b"dog/caf\\xe9.jpg: not an image" in completed.stderr


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


def test_pack_decodes_each_image_once_and_skips_one_that_fails(
    class_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scan before packing checks headers only; the export's decoding finds the rest."""
    (class_folder / "dog" / "bad-data.png").write_bytes(undecodable_png())

    assert main(["dataset", "pack", str(class_folder), str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert f"bad-data.png: {UNDECODABLE_REASON}" in captured.err
    assert "Wrote 18 images" in captured.out
