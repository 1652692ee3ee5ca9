"""Distributed training on 127.0.0.1: a scheduler, one server and two workers training the
small colour set through :func:`train_distributed`, against one process.

The tests act on what the workers say (their lines), never on time, and check by PID that
no process is left.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
from distributed_fixtures import Watch, package_importable
from test_distributed_ssh import hosts_root
from training_fixtures import quick_hp, shared_colour_folder

from imgcls_desktop.core.distributed.commands import free_port
from imgcls_desktop.core.distributed.events import EVENT_PREFIX
from imgcls_desktop.core.distributed.plan import parse_launch
from imgcls_desktop.core.distributed.supervisor import LaunchFailed, ProcessState
from imgcls_desktop.core.distributed.training import parse_speed, train_distributed
from imgcls_desktop.core.hyperparams import HyperparameterError
from imgcls_desktop.core.training.callbacks import (
    BatchDone,
    EpochDone,
    TrainingBegan,
    TrainingEvent,
)
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.core.training.run import RunStatus, read_run

pytestmark = pytest.mark.usefixtures(package_importable.__name__)
__all__ = ["hosts_root"]  # a fixture


def new_job(folder: Path, run: Path, **changes: object) -> TrainingJob:
    return TrainingJob.new(quick_hp(**changes), folder, run, devices="cpu")


def speeds(watch: Watch) -> dict[str, list[int]]:
    """The epochs each worker reported its speed for."""
    said: dict[str, list[int]] = {}
    for name, text in watch.lines:
        speed = parse_speed(text)
        if speed is not None:
            said.setdefault(name, []).append(speed[0])
    return said


def metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_two_workers_train_as_well_as_one_process_with_the_same_effective_batch(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    one = train(new_job(folder, tmp_path / "one", epochs=3, mini_batch_size=16))
    watch = Watch()
    job = new_job(folder, tmp_path / "two", epochs=3, mini_batch_size=8, kv_store="dist_sync")

    events: list[TrainingEvent] = []
    progress: list[tuple[int, int]] = []
    two = train_distributed(
        job,
        parse_launch("local:2"),
        on_line=watch.on_line,
        on_state=watch.on_state,
        on_event=events.append,
        progress=lambda done, total: progress.append((done, total)),
    )

    assert two.status is RunStatus.FINISHED and two.epochs_run == 3
    # Rank 0's events, as one process would emit them: the curves are drawn as it trains.
    assert sum(isinstance(event, TrainingBegan) for event in events) == 1
    assert [e.epoch for e in events if isinstance(e, EpochDone)] == [1, 2, 3]
    assert any(isinstance(event, BatchDone) for event in events)
    assert progress[-1][0] == progress[-1][1] == 3 * events[0].batches_per_epoch
    assert not [text for _, text in watch.lines if text.startswith(EVENT_PREFIX)]
    assert one.best_val_accuracy is not None and two.best_val_accuracy is not None
    assert two.best_val_accuracy >= one.best_val_accuracy - 0.1
    assert read_run(two.run_dir).status is RunStatus.FINISHED
    rows = metrics(two.run_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert rows[-1]["train_accuracy"] > 0.5
    assert speeds(watch) == {"worker 0": [1, 2, 3], "worker 1": [1, 2, 3]}
    texts = [text for _, text in watch.lines]
    assert any("Effective batch: 16 images per step" in text for text in texts)
    assert sum(text.startswith("Epoch[") for text in texts) == 3  # rank 0 only
    assert list(two.run_dir.glob("*.params"))  # rank 0's checkpoint
    watch.assert_nothing_left()


def test_dist_async_trains_with_the_servers_updating(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    watch = Watch()
    job = new_job(folder, tmp_path / "run", epochs=2, kv_store="dist_async")

    result = train_distributed(
        job, parse_launch("local:2"), on_line=watch.on_line, on_state=watch.on_state
    )

    assert result.status is RunStatus.FINISHED and result.last_epoch == 2
    assert [row["epoch"] for row in metrics(result.run_dir)] == [1, 2]
    watch.assert_nothing_left()


def test_early_stopping_stops_every_worker_after_the_same_epoch(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    watch = Watch()
    # An improvement must double the best accuracy: the run stops within a few epochs.
    early = {
        "early_stopping": True,
        "early_stopping_min_epochs": 1,
        "early_stopping_patience": 1,
        "early_stopping_tolerance": 1.0,
    }
    job = new_job(folder, tmp_path / "run", epochs=8, kv_store="dist_sync", **early)

    result = train_distributed(
        job, parse_launch("local:2"), on_line=watch.on_line, on_state=watch.on_state
    )

    assert result.status is RunStatus.EARLY_STOPPED and result.last_epoch < 8
    assert "early stopping" in (result.stop_reason or "")
    epochs = list(range(1, result.last_epoch + 1))
    assert speeds(watch) == {"worker 0": epochs, "worker 1": epochs}
    assert {(s.name, s.returncode) for s in watch.states if s.state == "exited"} >= {
        ("worker 0", 0),
        ("worker 1", 0),
    }
    watch.assert_nothing_left()


def test_an_ssh_launch_trains_on_each_host_after_checking_it_has_the_run(
    hosts_root: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two "hosts" (both this machine, through the stand-in ssh of the launcher's tests)."""
    folder = shared_colour_folder(tmp_path_factory)
    for host in ("localhost", "127.0.0.1"):
        (hosts_root / host).mkdir(parents=True)
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("localhost\n127.0.0.1\n", encoding="utf-8")
    watch = Watch()
    job = new_job(folder, tmp_path / "run", epochs=1, kv_store="dist_sync")

    result = train_distributed(
        job,
        parse_launch(f"ssh:{hosts},servers=1,port={free_port()}"),
        on_line=watch.on_line,
        on_state=watch.on_state,
    )

    assert result.status is RunStatus.FINISHED and result.last_epoch == 1
    assert speeds(watch) == {"worker 0": [1], "worker 1": [1]}
    watch.assert_nothing_left()


class KillAtFirstSpeed(Watch):
    """Sends ``sig`` to the first worker that reports its speed, or sets ``cancel``."""

    def __init__(self, sig: signal.Signals | None = None) -> None:
        super().__init__()
        self.sig = sig
        self.cancel = threading.Event()
        self.worker_pids: dict[str, int] = {}
        self.victim: str | None = None

    def on_state(self, state: ProcessState) -> None:
        super().on_state(state)
        if state.role == "worker" and state.pid is not None:
            self.worker_pids[state.name] = state.pid

    def on_line(self, name: str, text: str) -> None:
        super().on_line(name, text)
        if self.victim is None and parse_speed(text) is not None:
            self.victim = name
            if self.sig is None:
                self.cancel.set()
            else:
                os.kill(self.worker_pids[name], self.sig)


def test_a_worker_killed_mid_run_fails_clearly_and_the_run_resumes(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    watch = KillAtFirstSpeed(signal.SIGKILL)
    run = tmp_path / "run"
    job = new_job(folder, run, epochs=2, kv_store="dist_sync")

    with pytest.raises(LaunchFailed) as failed:
        train_distributed(
            job, parse_launch("local:2"), on_line=watch.on_line, on_state=watch.on_state
        )

    assert f"{watch.victim} was killed by SIGKILL" in str(failed.value)
    watch.assert_nothing_left()
    info = read_run(run)
    assert info.status is RunStatus.FAILED and "SIGKILL" in (info.error or "")
    assert info.can_continue()
    resumed = train(TrainingJob.resume_of(run))  # here, on one process: kv_store falls back
    assert resumed.status is RunStatus.FINISHED and resumed.last_epoch == 2
    assert any("trains on one process" in warning for warning in resumed.warnings)


def test_a_plain_kill_ends_a_worker_cleanly_and_stops_the_others(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    watch = KillAtFirstSpeed(signal.SIGTERM)
    run = tmp_path / "run"
    job = new_job(folder, run, epochs=3, kv_store="dist_sync")

    with pytest.raises(LaunchFailed) as failed:
        train_distributed(
            job, parse_launch("local:2"), on_line=watch.on_line, on_state=watch.on_state
        )

    assert f"{watch.victim} exited with code 143" in str(failed.value)  # SystemExit(128 + 15)
    watch.assert_nothing_left()
    assert read_run(run).can_continue()


def test_stop_stops_every_process_and_the_run_resumes_on_the_workers(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    watch = KillAtFirstSpeed()
    job = new_job(folder, tmp_path / "run", epochs=3, kv_store="dist_sync")

    result = train_distributed(
        job,
        parse_launch("local:2"),
        on_line=watch.on_line,
        on_state=watch.on_state,
        cancel=watch.cancel,
    )

    assert result.status is RunStatus.STOPPED and result.stop_reason == "stopped by the user"
    watch.assert_nothing_left()
    assert {state.state for state in watch.states if state.role == "worker"} >= {"stopped"}
    info = read_run(result.run_dir)
    assert info.status is RunStatus.STOPPED and info.can_continue()

    again = Watch()
    resumed = train_distributed(
        TrainingJob.resume_of(result.run_dir),
        parse_launch("local:2"),
        on_line=again.on_line,
        on_state=again.on_state,
    )

    assert resumed.status is RunStatus.FINISHED and resumed.last_epoch == 3
    assert resumed.epochs_run == 3 - info.last_completed_epoch
    assert [row["epoch"] for row in metrics(result.run_dir)] == [1, 2, 3]
    again.assert_nothing_left()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"kv_store": "dist_sync", "freeze_backbone": 1, "use_pretrained_model": 1}, "quick"),
        ({"kv_store": "dist_async", "optimizer": "nag"}, "no nag"),
        ({"kv_store": "device"}, "needs dist_sync or dist_async"),
    ],
)
def test_what_a_distributed_run_cannot_do_is_refused_before_any_work(
    tmp_path: Path, changes: dict, says: str
) -> None:
    job = TrainingJob(quick_hp(**changes), tmp_path / "data", tmp_path / "run")

    with pytest.raises(HyperparameterError, match=says):
        train_distributed(job, parse_launch("local:2"))

    assert not (tmp_path / "run").exists()
