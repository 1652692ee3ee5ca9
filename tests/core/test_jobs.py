"""The job context every task is given: progress, cancel flag and events."""

from __future__ import annotations

import pytest

from imgcls_desktop.core.jobs import Cancelled, JobContext


def test_a_context_passes_progress_and_events_on() -> None:
    reports: list[tuple[int, int]] = []
    events: list[object] = []
    job = JobContext(lambda done, total: reports.append((done, total)), events.append)
    job.progress(1, 3)
    job.emit("epoch 1")
    assert reports == [(1, 3)] and events == ["epoch 1"]


def test_check_raises_cancelled_once_cancelling_is_asked_for() -> None:
    job = JobContext()
    job.check()
    assert not job.cancelled and not job.cancel.is_set()
    job.request_cancel()
    assert job.cancelled and job.cancel.is_set()  # the flag the core's functions take
    with pytest.raises(Cancelled):
        job.check()
