"""The Training tab's Processes field: a run on two local worker processes (127.0.0.1), their
states and speeds in the Processes table, their lines in the log."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.distributed.plan import LaunchSpecError
from imgcls_desktop.gui.training.processes import ProcessesField
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

    assert opened.tab.start_anyway() is not None
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
