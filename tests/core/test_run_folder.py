"""``run.json`` is validated on read; a damaged one is listed as damaged, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgcls_desktop.core.training.run import (
    RunError,
    RunInfo,
    RunStatus,
    find_runs,
    read_run,
    write_run,
)

GOOD = RunInfo(
    status="finished", epochs=3, train="/data/train", created="2026-01-01T10:00:00+00:00"
)

# run.json contents a user (or a half-written copy) can leave, and what the message says.
DAMAGED = {
    "a list": ("[]", "holds a list, not an object"),
    "null": ("null", "holds null, not an object"),
    "a numeric created": (
        json.dumps({**GOOD.to_dict(), "created": 1700000000}),
        "'created' is the number 1700000000, not a text",
    ),
    "a text accuracy": (
        json.dumps({**GOOD.to_dict(), "best_val_accuracy": "0.9"}),
        "'best_val_accuracy' is the text '0.9', not a number or null",
    ),
    "no status": (
        json.dumps({k: v for k, v in GOOD.to_dict().items() if k != "status"}),
        "lacks 'status'",
    ),
    "an unknown status": (
        json.dumps({**GOOD.to_dict(), "status": "paused"}),
        "status 'paused' is none of running, stopped",
    ),
    "a boolean epoch count": (
        json.dumps({**GOOD.to_dict(), "epochs": True}),
        "'epochs' is the boolean true, not a whole number",
    ),
    "a negative epoch": (
        json.dumps({**GOOD.to_dict(), "last_completed_epoch": -1}),
        "'last_completed_epoch' is -1, less than 0",
    ),
    "a list for data": (
        json.dumps({**GOOD.to_dict(), "data": []}),
        "'data' is a list, not an object",
    ),
    "not JSON": ("{", "cannot read"),
}


def write_damaged(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_run_json_is_refused_with_the_reason(case: str, tmp_path: Path) -> None:
    text, reason = DAMAGED[case]
    run_dir = write_damaged(tmp_path / "run", text)
    with pytest.raises(RunError) as raised:
        read_run(run_dir)
    message = str(raised.value)
    assert str(run_dir / "run.json") in message and reason in message


def test_damaged_runs_are_listed_as_damaged_beside_good_ones(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    good = runs / "good"
    good.mkdir(parents=True)
    write_run(good, RunInfo(status=RunStatus.STOPPED.value, epochs=3, train="/data"))
    for number, (text, _reason) in enumerate(DAMAGED.values()):
        write_damaged(runs / f"damaged-{number}", text)
    elsewhere = write_damaged(tmp_path / "elsewhere", "null")

    found = find_runs(runs, also=[elsewhere, good])

    assert len(found) == len(DAMAGED) + 2  # each folder once
    by_name = {run.path.name: run for run in found}
    assert by_name["good"].info is not None and by_name["good"].damaged is None
    damaged = [run for run in found if run.info is None]
    assert len(damaged) == len(DAMAGED) + 1
    assert all("is damaged" in run.damaged or "cannot read" in run.damaged for run in damaged)


def test_a_good_record_reads_back_and_newer_keys_are_ignored(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run(run_dir, GOOD)
    values = json.loads((run_dir / "run.json").read_text())
    values.update(best_val_accuracy=1, from_a_newer_version={"x": 1})  # JSON may write 1
    (run_dir / "run.json").write_text(json.dumps(values))
    info = read_run(run_dir)
    assert (info.status, info.epochs, info.best_val_accuracy) == ("finished", 3, 1)
