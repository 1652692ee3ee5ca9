"""The bridge from the training loop's callbacks to the GUI: plain dicts, never widgets."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgcls_desktop.core.jobs import ProgressFn, no_progress
from imgcls_desktop.core.training.callbacks import Callback, Logs, TrainingState

Emit = Callable[[dict[str, Any]], None]
_BATCH_INTERVAL_S = 0.1


class MetricsBridge(Callback):
    """Forwards training events as ``{"event": ..., ...}`` dicts through ``emit``.

    Batch events are sent only on the loop's logging steps (when it read the loss) and at
    most every 0.1 s of ``clock`` (seconds); every epoch, checkpoint and the start are
    always sent. ``progress`` hears of every batch, counted over the whole run (for the
    status bar).
    """

    def __init__(
        self,
        emit: Emit,
        progress: ProgressFn = no_progress,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._progress = progress
        self._clock = clock
        self._last_batch: float | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        self._emit(
            {
                "event": "begin",
                "run_dir": str(state.run_dir),
                "epochs": state.epochs,
                "start_epoch": state.start_epoch,
                "batches_per_epoch": state.batches_per_epoch,
                "class_names": list(state.class_names),
                "history": [dict(logs) for logs in state.history],
                "warnings": list(state.warnings),
            }
        )

    def on_batch_end(self, step: int, logs: Logs) -> None:
        per_epoch = self.state.batches_per_epoch
        done = (int(logs.get("epoch", 1)) - 1) * per_epoch + int(logs.get("batch", 0))
        self._progress(done, self.state.epochs * per_epoch)
        now = self._clock()
        if "loss" not in logs:
            return
        if self._last_batch is not None and now - self._last_batch < _BATCH_INTERVAL_S:
            return
        self._last_batch = now
        self._emit({"event": "batch", "step": step, **logs})

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._emit({"event": "epoch", **logs, "epoch": epoch})

    def on_checkpoint(self, path: Path) -> None:
        self._emit({"event": "checkpoint", "path": str(path)})
