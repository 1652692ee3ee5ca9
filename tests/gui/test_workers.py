"""The worker pattern every job of the app runs on."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.dataset.samples import DatasetError
from imgcls_desktop.core.jobs import Cancelled, JobContext, Task
from imgcls_desktop.gui.workers import JobHandle, JobRunner, JobSlot, SlotPolicy, Worker

TIMEOUT_MS = 30_000  # a loaded machine can hold a worker thread (nice 10) back for seconds


@pytest.fixture
def runner(qtbot: QtBot) -> JobRunner:
    job_runner = JobRunner()
    yield job_runner
    assert job_runner.shutdown(TIMEOUT_MS)


def _counting_job(job: JobContext) -> str:
    for done in range(1, 4):
        job.check()
        job.progress(done, 3)
    return "result"


def _record(handle: JobHandle) -> list[tuple[str, tuple]]:
    """Every signal of a handle, in arrival order, as (name, args)."""
    events: list[tuple[str, tuple]] = []
    for name in ("progress", "event", "succeeded", "failed", "cancelled", "finished"):
        getattr(handle, name).connect(lambda *args, name=name: events.append((name, args)))
    return events


def test_progress_then_result_then_finished(qtbot: QtBot, runner: JobRunner) -> None:
    handle = runner.start(_counting_job, "Counting")  # its signals queue until the loop runs
    events = _record(handle)
    qtbot.waitSignal(handle.finished, timeout=TIMEOUT_MS).wait()
    names = [name for name, _ in events]
    assert set(names[:-2]) == {"progress"} and names[-2:] == ["succeeded", "finished"]
    assert events[-3] == ("progress", (3, 3))
    assert events[-2] == ("succeeded", ("result",))
    qtbot.waitUntil(lambda: not runner.running(), timeout=TIMEOUT_MS)


def test_failure_reports_message_and_traceback(qtbot: QtBot, runner: JobRunner) -> None:
    def failing_job(job: JobContext) -> None:
        raise DatasetError("classes.json is not valid JSON")

    handle = runner.start(failing_job, "Failing")
    events = _record(handle)
    qtbot.waitSignal(handle.finished, timeout=TIMEOUT_MS).wait()
    assert [name for name, _ in events] == ["failed", "finished"]
    message, details = events[0][1]
    assert message == "classes.json is not valid JSON"
    assert "Traceback" in details and "failing_job" in details


def test_unexpected_error_names_its_type(qtbot: QtBot, runner: JobRunner) -> None:
    def buggy_job(job: JobContext) -> None:
        raise KeyError("missing")

    handle = runner.start(buggy_job, "Buggy")
    with qtbot.waitSignal(handle.failed, timeout=TIMEOUT_MS) as blocker:
        pass
    assert blocker.args[0] == "KeyError: 'missing'"


def _endless_job(started: threading.Event) -> Task[None]:
    """A task that runs until it is cancelled, setting ``started`` first."""

    def task(job: JobContext) -> None:
        started.set()
        while True:
            job.check()
            job.cancel.wait(0.01)

    return task


def test_cancel_stops_the_job_and_emits_cancelled(qtbot: QtBot, runner: JobRunner) -> None:
    started = threading.Event()
    handle = runner.start(_endless_job(started), "Endless")
    assert started.wait(TIMEOUT_MS / 1000)
    with qtbot.waitSignals([handle.cancelled, handle.finished], order="strict", timeout=TIMEOUT_MS):
        handle.cancel()


def test_shutdown_cancels_and_joins_running_jobs(qtbot: QtBot) -> None:
    job_runner = JobRunner()
    started = threading.Event()
    job_runner.start(_endless_job(started), "Endless")
    assert started.wait(TIMEOUT_MS / 1000)
    assert job_runner.shutdown(TIMEOUT_MS)


def test_a_runner_dropped_while_its_job_still_runs_leaves_the_thread_to_end(
    qtbot: QtBot,
) -> None:
    """A job that cannot be cancelled (an import in C code) outlives a shutdown that timed
    out; dropping the runner then must not destroy its running thread (Qt aborts the
    process: "QThread: Destroyed while thread is still running")."""
    started, release = threading.Event(), threading.Event()

    def stubborn_job(job: JobContext) -> str:
        started.set()
        release.wait()
        return "ended"

    job_runner = JobRunner()
    handle = job_runner.start(stubborn_job, "Stubborn")
    events = _record(handle)
    assert started.wait(TIMEOUT_MS / 1000)
    assert not job_runner.shutdown(0)
    del job_runner
    gc.collect()
    release.set()
    qtbot.waitSignal(handle.finished, timeout=TIMEOUT_MS).wait()
    assert events == [("succeeded", ("ended",)), ("finished", ())]


LEFT_RUNNING = """
import sys
import threading
from PySide6.QtWidgets import QApplication
from imgcls_desktop.gui.workers import JobRunner
app = QApplication(["left-running"])
runner = JobRunner()
started = threading.Event()
runner.start(lambda job: (started.set(), sys.stdin.read()), "Reading until stdin closes")
started.wait()  # a job cancelled before it begins does not run at all
print(runner.shutdown(0), flush=True)
"""


def test_the_process_ends_cleanly_after_a_job_it_could_not_stop() -> None:
    """Closing the window while a job that cannot be cancelled runs (the background import
    of MXNet on a loaded machine) aborted the process at exit, when PySide destroyed the
    running thread: the exit now waits for the job."""
    process = subprocess.Popen(
        [sys.executable, "-c", LEFT_RUNNING],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "False"  # the shutdown timed out
    _, errors = process.communicate(input="", timeout=120)  # stdin closed: the job ends
    assert process.returncode == 0, errors
    assert "Destroyed while thread" not in errors


def test_after_shutdown_a_job_does_not_run_and_reports_cancelled(qtbot: QtBot) -> None:
    job_runner = JobRunner()
    assert job_runner.shutdown(TIMEOUT_MS)
    ran = threading.Event()
    handle = job_runner.start(lambda job: ran.set(), "Too late")
    events = _record(handle)
    qtbot.waitSignal(handle.finished, timeout=TIMEOUT_MS).wait()
    assert events == [("cancelled", ()), ("finished", ())]
    assert not ran.is_set() and job_runner.running() == []


def test_worker_runs_a_job_in_the_calling_thread_too(qtbot: QtBot) -> None:
    worker = Worker(_counting_job, "Counting")
    with qtbot.waitSignals([worker.succeeded, worker.finished], order="strict", timeout=1000):
        worker.run()


class _Emitter(QObject):
    value = Signal(int)
    payload = Signal(dict)


def test_twenty_thousand_signal_emits_do_not_crash(qtbot: QtBot) -> None:
    """PySide6 6.12.0 aborts the interpreter after a few thousand emits (DESIGN.md §3)."""
    emitter = _Emitter()
    received: list[int] = []
    emitter.value.connect(received.append)
    emitter.payload.connect(lambda logs: received.append(int(logs["loss"] >= 0)))
    for step in range(20_000):
        emitter.value.emit(step)
        emitter.payload.emit({"loss": 1.0 / (step + 1), "accuracy": 0.5})
    assert len(received) == 40_000


def test_a_job_slot_refuses_a_second_job_and_frees_itself(qtbot: QtBot, runner: JobRunner) -> None:
    slot = JobSlot(runner)
    busy: list[bool] = []
    refusals: list[str] = []
    slot.busy_changed.connect(busy.append)
    slot.refused.connect(refusals.append)
    started = threading.Event()
    first = slot.start(_endless_job(started), "First")
    assert first is not None and slot.is_busy() and busy == [True]
    assert slot.start(_counting_job, "Second") is None and len(refusals) == 1
    slot.cancel()
    qtbot.waitSignal(first.finished, timeout=TIMEOUT_MS).wait()
    assert not slot.is_busy() and busy == [True, False]


def test_a_job_started_from_an_outcome_keeps_the_slot_busy(qtbot: QtBot, runner: JobRunner) -> None:
    slot = JobSlot(runner)
    busy: list[bool] = []
    slot.busy_changed.connect(busy.append)
    follow_ups: list[JobHandle] = []
    first = slot.start(_counting_job, "First")
    first.succeeded.connect(lambda _result: follow_ups.append(slot.start(_counting_job, "Next")))
    qtbot.waitUntil(lambda: bool(follow_ups) and busy[-1] is False, timeout=TIMEOUT_MS)
    assert follow_ups[0] is not None and not slot.is_busy()
    assert busy == [True, True, False]  # no False between the two jobs


def test_a_late_finished_of_the_first_job_does_not_end_the_next_ones_spell(
    qtbot: QtBot, runner: JobRunner
) -> None:
    """The first job's ``finished`` held back (its thread descheduled after its outcome, as on
    a loaded machine) until the job its outcome started has finished: still one False."""
    slot = JobSlot(runner)
    busy: list[bool] = []
    slot.busy_changed.connect(busy.append)
    go, release = threading.Event(), threading.Event()
    first = slot.start(lambda job: go.wait(), "First")
    assert first is not None
    # Runs in the first job's thread, between its outcome and its finished.
    first._worker.succeeded.connect(lambda _result: release.wait(), Qt.DirectConnection)
    follow_ups: list[JobHandle] = []
    first.succeeded.connect(lambda _result: follow_ups.append(slot.start(_counting_job, "Next")))
    go.set()
    qtbot.waitUntil(lambda: bool(follow_ups) and not slot.is_busy(), timeout=TIMEOUT_MS)
    release.set()  # the first job's finished now arrives, after the next job's outcome
    qtbot.waitUntil(lambda: not runner.running(), timeout=TIMEOUT_MS)  # every one delivered
    assert busy == [True, True, False]


def test_a_tasks_events_arrive_before_its_outcome(qtbot: QtBot, runner: JobRunner) -> None:
    def task(job: JobContext) -> str:
        job.emit({"epoch": 1})
        job.emit({"epoch": 2})
        return "trained"

    handle = runner.start(task, "Emitting")
    events = _record(handle)
    qtbot.waitSignal(handle.finished, timeout=TIMEOUT_MS).wait()
    assert events == [
        ("event", ({"epoch": 1},)),
        ("event", ({"epoch": 2},)),
        ("succeeded", ("trained",)),
        ("finished", ()),
    ]


def _raise(error: Exception) -> None:
    raise error


@pytest.mark.parametrize(
    ("task", "outcome"),
    [
        (lambda job: "result", "succeeded"),
        (lambda job: _raise(ValueError("bad")), "failed"),
        (lambda job: _raise(Cancelled()), "cancelled"),
    ],
)
def test_finished_comes_last_and_once_after_each_outcome(
    qtbot: QtBot, runner: JobRunner, task: Task[object], outcome: str
) -> None:
    handle = runner.start(task, "One outcome")
    events = _record(handle)
    qtbot.waitSignal(handle.finished, timeout=TIMEOUT_MS).wait()
    qtbot.waitUntil(lambda: not runner.running(), timeout=TIMEOUT_MS)
    assert [name for name, _ in events] == [outcome, "finished"]


def test_a_replace_slot_runs_only_the_latest_start(qtbot: QtBot, runner: JobRunner) -> None:
    """Starts while a job runs cancel it; of the starts meanwhile only the latest runs, the
    others report cancelled (and finished) without running."""
    slot = JobSlot(runner, policy=SlotPolicy.REPLACE)
    busy: list[bool] = []
    slot.busy_changed.connect(busy.append)
    ran: list[str] = []
    started = threading.Event()

    def named(name: str) -> Task[str]:
        def task(job: JobContext) -> str:
            ran.append(name)
            return name

        return task

    first = slot.start(_endless_job(started), "First")
    assert first is not None and started.wait(TIMEOUT_MS / 1000)
    first_events = _record(first)
    second = slot.start(named("second"), "Second")
    third = slot.start(named("third"), "Third")
    assert second is not None and third is not None and slot.is_busy()
    second_events, third_events = _record(second), _record(third)
    qtbot.waitSignal(third.finished, timeout=TIMEOUT_MS).wait()
    qtbot.waitUntil(lambda: not runner.running() and busy[-1] is False, timeout=TIMEOUT_MS)
    assert first_events == [("cancelled", ()), ("finished", ())]
    assert second_events == [("cancelled", ()), ("finished", ())]
    assert third_events == [("succeeded", ("third",)), ("finished", ())]
    assert ran == ["third"] and not slot.is_busy()
    assert busy.count(False) == 1  # one busy spell, from the first start to the last job


def test_a_replace_slot_runs_a_start_at_once_when_idle(qtbot: QtBot, runner: JobRunner) -> None:
    slot = JobSlot(runner, policy=SlotPolicy.REPLACE)
    handle = slot.start(_counting_job, "Alone")
    assert handle is not None
    with qtbot.waitSignal(handle.succeeded, timeout=TIMEOUT_MS) as blocker:
        pass
    assert blocker.args == ["result"]


def test_cancelling_a_replace_slot_drops_the_waiting_job(qtbot: QtBot, runner: JobRunner) -> None:
    slot = JobSlot(runner, policy=SlotPolicy.REPLACE)
    started = threading.Event()
    first = slot.start(_endless_job(started), "First")
    assert first is not None and started.wait(TIMEOUT_MS / 1000)
    waiting = slot.start(_counting_job, "Waiting")
    assert waiting is not None
    events = _record(waiting)
    slot.cancel()
    qtbot.waitSignal(first.finished, timeout=TIMEOUT_MS).wait()
    qtbot.waitUntil(lambda: not slot.is_busy() and len(events) == 2, timeout=TIMEOUT_MS)
    assert events == [("cancelled", ()), ("finished", ())]
