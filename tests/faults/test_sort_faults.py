"""``imgcls predict --sort-into DIR`` (moving, then copying) killed while it sorts, out of
space, or printing into a closed pipe, then run again on what is left: no image lost,
every sorted image whole and recorded."""

from __future__ import annotations

import os
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
    sample_points,
)
from .invariants import (
    Checks,
    check_clear_failure,
    check_sorted,
    done_rows,
    report,
    sha,
    sorted_outcome,
    temporaries,
)

IMAGES = 10


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images to sort, of every colour; copied for each run, never written into."""
    folder = tmp_path_factory.mktemp("sort_faults") / "inbox"
    colours = sorted(CLASS_COLOURS.values())
    for i in range(IMAGES):
        write_image(folder / f"photo_{i:02d}.jpg", colours[i % len(colours)], seed=500 + i)
    return folder


def sort_command(model: Path, inputs: list[Path], out: Path, *, move: bool) -> list[str]:
    """``imgcls predict MODEL INPUTS --sort-into OUT [--move]``."""
    return [
        "predict",
        str(model),
        *map(str, inputs),
        "--sort-into",
        str(out),
        *(["--move"] if move else []),
        "--device",
        "cpu",
    ]


def reference_sort(model: Path, inbox: Path, folder: Path, *, move: bool) -> Outcome:
    """An uninterrupted sort of a copy of the inbox into ``folder/out``; its outcome."""
    shutil.copytree(inbox, folder / "inbox")
    outcome = run_imgcls(
        sort_command(model, [folder / "inbox"], folder / "out", move=move), folder / "trace"
    )
    assert outcome.returncode == 0, outcome.stderr
    return outcome


def unsorted(inbox: Path, out: Path, *, move: bool) -> list[Path]:
    """What a user sorts again: with ``--move``, the images still in the inbox; when
    copying, the ones no ``sorted*.csv`` records."""
    images = sorted(inbox.glob("*.jpg"))
    if move:
        return images
    rows = done_rows(sorted(out.glob("sorted*.csv")))
    done = {Path(row["source"]).resolve() for row in rows}
    return [image for image in images if image.resolve() not in done]


@pytest.mark.parametrize("move", [True, False], ids=["move", "copy"])
def test_sort_killed_mid_way_loses_nothing_and_sorts_the_rest_again(
    move: bool, trained_model: Path, inbox: Path, tmp_path: Path
) -> None:
    originals = {path.name: sha(path) for path in inbox.glob("*.jpg")}
    counted = reference_sort(trained_model, inbox, tmp_path / "reference", move=move)
    expected = sorted_outcome(tmp_path / "reference" / "out")
    assert expected["recorded"] == IMAGES
    points = sample_points(counted.trace, spread=4 if move else 3)
    violations: list[str] = []
    for point, after in points:
        folder = tmp_path / f"at-{point.number}-{int(after)}"
        shutil.copytree(inbox, folder / "inbox")
        out = folder / "out"
        command = sort_command(trained_model, [folder / "inbox"], out, move=move)
        killed = run_imgcls(command, folder / "t", kill_at=point.number, after=after)
        checks = Checks(
            f"sort ({'move' if move else 'copy'}) killed at {killed.describe(point, after)}"
        )
        checks.that(killed.killed, f"not killed: {killed.returncode} {killed.stderr[-300:]}")
        check_sorted(folder / "inbox", out, originals, checks, move=move)
        rest = unsorted(folder / "inbox", out, move=move)
        if rest:
            again = run_imgcls(sort_command(trained_model, rest, out, move=move), folder / "t")
            checks.that(again.returncode == 0, f"sorting again failed: {again.stderr[-400:]}")
            checks.that(clean_exit(again) is None, f"sorting again: {clean_exit(again)}")
        check_sorted(folder / "inbox", out, originals, checks, move=move)
        checks.same(sorted_outcome(out), expected, "sorting the rest again differs from one sort")
        checks.that(not temporaries(out), f"left-over temporary files: {temporaries(out)}")
        violations += checks.violations
    assert not violations, report(violations)


def test_sort_out_of_space_says_so_loses_nothing_and_sorts_the_rest_again(
    trained_model: Path, inbox: Path, tmp_path: Path
) -> None:
    originals = {path.name: sha(path) for path in inbox.glob("*.jpg")}
    counted = reference_sort(trained_model, inbox, tmp_path / "reference", move=True)
    expected = sorted_outcome(tmp_path / "reference" / "out")
    violations: list[str] = []
    for point in enospc_points(counted.trace, 2):
        folder = tmp_path / f"at-{point.number}"
        shutil.copytree(inbox, folder / "inbox")
        out = folder / "out"
        command = sort_command(trained_model, [folder / "inbox"], out, move=True)
        failed = run_imgcls(command, folder / "t", enospc_at=point.number)
        checks = Checks(f"sort (move) out of space at {failed.describe(point, False)}")
        check_clear_failure(failed, checks, "No space left on device")
        check_sorted(folder / "inbox", out, originals, checks, move=True)
        rest = unsorted(folder / "inbox", out, move=True)
        if rest:
            again = run_imgcls(sort_command(trained_model, rest, out, move=True), folder / "t")
            checks.that(again.returncode == 0, f"sorting again failed: {again.stderr[-400:]}")
        check_sorted(folder / "inbox", out, originals, checks, move=True)
        checks.same(sorted_outcome(out), expected, "sorting the rest again differs from one sort")
        violations += checks.violations
    assert not violations, report(violations)


def test_predict_into_a_closed_pipe_stops_cleanly_and_loses_nothing(
    trained_model: Path, tmp_path: Path
) -> None:
    """``imgcls predict MODEL DIR --sort-into OUT --move | head`` with head already gone:
    the table (more than a buffer's worth: long paths) cannot be printed."""
    TALLY.faults["broken pipe"] += 1
    inbox = tmp_path / ("long_folder_name_" * 8) / "inbox"
    colours = sorted(CLASS_COLOURS.values())
    for i in range(40):
        write_image(inbox / f"photo_{i:02d}.jpg", colours[i % len(colours)], seed=700 + i)
    originals = {path.name: sha(path) for path in inbox.glob("*.jpg")}
    out = tmp_path / "out"
    reader, writer = os.pipe()
    os.close(reader)  # the reader has gone before the first line
    try:
        done = subprocess.run(
            launcher_command(sort_command(trained_model, [inbox], out, move=True), tmp_path / "t"),
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
            timeout=240,
            check=False,
        )
    finally:
        os.close(writer)
    checks = Checks("predict --sort-into --move | (closed)")
    for noise in (TRACEBACK, "Exception ignored"):
        checks.that(noise not in done.stderr, f"stderr has {noise!r}: {done.stderr[-1500:]}")
    check_sorted(inbox, out, originals, checks, move=True)
    rest = unsorted(inbox, out, move=True)
    if rest:
        again = run_imgcls(sort_command(trained_model, rest, out, move=True), tmp_path / "t2")
        checks.that(again.returncode == 0, f"sorting again failed: {again.stderr[-400:]}")
    check_sorted(inbox, out, originals, checks, move=True)
    checks.that(
        sorted_outcome(out)["recorded"] == len(originals),
        f"{sorted_outcome(out)['recorded']} of {len(originals)} images recorded",
    )
    assert not checks.violations, report(checks.violations)
