"""The Training tab's Processes field: a run on two local worker processes (127.0.0.1), their
states and speeds in the Processes table, their lines in the log."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.distributed.plan import LaunchSpecError
from imgcls_desktop.core.distributed.supervisor import ProcessState
from imgcls_desktop.core.training.callbacks import BatchDone, EpochDone
from imgcls_desktop.core.training.run import RunStatus, read_run
from imgcls_desktop.gui.training.processes import ProcessesField
from tests.core.distributed_fixtures import running
from tests.gui.test_training_tab import RUN_TIMEOUT_MS, Opened, opened, set_up, shapes

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)
__all__ = ["opened", "shapes"]  # fixtures


def test_local_2_trains_on_two_workers_and_shows_each_ones_state_and_speed(
    qtbot: QtBot,
    opened: Opened,
    shapes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the workers import this checkout
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    set_up(qtbot, opened, shapes, tmp_path, kv_store="dist_sync", mini_batch_size="8")
    opened.tab.setup.processes.setText("local:2")

    # Start asks nothing: with Processes set, dist_sync is what it should be
    job = opened.tab.start()
    assert job is not None
    events: list[object] = []
    job.event.connect(events.append)
    with qtbot.waitSignal(opened.tab.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        pass
    qtbot.waitUntil(lambda: not opened.jobs.running(), timeout=RUN_TIMEOUT_MS)

    assert finished.args[0].completed
    table = opened.tab.processes
    for worker in ("worker 0", "worker 1"):
        assert table.cell(worker, 2).startswith("epoch 2: ")
        assert table.cell(worker, 1).startswith("exited")
    assert table.cell("server 0", 1) and table.cell("scheduler", 1)
    log = opened.tab.monitor.log.toPlainText()
    assert "[worker 0] " in log and "Effective batch: 16 images per step" in log
    # The curves followed the run as it trained: rank 0's batches and epochs came as events.
    assert [e.epoch for e in events if isinstance(e, EpochDone)] == [1, 2]
    assert any(isinstance(event, BatchDone) for event in events)
    assert opened.tab.monitor.plots.batch_loss.x
    assert "imgcls-event" not in log


def test_stop_stops_every_process_and_the_run_resumes(
    qtbot: QtBot,
    opened: Opened,
    shapes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    set_up(qtbot, opened, shapes, tmp_path, kv_store="dist_sync", epochs="50")
    opened.tab.setup.processes.setText("local:2")
    pids: set[int] = set()
    job = opened.tab.start_anyway()
    assert job is not None
    job.event.connect(
        lambda event: pids.add(event.pid) if isinstance(event, ProcessState) and event.pid else None
    )
    table = opened.tab.processes
    qtbot.waitUntil(lambda: bool(table.cell("worker 0", 2)), timeout=RUN_TIMEOUT_MS)

    with qtbot.waitSignal(opened.tab.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        opened.tab.stop()
    qtbot.waitUntil(lambda: not opened.jobs.running(), timeout=RUN_TIMEOUT_MS)

    result = finished.args[0]
    assert result.status is RunStatus.STOPPED and result.stop_reason == "stopped by the user"
    assert len(pids) == 4 and not [pid for pid in pids if running(pid)]
    assert read_run(result.run_dir).can_continue()
    assert table.cell("worker 1", 1).startswith("stopped")


def test_the_field_reads_one_process_a_local_plan_and_refuses_print(qtbot: QtBot) -> None:
    field = ProcessesField()
    qtbot.addWidget(field)
    assert field.plan() is None
    field.setText("local:3,servers=2")
    plan = field.plan()
    assert plan is not None and (plan.workers, plan.servers) == (3, 2)
    field.setText("print")
    with pytest.raises(LaunchSpecError, match="imgcls train --launch print"):
        field.plan()
