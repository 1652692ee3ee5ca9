"""``imgcls dataset add`` killed while it copies corrected images into a data set, then run
again on the images ``corrections.csv`` does not list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, write_image

from .harness import Outcome, clean_exit, enospc_points, run_imgcls, sample_points
from .invariants import (
    Checks,
    check_clear_failure,
    check_corrections,
    done_rows,
    report,
    sha,
    temporaries,
)

IMAGES = 8


@pytest.fixture(scope="module")
def corrected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data set with one cat, and eight images the user says are cats."""
    folder = tmp_path_factory.mktemp("add_faults")
    write_image(folder / "dataset" / "cat" / "cat_0.jpg", CLASS_COLOURS["cat"])
    for i in range(IMAGES):
        write_image(folder / "found" / f"found_{i}.jpg", CLASS_COLOURS["cat"], seed=900 + i)
    return folder / "dataset", folder / "found"


def add_command(images: list[Path], dataset: Path) -> list[str]:
    """``imgcls dataset add IMAGES --label cat --into DATASET``."""
    return ["dataset", "add", *map(str, images), "--label", "cat", "--into", str(dataset)]


def outcome(dataset: Path) -> dict[str, object]:
    """The images of the class folder by content, and how many CSV rows record them."""
    rows = done_rows([dataset / "corrections.csv"], "copied_to")
    return {"images": sorted(sha(p) for p in (dataset / "cat").iterdir()), "rows": len(rows)}


def not_added(images: list[Path], dataset: Path) -> list[Path]:
    """The images ``corrections.csv`` does not record as copied: what a user adds again."""
    rows = done_rows([dataset / "corrections.csv"], "copied_to")
    done = {Path(row["source"]).resolve() for row in rows}
    return [image for image in images if image.resolve() not in done]


def uninterrupted_add(
    corrected: tuple[Path, Path], tmp_path: Path
) -> tuple[Path, list[Path], Outcome, dict[str, object]]:
    """The data set, the images to add, and an add of them without a fault into a copy of
    the data set: its trace (the fault points) and its outcome."""
    dataset, found = corrected
    images = sorted(found.iterdir())
    reference = tmp_path / "reference"
    shutil.copytree(dataset, reference)
    counted = run_imgcls(add_command(images, reference), tmp_path / "trace")
    assert counted.returncode == 0, counted.stderr
    expected = outcome(reference)
    assert expected["rows"] == IMAGES
    return dataset, images, counted, expected


def test_add_killed_mid_way_leaves_whole_recorded_copies_and_adds_the_rest(
    corrected: tuple[Path, Path], tmp_path: Path
) -> None:
    dataset, images, counted, expected = uninterrupted_add(corrected, tmp_path)
    violations: list[str] = []
    for point, after in sample_points(counted.trace, spread=4):
        target = tmp_path / f"at-{point.number}-{int(after)}"
        shutil.copytree(dataset, target)
        killed = run_imgcls(
            add_command(images, target), tmp_path / "t", kill_at=point.number, after=after
        )
        checks = Checks(f"add killed at {killed.describe(point, after)}")
        checks.that(killed.killed, f"not killed: {killed.returncode} {killed.stderr[-300:]}")
        check_corrections(target, "cat", {"cat_0.jpg"}, checks)
        rest = not_added(images, target)
        if rest:
            again = run_imgcls(add_command(rest, target), tmp_path / "t")
            checks.that(again.returncode == 0, f"adding again failed: {again.stderr[-400:]}")
            checks.that(clean_exit(again) is None, f"adding again: {clean_exit(again)}")
        check_corrections(target, "cat", {"cat_0.jpg"}, checks)
        checks.same(outcome(target), expected, "adding the rest again differs from one add")
        checks.that(
            not temporaries(target / "cat"),
            f"left-over temporary files: {temporaries(target / 'cat')}",
        )
        violations += checks.violations
    assert not violations, report(violations)


def test_add_out_of_space_says_so_and_adds_the_rest(
    corrected: tuple[Path, Path], tmp_path: Path
) -> None:
    dataset, images, counted, expected = uninterrupted_add(corrected, tmp_path)
    violations: list[str] = []
    for point in enospc_points(counted.trace, 2):
        target = tmp_path / f"at-{point.number}"
        shutil.copytree(dataset, target)
        failed = run_imgcls(add_command(images, target), tmp_path / "t", enospc_at=point.number)
        checks = Checks(f"add out of space at {failed.describe(point, False)}")
        check_clear_failure(failed, checks, "No space left on device")
        check_corrections(target, "cat", {"cat_0.jpg"}, checks)
        rest = not_added(images, target)
        if rest:
            again = run_imgcls(add_command(rest, target), tmp_path / "t")
            checks.that(again.returncode == 0, f"adding again failed: {again.stderr[-400:]}")
        check_corrections(target, "cat", {"cat_0.jpg"}, checks)
        checks.same(outcome(target), expected, "adding the rest again differs from one add")
        violations += checks.violations
    assert not violations, report(violations)
