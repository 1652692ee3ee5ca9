"""``imgcls dataset pack`` over an earlier export of the same data set (a re-pack with
another split seed) killed at its commit points, or out of space, then packed again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .harness import (
    Outcome,
    clean_exit,
    enospc_points,
    run_imgcls,
    run_on_small_disk,
    sample_points,
    small_disk_available,
)
from .invariants import (
    Checks,
    check_clear_failure,
    check_recordio,
    report,
    snapshot,
    temporaries,
)

PACK = ("dataset", "pack")
NO_SPACE = "No space left on device"


def pack_command(source: Path, out: Path, seed: int) -> list[str]:
    """Pack ``source`` into ``out`` in three splits (over what is there)."""
    return [
        *PACK,
        *(str(source), str(out), "--val-ratio", "0.2", "--test-ratio", "0.2"),
        *("--seed", str(seed), "--workers", "1", "--overwrite"),
    ]


@pytest.fixture
def packs(class_folder: Path, tmp_path: Path) -> tuple[Path, Path, Outcome]:
    """An earlier export (seed 1), and a copy of it packed over with seed 0 without a fault
    (the outcome every re-run must give) with its trace."""
    earlier = tmp_path / "earlier"
    assert run_imgcls(pack_command(class_folder, earlier, seed=1), tmp_path / "t").returncode == 0
    reference = tmp_path / "reference"
    shutil.copytree(earlier, reference)
    counted = run_imgcls(pack_command(class_folder, reference, seed=0), tmp_path / "trace")
    assert counted.returncode == 0, counted.stderr
    return earlier, reference, counted


def pack_again(source: Path, out: Path, expected: dict[str, str], checks: Checks) -> None:
    """Pack again into ``out``: it succeeds and leaves what one uninterrupted pack does."""
    again = run_imgcls(pack_command(source, out, seed=0), out.parent / "t")
    checks.that(again.returncode == 0, f"packing again failed: {again.stderr[-500:]}")
    checks.that(clean_exit(again) is None, f"packing again: {clean_exit(again)}")
    check_recordio(out, checks)
    checks.same(snapshot(out), expected, "packing again differs from one pack")
    checks.that(not temporaries(out), f"left-over temporary files: {temporaries(out)}")


def test_pack_killed_anywhere_leaves_whole_records_and_packs_again(
    class_folder: Path, packs: tuple[Path, Path, Outcome], tmp_path: Path
) -> None:
    earlier, reference, counted = packs
    points = sample_points(
        counted.trace,
        spread=6,
        focus=[(r"os\.replace .*dataset-val\.rec$", 1, (False, True))],
    )
    violations: list[str] = []
    for point, after in points:
        out = tmp_path / f"out-{point.number}-{int(after)}"
        shutil.copytree(earlier, out)
        killed = run_imgcls(
            pack_command(class_folder, out, seed=0),
            tmp_path / "t",
            kill_at=point.number,
            after=after,
        )
        checks = Checks(f"pack killed at {killed.describe(point, after)}")
        checks.that(killed.killed, f"not killed: {killed.returncode} {killed.stderr[-300:]}")
        check_recordio(out, checks)
        pack_again(class_folder, out, snapshot(reference), checks)
        violations += checks.violations
    assert not violations, report(violations)


def test_pack_out_of_space_says_so_keeps_the_earlier_export_and_packs_again(
    class_folder: Path, packs: tuple[Path, Path, Outcome], tmp_path: Path
) -> None:
    earlier, reference, counted = packs
    violations: list[str] = []
    for point in enospc_points(counted.trace, 2):
        out = tmp_path / f"out-{point.number}"
        shutil.copytree(earlier, out)
        failed = run_imgcls(
            pack_command(class_folder, out, seed=0), tmp_path / "t", enospc_at=point.number
        )
        checks = Checks(f"pack out of space at {failed.describe(point, False)}")
        check_clear_failure(failed, checks, NO_SPACE)
        check_recordio(out, checks)
        if failed.returncode == 0:  # the error came after the commit (syncing the folder)
            checks.same(snapshot(out), snapshot(reference), "a pack that went on differs")
        else:
            checks.same(
                snapshot(out), snapshot(earlier), "a failed pack changed the earlier export"
            )
        checks.that(not temporaries(out), f"left-over temporary files: {temporaries(out)}")
        pack_again(class_folder, out, snapshot(reference), checks)
        violations += checks.violations
    assert not violations, report(violations)


def test_pack_onto_a_full_disk_says_so_and_leaves_no_file(
    class_folder: Path, tmp_path: Path
) -> None:
    if not small_disk_available(tmp_path):
        pytest.skip("this system does not let a process mount a small tmpfs (unshare, mount)")
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    full = run_on_small_disk(pack_command(class_folder, disk / "out", seed=0), "16k", disk, kept)
    checks = Checks("pack onto a 16 KiB file system")
    check_clear_failure(full, checks, NO_SPACE)
    checks.that(not list(kept.rglob("*")), f"left on the full disk: {list(kept.rglob('*'))}")
    assert not checks.violations, report(checks.violations)
