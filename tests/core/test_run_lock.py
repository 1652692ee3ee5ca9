"""One trainer per run folder: the lock, its refusals, stale locks, and the clean-up at start."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from lock_fixtures import lock_held_by_another_process
from training_fixtures import quick_hp, shared_colour_folder

from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.training.lock import (
    LOCK_FILE,
    LockOwner,
    RunLock,
    RunLockedError,
    busy_reason,
    lock_owner,
)
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.core.training.run import RunStatus, read_run

HAS_PROC = Path(f"/proc/{os.getpid()}/stat").is_file()


@pytest.fixture
def colour_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_colour_folder(tmp_path_factory)


def write_lock(folder: Path, **changes: object) -> Path:
    """A lock file as another owner would have written it (this process's record, changed)."""
    owner = dataclasses.replace(LockOwner.this_process(), **changes)
    path = folder / LOCK_FILE
    path.write_text(json.dumps(dataclasses.asdict(owner)), encoding="utf-8")
    return path


def ended_process_id() -> int:
    """The id of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_run_another_process_trains_is_not_resumed(colour_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TrainingJob(quick_hp(epochs=1), colour_folder, run))
    assert not (run / LOCK_FILE).exists()  # released at the end
    before = {name: (run / name).read_bytes() for name in ("run.json", "metrics.jsonl")}
    with lock_held_by_another_process(run) as pid:
        assert lock_owner(run).pid == pid
        host = socket.gethostname()
        with pytest.raises(RunLockedError, match=f"being trained by process {pid} on host {host}"):
            train(TrainingJob(quick_hp(epochs=2), colour_folder, run, resume=True))
        assert {name: (run / name).read_bytes() for name in before} == before
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == pid  # still the owner's
    assert lock_owner(run) is None and not (run / LOCK_FILE).exists()
    # A killed run's temporary files go at the next start; files merely named alike stay.
    leftovers = [run / ".run.json.0123abcd.tmp", run / "resume" / ".epoch-0001.states.deadbeef.tmp"]
    kept = [run / "notes.tmp", run / ".run.json.0123ABCD.tmp", run / ".run.json.012345.tmp"]
    for path in leftovers + kept:
        path.write_bytes(b"partial")
    result = train(TrainingJob(quick_hp(epochs=2), colour_folder, run, resume=True))
    assert result.status is RunStatus.FINISHED and result.last_epoch == 2
    assert not any(path.exists() for path in leftovers)
    assert all(path.exists() for path in kept)
    assert not (run / LOCK_FILE).exists()


def test_a_folder_a_new_run_is_starting_in_is_refused(colour_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with lock_held_by_another_process(run) as pid:
        with pytest.raises(RunLockedError, match=f"process {pid}"):
            train(TrainingJob(quick_hp(epochs=1), colour_folder, run))
        assert sorted(path.name for path in run.iterdir()) == [LOCK_FILE]


def test_the_same_process_cannot_lock_a_run_twice(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    assert first.acquire() is None
    with pytest.raises(RunLockedError, match="already being trained by this process") as refused:
        second.acquire()
    assert refused.value.owner.pid == os.getpid()
    assert "already being trained by this process" in busy_reason(tmp_path)
    second.release()  # not its lock: nothing happens
    assert (tmp_path / LOCK_FILE).exists()
    first.release()
    assert not (tmp_path / LOCK_FILE).exists() and busy_reason(tmp_path) is None
    assert second.acquire() is None
    second.release()


def test_a_lock_left_by_an_ended_process_is_taken_over(colour_folder: Path, tmp_path: Path) -> None:
    pid = ended_process_id()
    run = tmp_path / "run"
    run.mkdir()
    write_lock(run, pid=pid)
    assert lock_owner(run) is None and busy_reason(run) is None
    result = train(TrainingJob(quick_hp(epochs=1), colour_folder, run))
    assert f"process {pid} no longer exists" in result.warnings[0]
    assert read_run(run).status == "finished" and not (run / LOCK_FILE).exists()
    assert open_model(run).epoch == 1


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc to tell a reused process id")
def test_a_reused_process_id_or_a_restart_makes_a_lock_stale(tmp_path: Path) -> None:
    for changes, reason in (
        ({"process_start": "1"}, f"process {os.getpid()} is another program now"),
        ({"boot_id": "an earlier boot"}, "the machine has restarted since"),
    ):
        write_lock(tmp_path, **changes)
        lock = RunLock(tmp_path)
        assert reason in lock.acquire()
        assert json.loads((tmp_path / LOCK_FILE).read_text())["process_start"] != "1"
        lock.release()


@pytest.mark.skipif(not hasattr(os, "waitid") or not HAS_PROC, reason="Linux")
def test_a_lock_of_a_zombie_process_is_stale(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # ended, not yet reaped
        start = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        write_lock(tmp_path, pid=process.pid, process_start=start)
        lock = RunLock(tmp_path)
        assert f"process {process.pid} has ended" in lock.acquire()
        lock.release()
    finally:
        process.wait()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path: Path) -> None:
    path = write_lock(tmp_path, pid=ended_process_id(), host="lab-pc-7")
    text = path.read_text()
    with pytest.raises(RunLockedError) as refused:
        RunLock(tmp_path).acquire()
    message = str(refused.value)
    assert "on host lab-pc-7" in message and f"delete {path} and try again" in message
    assert path.read_text() == text
    assert lock_owner(tmp_path).host == "lab-pc-7"


def test_an_unreadable_lock_waits_while_young_and_is_taken_over_when_old(tmp_path: Path) -> None:
    path = tmp_path / LOCK_FILE
    path.write_text("")  # created, not yet written (or its contents lost in a crash)
    with pytest.raises(RunLockedError, match="still being written"):
        RunLock(tmp_path).acquire()
    an_hour_ago = path.stat().st_mtime - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    lock = RunLock(tmp_path)
    assert "could not be read" in lock.acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()


def test_a_lock_taken_by_someone_else_meanwhile_is_left_alone(tmp_path: Path) -> None:
    lock = RunLock(tmp_path)
    lock.acquire()
    path = write_lock(tmp_path, pid=ended_process_id())  # e.g. deleted by hand, then retaken
    text = path.read_text()
    lock.release()
    assert path.read_text() == text
