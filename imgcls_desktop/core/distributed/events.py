"""Rank 0's training events, carried from a worker process to the launcher as lines.

A worker's callbacks run in its own process; the window and the CLI that launched it see
only its output. Rank 0 (the worker that writes the run folder) prints each event the
single-process :class:`~imgcls_desktop.core.training.callbacks.EventForwarder` would emit
as one line, ``imgcls-event {JSON}``, and :func:`parse_event` turns such a line back into the
event, so the curves, the progress bars and the log follow a distributed run as they follow
one in this process. A line is only data: JSON into one of four known event types, anything
else is an ordinary line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..training.callbacks import (
    BatchDone,
    CheckpointSaved,
    EpochDone,
    EventForwarder,
    Logs,
    TrainingBegan,
    TrainingEvent,
    TrainingState,
)

EVENT_PREFIX = "imgcls-event "
_TYPES: dict[str, type[Any]] = {
    kind.__name__: kind for kind in (TrainingBegan, BatchDone, EpochDone, CheckpointSaved)
}


def event_line(event: TrainingEvent) -> str:
    """The line a worker prints for ``event``."""
    fields = {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}
    return EVENT_PREFIX + json.dumps({"event": type(event).__name__, **fields}, default=str)


def parse_event(text: str) -> TrainingEvent | None:
    """The event an :func:`event_line` carries; None for any other line."""
    if not text.startswith(EVENT_PREFIX):
        return None
    try:
        fields = json.loads(text[len(EVENT_PREFIX) :])
        kind = _TYPES[fields.pop("event")]
        if kind is TrainingBegan:
            fields["run_dir"] = Path(fields["run_dir"])
            for name in ("class_names", "history", "warnings", "notes"):
                fields[name] = tuple(fields[name])
        elif kind is CheckpointSaved:
            fields["path"] = Path(fields["path"])
        return kind(**fields)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def run_progress(event: TrainingEvent, began: TrainingBegan | None) -> tuple[int, int] | None:
    """Batches done and in all, as an event tells them (``began``: the run's start)."""
    if began is None:
        return None
    per_epoch = max(1, began.batches_per_epoch)
    total = began.epochs * per_epoch
    if isinstance(event, TrainingBegan):
        return (event.start_epoch - 1) * per_epoch, total
    if isinstance(event, BatchDone):
        return (event.epoch - 1) * per_epoch + event.batch, total
    if isinstance(event, EpochDone):
        return min(event.epoch * per_epoch, total), total
    return None


class ChiefEvents(EventForwarder):
    """In a worker: rank 0 says each training event as an :func:`event_line`; the other
    workers say nothing (their batches are rank 0's too, their epochs are not theirs)."""

    def __init__(self, say: Callable[[str], object]) -> None:
        super().__init__(lambda event: say(event_line(event)))

    def on_train_begin(self, state: TrainingState) -> None:
        if state.writes:
            super().on_train_begin(state)

    def on_batch_end(self, step: int, logs: Logs) -> None:
        if self.state.writes:
            super().on_batch_end(step, logs)
