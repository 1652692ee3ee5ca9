"""Running core jobs off the GUI thread: one worker object per job, in its own QThread.

A job is any callable ``job(progress, cancel)`` from the core (see ``core.jobs``). The
:class:`Worker` runs it in its thread, turns its progress calls into throttled signals and
its outcome into exactly one of ``finished(result)``, ``failed(message, details)`` or
``cancelled()``, always followed by ``done()``; it never touches a widget.

Widgets never see a worker: :meth:`JobRunner.start` returns a :class:`JobHandle` living in
the GUI thread, which re-emits the worker's signals there. So any slot connected to a
handle, a lambda included, runs in the GUI thread.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from imgcls_desktop.core.dataset.images import ImageError
from imgcls_desktop.core.dataset.model import DatasetError
from imgcls_desktop.core.jobs import Cancelled

Job = Callable[..., Any]
"""``job(progress, cancel)``, or ``job(progress, cancel, emit_metrics)`` when started with
``with_metrics=True``: ``emit_metrics(event)`` sends an object to the GUI thread."""

_PROGRESS_INTERVAL_S = 0.05
# Errors whose message is written for users; anything else also shows its type.
_USER_ERRORS = (DatasetError, ImageError, ValueError, OSError)


def describe_error(error: BaseException) -> str:
    """A one-line message for an exception, in the user's terms where the core gave them."""
    if isinstance(error, _USER_ERRORS) and str(error):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


_BACKGROUND_NICENESS = 10


def yield_cpu_to_the_gui() -> None:
    """Give every thread but the GUI thread a lower CPU priority (Linux; elsewhere nothing).

    Training keeps every core busy (OpenMP threads at full speed); at equal priority the
    GUI thread then waits its turn and the window stutters. Threads started later by a
    lowered thread (MXNet's engine and OpenMP threads) inherit its priority.
    """
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return
    gui_thread = os.getpid()  # on Linux the main thread's id is the process id
    for task in tasks.iterdir():
        thread_id = int(task.name)
        if thread_id == gui_thread:
            continue
        with contextlib.suppress(OSError):
            current = os.getpriority(os.PRIO_PROCESS, thread_id)
            os.setpriority(os.PRIO_PROCESS, thread_id, max(current, _BACKGROUND_NICENESS))


class _JobSignals(QObject):
    """The signals of a job, shared by the worker and its handle."""

    progress = Signal(int, int)
    metrics = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    done = Signal()

    SIGNAL_NAMES = ("progress", "metrics", "finished", "failed", "cancelled", "done")


class Worker(_JobSignals):
    """Runs one job in a worker thread and reports it through signals."""

    def __init__(self, job: Job, title: str, *, with_metrics: bool = False) -> None:
        super().__init__()
        self.title = title
        self._job = job
        self._with_metrics = with_metrics
        self._cancel = threading.Event()
        self._last_progress = 0.0

    def cancel(self) -> None:
        """Ask the job to stop; it does so at its next check (thread-safe)."""
        self._cancel.set()

    @property
    def is_cancelling(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        """Run the job (called in the worker thread) and emit its outcome, then ``done``."""
        yield_cpu_to_the_gui()
        try:
            extra = (self.metrics.emit,) if self._with_metrics else ()
            result = self._job(self._report_progress, self._cancel, *extra)
        except Cancelled:
            self.cancelled.emit()
        except Exception as error:  # every failure is reported in the window, never lost
            self.failed.emit(describe_error(error), traceback.format_exc())
        else:
            self.finished.emit(result)
        # Hand the worker back to the GUI thread, to be destroyed there once the handle lets
        # go of it. Destroyed in its own thread (deleteLater), a Python QObject needs the GIL
        # while Qt holds its connection lock; the GUI thread, holding the GIL and asking for
        # that lock, then deadlocks with it (seen in the tests with PySide6 6.11).
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())
        self.done.emit()

    def _report_progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_progress >= _PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.progress.emit(done, total)


class JobHandle(_JobSignals):
    """The GUI thread's side of a running job: the worker's signals, and Cancel."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.title = worker.title
        self._worker = worker
        for name in self.SIGNAL_NAMES:
            getattr(worker, name).connect(getattr(self, name))

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self._worker.cancel()

    @property
    def is_cancelling(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._worker.is_cancelling


# Every job thread until it has finished, whatever became of its runner: Qt aborts the
# process ("QThread: Destroyed while thread is still running") when a running QThread is
# destroyed, as when a runner whose shutdown timed out is dropped, or PySide cleans up at exit.
_JOB_THREADS: set[QThread] = set()


@atexit.register  # registered after PySide's own clean-up, so it runs before it
def _wait_for_job_threads() -> None:
    """At exit, wait for the job threads a shutdown could not stop in time.

    They were cancelled and end at their next check; a job that cannot be interrupted (the
    background import of MXNet, over a minute on a loaded machine) ends on its own.
    """
    for thread in list(_JOB_THREADS):
        if shiboken6.isValid(thread):
            thread.wait()


class JobRunner(QObject):
    """Starts workers in threads of their own and keeps them until their thread ends."""

    job_started = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[QThread, JobHandle] = {}
        self._shut_down = False

    def start(self, job: Job, title: str, *, with_metrics: bool = False) -> JobHandle:
        """Run ``job`` in a new thread; its signals arrive through the returned handle.

        After :meth:`shutdown` (the window is closing) nothing runs: the handle reports
        ``cancelled`` and ``done`` from the event loop, as a cancelled job would.
        """
        worker = Worker(job, title, with_metrics=with_metrics)
        handle = JobHandle(worker)
        if self._shut_down:
            QTimer.singleShot(0, handle, lambda: (worker.cancelled.emit(), worker.done.emit()))
            return handle
        thread = QThread()
        _JOB_THREADS.add(thread)
        thread.setObjectName(worker.title)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.done.connect(thread.quit)
        thread.finished.connect(self._forget_thread)
        thread.finished.connect(thread.deleteLater)
        self._running[thread] = handle
        thread.start()
        self.job_started.emit(handle)
        return handle

    @Slot()
    def _forget_thread(self) -> None:
        self._running.pop(self.sender(), None)
        _JOB_THREADS.discard(self.sender())

    def running(self) -> list[JobHandle]:
        """The jobs whose thread has not finished yet."""
        return list(self._running.values())

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel every job and wait for its thread; False if one did not stop in time.

        Called from the GUI thread, which then cannot deliver the queued ``quit``: the
        threads are told to quit directly, and end once their job returns. Jobs started
        afterwards (e.g. by a handler of a job that just ended) do not run.
        """
        self._shut_down = True
        for thread, handle in self._running.items():
            handle.cancel()
            thread.quit()
        # Qt 6.7.0 reports a zero-length wait as a failure ("cv wait failure"): wait 1 ms.
        timeout_ms = max(timeout_ms, 1)
        return all([thread.wait(timeout_ms) for thread in list(self._running)])


class JobSlot(QObject):
    """One job at a time for one tab: a second is refused while the first runs.

    The slot is free again as soon as the job's outcome arrives (before the tab's own
    handlers, which may start the next job), and ``busy_changed(False)`` follows once the
    job is done and no other job took its place.
    """

    busy_changed = Signal(bool)
    refused = Signal(str)

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._job: JobHandle | None = None
        self._latest: JobHandle | None = None  # the job whose ``done`` ends a busy spell

    def start(self, job: Job, title: str, *, with_metrics: bool = False) -> JobHandle | None:
        """Run ``job`` unless one is running (then None, and ``refused`` says why)."""
        if self._job is not None:
            self.refused.emit("Wait for the running job to finish, or cancel it.")
            return None
        handle = self._runner.start(job, title, with_metrics=with_metrics)
        for outcome in (handle.finished, handle.failed, handle.cancelled):
            outcome.connect(self._free)  # connected first: runs before the tab's handlers
        handle.done.connect(self._after_done)
        self._job = self._latest = handle
        self.busy_changed.emit(True)
        return handle

    def is_busy(self) -> bool:
        """True while a job of this slot runs."""
        return self._job is not None

    def cancel(self) -> None:
        """Ask the running job, if any, to stop."""
        if self._job is not None:
            self._job.cancel()

    @Slot()
    def _free(self) -> None:
        self._job = None

    @Slot()
    def _after_done(self) -> None:
        # A job's done can arrive after the outcome of the job its outcome started (its
        # thread held back on a loaded machine): only the latest job's done ends the spell.
        if self._job is None and self.sender() is self._latest:
            self.busy_changed.emit(False)
