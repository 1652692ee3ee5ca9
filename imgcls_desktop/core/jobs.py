"""The contract between long core jobs and whoever drives them (CLI or GUI).

A job takes ``progress(done, total)`` and a cancel flag (any object with ``is_set()``,
usually a :class:`threading.Event`). It checks the flag between units of work and raises
:class:`Cancelled` when it is set.
"""

from __future__ import annotations

from typing import Callable, Protocol

ProgressFn = Callable[[int, int], None]


class CancelFlag(Protocol):
    """Anything with ``is_set()``; :class:`threading.Event` is the usual one."""

    def is_set(self) -> bool: ...


class Cancelled(Exception):
    """Raised by a job that stopped because its cancel flag was set."""


def no_progress(done: int, total: int) -> None:
    """A progress callable that ignores its reports."""


def check_cancel(cancel: CancelFlag | None) -> None:
    """Raise :class:`Cancelled` when the flag is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()
