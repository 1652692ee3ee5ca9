"""Rank 0's training events as lines: each event type survives the trip, anything else is
an ordinary line, and the launcher's progress follows the batches."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from imgcls_desktop.core.distributed.events import (
    EVENT_PREFIX,
    event_line,
    parse_event,
    run_progress,
)
from imgcls_desktop.core.training.callbacks import (
    BatchDone,
    CheckpointSaved,
    EpochDone,
    TrainingBegan,
)

BEGAN = TrainingBegan(
    run_dir=Path("/runs/shapes"),
    epochs=4,
    start_epoch=2,
    batches_per_epoch=10,
    class_names=("circle", "square"),
    history=({"epoch": 1, "val_accuracy": 0.5},),
    warnings=("few images",),
    best_epoch=1,
    notes=("40 layers loaded",),
)


@pytest.mark.parametrize(
    "event",
    [
        BEGAN,
        BatchDone(step=12, epoch=2, batch=2, loss=0.7, learning_rate=0.01, images_per_sec=None),
        EpochDone(epoch=2, logs={"epoch": 2, "val_accuracy": 0.75, "loss": 0.4}, best_epoch=2),
        CheckpointSaved(Path("/runs/shapes/image-classification-0002.params")),
    ],
)
def test_every_event_comes_back_as_it_was_sent(event: object) -> None:
    line = event_line(event)  # type: ignore[arg-type]
    assert line.startswith(EVENT_PREFIX) and "\n" not in line
    assert parse_event(line) == event


def test_a_loss_that_is_not_a_number_survives() -> None:
    event = BatchDone(step=1, epoch=1, batch=1, loss=math.nan, learning_rate=None, images_per_sec=1)
    parsed = parse_event(event_line(event))
    assert isinstance(parsed, BatchDone) and math.isnan(parsed.loss)


@pytest.mark.parametrize(
    "text",
    [
        "Epoch[1] Train-accuracy=0.500",
        EVENT_PREFIX + "{not json",
        EVENT_PREFIX + '{"event": "os.system", "command": "rm -rf /"}',
        EVENT_PREFIX + '{"event": "BatchDone", "step": 1}',
        EVENT_PREFIX + '["BatchDone"]',
        EVENT_PREFIX + '{"event": "CheckpointSaved", "path": null}',
    ],
)
def test_anything_else_is_an_ordinary_line(text: str) -> None:
    assert parse_event(text) is None


def test_progress_counts_the_batches_of_the_whole_run() -> None:
    batch = BatchDone(step=13, epoch=2, batch=3, loss=0.5, learning_rate=None, images_per_sec=None)
    assert run_progress(batch, None) is None  # before the start, nothing to count against
    assert run_progress(BEGAN, BEGAN) == (10, 40)
    assert run_progress(batch, BEGAN) == (13, 40)
    assert run_progress(EpochDone(4, {}, 4), BEGAN) == (40, 40)
    assert run_progress(CheckpointSaved(Path("x")), BEGAN) is None
