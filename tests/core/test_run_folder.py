"""``run.json`` is validated on read; a damaged one is listed as damaged, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgcls_desktop.core.training.data import TrainingData
from imgcls_desktop.core.training.run import (
    RunError,
    RunInfo,
    RunStatus,
    find_runs,
    read_run,
    validation_records,
    write_run,
)

GOOD = RunInfo(
    status=RunStatus.FINISHED, epochs=3, train="/data/train", created="2026-01-01T10:00:00+00:00"
)

# A run.json's data record as an earlier version wrote it (before the class counts, the
# size warnings and the split seed were recorded).
OLD_DATA = {
    "train_rec": "data/train/dataset-train.rec",
    "train_idx": "data/train/dataset-train.idx",
    "val_rec": "/elsewhere/validation.rec",
    "val_idx": "/elsewhere/validation.idx",
    "class_names": ["cat", "dog"],
    "num_train": 8,
    "num_val": 2,
    "multi_label": False,
    "shorter_side": 37,
    "min_image_size": [32, 32],
    "val_resize": 37,
    "skipped": [{"path": "/images/cat/broken.jpg", "reason": "not an image"}],
}

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
    "a data record without its records": (
        json.dumps(
            {
                **GOOD.to_dict(),
                "data": {k: v for k, v in OLD_DATA.items() if k not in ("train_rec", "val_rec")},
            }
        ),
        "'data' record: it lacks 'train_rec', 'val_rec'",
    ),
    "a text image count in the data": (
        json.dumps({**GOOD.to_dict(), "data": {**OLD_DATA, "num_train": "8"}}),
        "'data' record: its 'num_train' is '8', not a whole number",
    ),
    "a damaged skipped list": (
        json.dumps({**GOOD.to_dict(), "data": {**OLD_DATA, "skipped": [{"file": "x"}]}}),
        "'data' record: its 'skipped' is not a list of path and reason pairs",
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


def test_status_and_data_are_typed_and_the_json_stays_the_same(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run(run_dir, RunInfo(status=RunStatus.EARLY_STOPPED, epochs=3, train="/data"))
    assert json.loads((run_dir / "run.json").read_text())["status"] == "early_stopped"
    assert json.loads((run_dir / "run.json").read_text())["data"] == {}
    info = read_run(run_dir)
    assert info.status is RunStatus.EARLY_STOPPED and info.data is None
    assert f"Run {info.status}" == "Run early_stopped"  # as messages and the run table show it


def test_an_old_run_json_opens_with_its_data_as_a_record(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    old = {"status": "stopped", "epochs": 5, "train": "/images", "data": OLD_DATA}
    (run_dir / "run.json").write_text(json.dumps(old), encoding="utf-8")
    info = read_run(run_dir)
    assert info.status is RunStatus.STOPPED
    data = info.data
    assert isinstance(data, TrainingData)
    assert data.train_rec == run_dir / "data/train/dataset-train.rec"  # inside the run folder
    assert data.val_rec == Path("/elsewhere/validation.rec")
    assert (data.class_names, data.min_image_size, data.train_class_counts) == (
        ("cat", "dog"),
        (32, 32),
        (),
    )
    assert data.skipped[0].reason == "not an image"
    write_run(run_dir, info)  # written back as it was read: paths in the folder relative
    rewritten = json.loads((run_dir / "run.json").read_text())["data"]
    assert {k: v for k, v in rewritten.items() if k in OLD_DATA} == OLD_DATA
    assert read_run(run_dir).data == data


@pytest.mark.parametrize(
    ("status", "last", "epochs", "can"),
    [
        (RunStatus.FINISHED, 3, None, False),  # done: Resume would refuse
        (RunStatus.FINISHED, 3, 5, True),  # unless asked for more epochs
        (RunStatus.STOPPED, 1, None, True),
        (RunStatus.RUNNING, 0, None, True),  # killed before its first epoch ended
        (RunStatus.RUNNING, 3, None, True),  # killed after its last epoch: records the end
        (RunStatus.STOPPED, 3, 2, False),  # fewer epochs than it trained
        (RunStatus.EARLY_STOPPED, 2, None, True),
    ],
)
def test_a_run_can_continue_while_epochs_remain_or_its_end_is_unrecorded(
    status: RunStatus, last: int, epochs: int | None, can: bool
) -> None:
    info = RunInfo(status=status, epochs=3, train="/data", last_completed_epoch=last)
    assert info.can_continue(epochs) is can


def test_the_validation_records_of_a_run_while_they_exist(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    data = {**OLD_DATA, "val_rec": "data/train/dataset-val.rec"}
    old = {"status": "finished", "epochs": 5, "train": "/images", "data": data}
    (run_dir / "run.json").write_text(json.dumps(old), encoding="utf-8")
    assert validation_records(run_dir) is None  # not there (yet)
    records = run_dir / "data" / "train" / "dataset-val.rec"
    records.parent.mkdir(parents=True)
    records.write_bytes(b"")
    assert validation_records(run_dir) == records
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"")
    assert validation_records(archive) is None and validation_records(tmp_path) is None
