"""``imgcls train`` killed at its commit points (the checkpoint, the resume state, ``run.json``
and the clean-up of the previous epoch's state), also while resuming, out of space, or
printing into a closed pipe; then resumed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, write_image

from .harness import (
    TALLY,
    TRACEBACK,
    Outcome,
    clean_exit,
    enospc_points,
    environment,
    launcher_command,
    run_imgcls,
    run_on_small_disk,
    sample_points,
    small_disk_available,
)
from .invariants import (
    Checks,
    check_clear_failure,
    check_run_folder,
    report,
    run_outcome,
    temporaries,
)

EPOCHS = 2
NO_SPACE = "No space left on device"
TINY = (
    *("--set", "num_layers=20", "--set", "image_shape=3,28,28", "--set", "mini_batch_size=8"),
    *("--set", "optimizer=adam", "--set", "learning_rate=0.001", "--device", "cpu"),
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 8 images of 32 x 32: 18 to train on, 6 to validate (3 batches an epoch)."""
    root = tmp_path_factory.mktemp("train_faults") / "images"
    for class_index, (name, colour) in enumerate(sorted(CLASS_COLOURS.items())):
        for i in range(8):
            write_image(root / name / f"{name}_{i}.jpg", colour, seed=class_index * 100 + i)
    return root


def new_run(images: Path, run: Path, epochs: int = EPOCHS) -> list[str]:
    """The command line of a new run."""
    return [
        "train",
        "--train",
        str(images),
        "--output",
        str(run),
        "--set",
        f"epochs={epochs}",
        *TINY,
    ]


def finish(images: Path, run: Path, trace: Path, checks: Checks) -> None:
    """Run the job again as a user would: resume the run ``run.json`` records, or start it
    anew when the kill came before there was one; it must end cleanly."""
    info = None
    if (run / "run.json").is_file():
        try:
            info = json.loads((run / "run.json").read_text(encoding="utf-8"))
        except ValueError:
            info = None
    if isinstance(info, dict) and info.get("status") == "finished":
        return
    args = ["train", "--resume", str(run)] if info is not None else new_run(images, run)
    again = run_imgcls(args, trace)
    checks.that(
        again.returncode == 0, f"`imgcls {' '.join(args[:2])}` failed: {again.stderr[-400:]}"
    )
    checks.that(clean_exit(again) is None, f"running again: {clean_exit(again)}")


def check_finished_like(run: Path, expected: dict[str, object], checks: Checks) -> None:
    """The run ended as an uninterrupted one: the same files, status and epochs."""
    if not (run / "run.json").is_file():
        checks.that(False, "there is no run.json after running again")
        return
    checks.same(run_outcome(run), expected, "running again differs from one run")
    checks.that(not temporaries(run), f"left-over temporary files: {temporaries(run)}")


def check_killed_then_finished(
    what: str,
    killed: Outcome,
    images: Path,
    run: Path,
    probe_image: Path,
    expected: dict[str, object],
    trace: Path,
) -> list[str]:
    """The invariants after the kill, then after running the job again as a user would, and
    that it ended as an uninterrupted run; the violations found."""
    checks = Checks(what)
    checks.that(killed.killed, f"not killed: {killed.returncode} {killed.stderr[-300:]}")
    check_run_folder(run, probe_image, checks)
    finish(images, run, trace, checks)
    check_run_folder(run, probe_image, checks)
    check_finished_like(run, expected, checks)
    return checks.violations


@pytest.fixture(scope="module")
def reference(images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Outcome]:
    """An uninterrupted run and its trace (the fault points of a new run)."""
    folder = tmp_path_factory.mktemp("train_reference")
    outcome = run_imgcls(new_run(images, folder / "run"), folder / "trace")
    assert outcome.returncode == 0, outcome.stderr
    return folder / "run", outcome


def test_train_killed_at_any_commit_point_keeps_a_consistent_resumable_run(
    images: Path, reference: tuple[Path, Outcome], probe_image: Path, tmp_path: Path
) -> None:
    reference_run, counted = reference
    expected = run_outcome(reference_run)
    points = sample_points(
        counted.trace,
        spread=3,
        focus=[
            (r"os\.replace .*/hyperparameters\.json$", 1, (True,)),  # before any run.json
            (r"os\.replace .*image-classification-0001\.params$", 1, (True,)),
            (r"os\.replace .*/run\.json$", 2, (False, True)),  # epoch 1's commit
            (r"os\.unlink .*resume/epoch-0001", 1, (False,)),  # epoch 1's state pruned
        ],
    )
    violations: list[str] = []
    for point, after in points:
        run = tmp_path / f"run-{point.number}-{int(after)}"
        killed = run_imgcls(
            new_run(images, run), tmp_path / "trace", kill_at=point.number, after=after
        )
        violations += check_killed_then_finished(
            f"train killed at {killed.describe(point, after)}",
            killed,
            images,
            run,
            probe_image,
            expected,
            tmp_path / "trace",
        )
    assert not violations, report(violations)


def test_resume_killed_at_any_commit_point_resumes_again(
    images: Path, reference: tuple[Path, Outcome], probe_image: Path, tmp_path: Path
) -> None:
    reference_run, counted = reference
    expected = run_outcome(reference_run)
    stopped = tmp_path / "stopped"  # a run killed once epoch 1 was committed
    epoch_one = sample_points(counted.trace, 0, [(r"os\.replace .*/run\.json$", 2, (True,))])
    run_imgcls(new_run(images, stopped), tmp_path / "t", kill_at=epoch_one[0][0].number, after=True)
    shutil.copytree(stopped, tmp_path / "counting")
    resumed = run_imgcls(["train", "--resume", str(tmp_path / "counting")], tmp_path / "trace")
    assert resumed.returncode == 0, resumed.stderr
    points = sample_points(
        resumed.trace,
        spread=2,
        focus=[
            (r"os\.replace .*resume/epoch-0002\.params$", 1, (True,)),
            (r"os\.replace .*/run\.json$", 2, (False,)),  # epoch 2's commit
        ],
    )
    violations: list[str] = []
    for point, after in points:
        run = tmp_path / f"run-{point.number}-{int(after)}"
        shutil.copytree(stopped, run)
        killed = run_imgcls(
            ["train", "--resume", str(run)], tmp_path / "t", kill_at=point.number, after=after
        )
        violations += check_killed_then_finished(
            f"resume killed at {killed.describe(point, after)}",
            killed,
            images,
            run,
            probe_image,
            expected,
            tmp_path / "t",
        )
    assert not violations, report(violations)


def test_train_out_of_space_says_so_and_resumes(
    images: Path, reference: tuple[Path, Outcome], probe_image: Path, tmp_path: Path
) -> None:
    reference_run, counted = reference
    expected = run_outcome(reference_run)
    violations: list[str] = []
    for point in enospc_points(counted.trace, 2):
        run = tmp_path / f"run-{point.number}"
        failed = run_imgcls(new_run(images, run), tmp_path / "t", enospc_at=point.number)
        checks = Checks(f"train out of space at {failed.describe(point, False)}")
        check_clear_failure(failed, checks, NO_SPACE)
        check_run_folder(run, probe_image, checks)
        finish(images, run, tmp_path / "t", checks)
        check_run_folder(run, probe_image, checks)
        check_finished_like(run, expected, checks)
        violations += checks.violations
    assert not violations, report(violations)


def test_train_onto_a_full_disk_says_so_and_resumes_elsewhere(
    images: Path, reference: tuple[Path, Outcome], probe_image: Path, tmp_path: Path
) -> None:
    if not small_disk_available(tmp_path):
        pytest.skip("this system does not let a process mount a small tmpfs (unshare, mount)")
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    # 3 MiB: the data and epoch 1's checkpoint fit, not its resume state as well.
    full = run_on_small_disk(new_run(images, disk / "run"), "3m", disk, kept)
    checks = Checks("train onto a 3 MiB file system")
    check_clear_failure(full, checks, NO_SPACE)
    check_run_folder(kept / "run", probe_image, checks)
    finish(images, kept / "run", tmp_path / "t", checks)  # the user moved it to a bigger disk
    check_run_folder(kept / "run", probe_image, checks)
    check_finished_like(kept / "run", run_outcome(reference[0]), checks)
    assert not checks.violations, report(checks.violations)


def first_improving_epoch(run: Path) -> int:
    """The first epoch after the first whose validation accuracy beats every earlier one."""
    accuracies = [
        json.loads(line)["val_accuracy"]
        for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    for epoch in range(2, len(accuracies) + 1):
        if accuracies[epoch - 1] > max(accuracies[: epoch - 1]):
            return epoch
    raise AssertionError(f"no epoch improves on the first: {accuracies}")


def test_train_into_a_closed_pipe_keeps_the_best_model_and_says_so_cleanly(
    images: Path, probe_image: Path, tmp_path: Path
) -> None:
    """``imgcls train ... | head -n N`` where head exits just before an epoch that is a new
    best: that epoch's checkpoint is written, then printing its line fails."""
    TALLY.faults["broken pipe"] += 1
    counting = tmp_path / "counting"
    assert run_imgcls(new_run(images, counting, epochs=3), tmp_path / "t").returncode == 0
    improving = first_improving_epoch(counting)
    run = tmp_path / "run"
    process = subprocess.Popen(
        launcher_command(new_run(images, run, epochs=3), tmp_path / "trace"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    assert process.stdout is not None and process.stderr is not None
    for line in process.stdout:  # head: read up to the epoch before the improving one
        if line.startswith(f"Epoch[{improving - 1}]"):
            break
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(timeout=240)
    checks = Checks(f"train | head, closed before Epoch[{improving}] (a new best)")
    info = check_run_folder(run, probe_image, checks) or {}
    checks.that(
        info.get("last_completed_epoch", 0) < improving or info.get("best_epoch") == improving,
        f"run.json: {info.get('last_completed_epoch')=}, {info.get('best_epoch')=}",
    )
    for noise in (TRACEBACK, "Exception ignored"):
        checks.that(noise not in stderr, f"stderr has {noise!r}: {stderr[-1500:]}")
    finish(images, run, tmp_path / "t", checks)
    check_run_folder(run, probe_image, checks)
    assert not checks.violations, report(checks.violations)
