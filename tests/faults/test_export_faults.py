"""``imgcls export`` (SageMaker's model.tar.gz, a plain MXNet checkpoint) killed while it
writes or out of space, then exported again."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Outcome, clean_exit, enospc_points, run_imgcls, sample_points
from .invariants import (
    Checks,
    check_clear_failure,
    check_export,
    export_outcome,
    report,
    temporaries,
)

TARGETS = {"sagemaker": "model.tar.gz", "mxnet": "model"}
FOCUS = {  # besides an even spread: the input shapes not written yet; the archive half-written
    "mxnet": [(r"open .*model-shapes\.json", 1, (False,))],
    "sagemaker": [(r"open .*model\.tar\.gz\..*\.tmp", 1, (True,))],
}


def export_command(model: Path, fmt: str, out: Path, *, again: bool = False) -> list[str]:
    """``imgcls export MODEL --format FMT --output OUT/<target>``."""
    overwrite = ["--overwrite"] if again else []
    return ["export", str(model), "--format", fmt, "--output", str(out / TARGETS[fmt]), *overwrite]


def uninterrupted_export(model: Path, fmt: str, tmp_path: Path) -> tuple[Outcome, dict[str, str]]:
    """An export without a fault: its trace (the fault points) and its outcome."""
    reference = tmp_path / "reference"
    reference.mkdir()
    counted = run_imgcls(export_command(model, fmt, reference), tmp_path / "trace")
    assert counted.returncode == 0, counted.stderr
    return counted, export_outcome(reference)


@pytest.mark.parametrize("fmt", sorted(TARGETS))
def test_export_killed_mid_way_leaves_whole_files_and_exports_again(
    fmt: str, trained_model: Path, probe_image: Path, tmp_path: Path
) -> None:
    counted, expected = uninterrupted_export(trained_model, fmt, tmp_path)
    violations: list[str] = []
    for point, after in sample_points(counted.trace, spread=4, focus=FOCUS[fmt]):
        out = tmp_path / f"at-{point.number}-{int(after)}"
        out.mkdir()
        command = export_command(trained_model, fmt, out)
        killed = run_imgcls(command, tmp_path / "t", kill_at=point.number, after=after)
        checks = Checks(f"export {fmt} killed at {killed.describe(point, after)}")
        checks.that(killed.killed, f"not killed: {killed.returncode} {killed.stderr[-300:]}")
        check_export(out, probe_image, checks)
        again = run_imgcls(export_command(trained_model, fmt, out, again=True), tmp_path / "t")
        checks.that(again.returncode == 0, f"exporting again failed: {again.stderr[-400:]}")
        checks.that(clean_exit(again) is None, f"exporting again: {clean_exit(again)}")
        check_export(out, probe_image, checks)
        checks.same(export_outcome(out), expected, "exporting again differs from one export")
        checks.that(not temporaries(out), f"left-over temporary files: {temporaries(out)}")
        violations += checks.violations
    assert not violations, report(violations)


@pytest.mark.parametrize("fmt", sorted(TARGETS))
def test_export_out_of_space_says_so_and_exports_again(
    fmt: str, trained_model: Path, probe_image: Path, tmp_path: Path
) -> None:
    counted, expected = uninterrupted_export(trained_model, fmt, tmp_path)
    violations: list[str] = []
    for point in enospc_points(counted.trace, 2):
        out = tmp_path / f"at-{point.number}"
        out.mkdir()
        command = export_command(trained_model, fmt, out)
        failed = run_imgcls(command, tmp_path / "t", enospc_at=point.number)
        checks = Checks(f"export {fmt} out of space at {failed.describe(point, False)}")
        check_clear_failure(failed, checks, "No space left on device")
        check_export(out, probe_image, checks)
        checks.that(not temporaries(out), f"left-over temporary files: {temporaries(out)}")
        again = run_imgcls(export_command(trained_model, fmt, out, again=True), tmp_path / "t")
        checks.that(again.returncode == 0, f"exporting again failed: {again.stderr[-400:]}")
        checks.same(export_outcome(out), expected, "exporting again differs from one export")
        violations += checks.violations
    assert not violations, report(violations)
