"""The contract between long core jobs and whoever drives them (CLI or GUI).

The core's long functions take ``progress(done, total)`` and a cancel flag (any object with
``is_set()``, usually a :class:`threading.Event`) as keywords. They check the flag between
units of work and raise :class:`Cancelled` when it is set.

A *task* is what a driver runs: ``task(job) -> result``, given a :class:`JobContext` that
carries the progress callable, the cancel flag and ``emit(event)`` for typed events (e.g.
the training events of :mod:`imgcls_desktop.core.training.callbacks`). A task hands
``job.progress`` and ``job.cancel`` on to the core functions it calls.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from typing import Callable, Protocol, TypeVar

ProgressFn = Callable[[int, int], None]
R = TypeVar("R")
T = TypeVar("T")


class CancelFlag(Protocol):
    """Anything with ``is_set()``; :class:`threading.Event` is the usual one."""

    def is_set(self) -> bool: ...


class Cancelled(Exception):
    """Raised by a job that stopped because its cancel flag was set."""


def no_progress(done: int, total: int) -> None:
    """A progress callable that ignores its reports."""


def no_events(event: object) -> None:
    """An ``emit`` that drops its events."""


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items: units of work for a pool."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def check_cancel(cancel: CancelFlag | None) -> None:
    """Raise :class:`Cancelled` when the flag is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()


class JobContext:
    """What a running task is given: where its progress and events go, and its cancel flag.

    The driver (the GUI's worker, a test) makes one per run; ``cancel`` is set by
    :meth:`request_cancel`, from any thread.
    """

    def __init__(
        self, progress: ProgressFn = no_progress, emit: Callable[[object], None] = no_events
    ) -> None:
        self.progress = progress
        self.emit = emit
        self.cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once cancelling was asked for."""
        return self.cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` when cancelling was asked for."""
        check_cancel(self.cancel)

    def request_cancel(self) -> None:
        """Ask the task to stop at its next check (thread-safe)."""
        self.cancel.set()


Task = Callable[[JobContext], R]
"""``task(job) -> result``: one job's work, run by a driver with a :class:`JobContext`."""
