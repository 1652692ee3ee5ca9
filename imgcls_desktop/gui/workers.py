"""Running core tasks off the GUI thread: one worker object per job, in its own QThread.

A task is ``task(job)`` with a :class:`~imgcls_desktop.core.jobs.JobContext` (progress,
cancel flag, ``emit`` for typed events; see ``core.jobs``). The :class:`Worker` runs it in
its thread, turns its progress calls into throttled signals, its events into ``event`` and
its outcome into exactly one of ``succeeded(result)``, ``failed(message, details)`` or
``cancelled()``, always followed by ``finished()`` (last, as ``QThread.finished``); it never
touches a widget.

Widgets never see a worker: :meth:`JobRunner.start` returns a :class:`JobHandle` living in
the GUI thread, which re-emits the worker's signals there. So any slot connected to a
handle, a lambda included, runs in the GUI thread. A :class:`JobSlot` owns one tab's jobs,
one at a time, with an explicit :class:`SlotPolicy` for a second start.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import os
import time
import traceback
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from imgcls_desktop.core.dataset.images import ImageError
from imgcls_desktop.core.dataset.samples import DatasetError
from imgcls_desktop.core.jobs import Cancelled, JobContext, Task

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
    event = Signal(object)  # a task's typed event (shadows QObject.event, never called here)
    succeeded = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    finished = Signal()

    SIGNAL_NAMES = ("progress", "event", "succeeded", "failed", "cancelled", "finished")


class Worker(_JobSignals):
    """Runs one task in a worker thread and reports it through signals."""

    def __init__(self, task: Task[Any], title: str) -> None:
        super().__init__()
        self.title = title
        self._task = task
        self._context = JobContext(self._report_progress, self.event.emit)
        self._last_progress = 0.0

    def cancel(self) -> None:
        """Ask the task to stop; it does so at its next check (thread-safe)."""
        self._context.request_cancel()

    @property
    def is_cancelling(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._context.cancelled

    @Slot()
    def run(self) -> None:
        """Run the task (called in the worker thread) and emit its outcome, then
        ``finished``. A task cancelled before it began does not run."""
        yield_cpu_to_the_gui()
        try:
            self._context.check()
            result = self._task(self._context)
        except Cancelled:
            self.cancelled.emit()
        except Exception as error:  # every failure is reported in the window, never lost
            self.failed.emit(describe_error(error), traceback.format_exc())
        else:
            self.succeeded.emit(result)
        # The worker stays in this thread's affinity. Moving it back to the GUI thread here
        # (moveToThread, which takes Qt locks while this thread holds the GIL) deadlocked with
        # the GUI thread destroying a widget, which holds such a lock and waits for the GIL.
        # Nor is it destroyed in its own thread (deleteLater deadlocks the same way): the
        # runner keeps its handle until the thread has finished, so it goes from the GUI thread.
        self.finished.emit()

    def end_unrun(self) -> None:
        """Report a task that will never run as cancelled (from the event loop, so the
        caller can connect to the handle first)."""
        QTimer.singleShot(0, self, lambda: (self.cancelled.emit(), self.finished.emit()))

    def _report_progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_progress >= _PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.progress.emit(done, total)


class JobHandle(_JobSignals):
    """The GUI thread's side of a job: the worker's signals, and Cancel."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.title = worker.title
        self._worker = worker
        for name in self.SIGNAL_NAMES:
            getattr(worker, name).connect(getattr(self, name))

    def cancel(self) -> None:
        """Ask the job to stop at its next check (before it runs: it never runs)."""
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

    def start(self, task: Task[Any], title: str) -> JobHandle:
        """Run ``task(job)`` in a new thread; its signals arrive through the returned handle.

        After :meth:`shutdown` (the window is closing) nothing runs: the handle reports
        ``cancelled`` and ``finished`` from the event loop, as a cancelled job would.
        """
        handle = self.prepare(task, title)
        self.launch(handle)
        return handle

    def prepare(self, task: Task[Any], title: str) -> JobHandle:
        """A handle for ``task``, not started yet: :meth:`launch` starts it (a
        :class:`JobSlot` hands out handles for jobs that wait their turn)."""
        return JobHandle(Worker(task, title))

    def launch(self, handle: JobHandle) -> None:
        """Start the job of a handle from :meth:`prepare` (once); a job cancelled before
        it started, or launched after :meth:`shutdown`, reports ``cancelled`` without running."""
        worker = handle._worker
        if self._shut_down or worker.is_cancelling:
            worker.end_unrun()
            return
        thread = QThread()
        _JOB_THREADS.add(thread)
        thread.setObjectName(worker.title)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit)
        thread.finished.connect(self._forget_thread)
        thread.finished.connect(thread.deleteLater)
        self._running[thread] = handle
        thread.start()
        self.job_started.emit(handle)

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


class SlotPolicy(enum.Enum):
    """What a :class:`JobSlot` does with a start while its job runs."""

    REFUSE = "refuse"
    """The new job is refused (``refused`` says why); the running one goes on."""
    REPLACE = "replace"
    """The running job is cancelled and the new one runs once it has ended; of several
    starts meanwhile only the latest runs (the others report ``cancelled``)."""


class JobSlot(QObject):
    """One job at a time for one owner (a tab, a dialog), with an explicit policy.

    The slot is free again as soon as the job's outcome arrives (before the owner's own
    handlers, which may start the next job), and ``busy_changed(False)`` follows once the
    job has finished and no other job took its place.
    """

    busy_changed = Signal(bool)
    refused = Signal(str)

    def __init__(
        self,
        runner: JobRunner,
        parent: QObject | None = None,
        *,
        policy: SlotPolicy = SlotPolicy.REFUSE,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._policy = policy
        self._job: JobHandle | None = None  # running, its outcome not yet arrived
        self._waiting: JobHandle | None = None  # REPLACE: the latest start, to run next
        self._latest: JobHandle | None = None  # the job whose ``finished`` ends a busy spell

    def start(self, task: Task[Any], title: str) -> JobHandle | None:
        """Run ``task`` in this slot as its policy says. REFUSE: None while a job runs
        (``refused`` says why). REPLACE: the handle of a job that runs once the running
        one, now cancelled, has ended."""
        if self._job is not None and self._policy is SlotPolicy.REFUSE:
            self.refused.emit("Wait for the running job to finish, or cancel it.")
            return None
        handle = self._runner.prepare(task, title)
        for outcome in (handle.succeeded, handle.failed, handle.cancelled):
            outcome.connect(self._free)  # connected first: runs before the owner's handlers
        handle.finished.connect(self._after_finished)
        if self._job is None:
            return self._launch(handle)
        self._drop_waiting()
        self._waiting = handle
        self._job.cancel()
        return handle

    def is_busy(self) -> bool:
        """True while a job of this slot runs or waits to."""
        return self._job is not None or self._waiting is not None

    def cancel(self) -> None:
        """Ask the running job, if any, to stop; a job waiting its turn never runs."""
        self._drop_waiting()
        if self._job is not None:
            self._job.cancel()

    def _launch(self, handle: JobHandle) -> JobHandle:
        self._job = self._latest = handle
        self._runner.launch(handle)
        self.busy_changed.emit(True)
        return handle

    def _drop_waiting(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            self._runner.launch(self._waiting)  # reports cancelled without running
            self._waiting = None

    @Slot()
    def _free(self) -> None:
        if self.sender() is not self._job:
            return  # a dropped job that never ran
        self._job = None
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            self._launch(waiting)

    @Slot()
    def _after_finished(self) -> None:
        # A job's finished can arrive after the outcome of the job its outcome started (its
        # thread held back on a loaded machine): only the latest job's finished ends the spell.
        if self._job is None and self._waiting is None and self.sender() is self._latest:
            self.busy_changed.emit(False)
