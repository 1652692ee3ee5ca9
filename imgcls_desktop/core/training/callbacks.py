"""Training events, Keras-style, and the built-in callbacks that act on them.

The loop calls, on every callback in order: ``on_train_begin(state)`` once,
``on_batch_end(step, logs)`` after every batch, ``on_epoch_end(epoch, logs)`` after every
completed epoch (validation included), ``on_checkpoint(path)`` after every saved checkpoint
and ``on_train_end(state)`` once, also after a stop or a failure. ``logs`` is a plain dict
of numbers (lists of per-class numbers under ``*_per_class`` keys); the keys are listed in
:mod:`imgcls_desktop.core.training.loop`.

A callback steers the run through :class:`TrainingState` (``callback.state``, set before
``on_train_begin``): ``state.request_stop(reason)`` ends the run after the current batch,
or after the current epoch when asked in ``on_epoch_end``. Early stopping, checkpoint
keeping and the metric log are ordinary callbacks, so every front end behaves the same.
Events come from the training thread: :class:`EventForwarder` hands them on as typed event
objects (:data:`TrainingEvent`), e.g. to a GUI that delivers them to its own thread.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from imgcls_desktop.core.artifacts import list_checkpoints, remove_checkpoint
from imgcls_desktop.core.atomic import atomic_write_text
from imgcls_desktop.core.jobs import ProgressFn, no_progress
from imgcls_desktop.core.training.run import METRICS_FILE

if TYPE_CHECKING:
    from imgcls_desktop.core.hyperparams import HyperParameters

Logs = dict[str, Any]


@dataclass
class TrainingState:
    """The run as callbacks see it, and how they steer it.

    ``epoch`` is the epoch in progress (1-based), ``step`` the batches trained so far over
    the whole run (resumed sessions included); ``start_epoch`` is this session's first epoch
    (above 1 when resuming) and ``history`` the logs of the epochs before it. ``best_epoch``
    and ``best_val_accuracy`` are updated by the loop before ``on_epoch_end``;
    ``recorded_best_epoch`` is the best epoch ``run.json`` names (what a crash leaves), updated
    once an epoch is committed: its checkpoint must stay on disk. ``notes`` are what the log
    should say before the first epoch: which layers were loaded and which are new, quick
    transfer's features computed or reused.
    """

    run_dir: Path
    epochs: int
    batches_per_epoch: int
    batch_size: int
    class_names: tuple[str, ...]
    hyperparameters: HyperParameters
    start_epoch: int = 1
    history: list[Logs] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    epoch: int = 0
    step: int = 0
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    recorded_best_epoch: int | None = None
    stop_reason: str | None = None
    early_stopped: bool = False
    #: Whether this process writes the run folder and validates: False on the workers of a
    #: distributed run other than rank 0.
    writes: bool = True
    checkpoint_saver: Callable[[int], Path] | None = field(default=None, repr=False)

    def request_stop(self, reason: str, *, early_stop: bool = False) -> None:
        """Stop after the current batch (or epoch, from ``on_epoch_end``); the first reason
        wins. ``early_stop`` marks the run as early-stopped rather than stopped."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.early_stopped = early_stop

    @property
    def stop_requested(self) -> bool:
        """Whether a stop has been requested."""
        return self.stop_reason is not None

    def save_checkpoint(self, epoch: int) -> Path:
        """Save the network as the checkpoint of ``epoch`` (the epoch just ended); its path.

        Every callback's ``on_checkpoint`` hears of it.
        """
        if self.checkpoint_saver is None:
            raise RuntimeError("checkpoints can be saved only while the loop runs")
        return self.checkpoint_saver(epoch)


class Callback:
    """Base class: every event does nothing; override the ones you need."""

    state: TrainingState

    def on_train_begin(self, state: TrainingState) -> None:
        """The run starts (or resumes); ``state.history`` holds the earlier epochs."""

    def on_batch_end(self, step: int, logs: Logs) -> None:
        """A batch was trained; ``step`` counts batches over the whole run (from 1)."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        """An epoch and its validation are complete."""

    def on_checkpoint(self, path: Path) -> None:
        """A checkpoint (``image-classification-NNNN.params``) was written."""

    def on_train_end(self, state: TrainingState) -> None:
        """The run ended: finished, stopped, early-stopped or failed."""


class EarlyStopping(Callback):
    """SageMaker's early stopping on validation accuracy.

    An epoch improves when its accuracy beats the best so far by at least ``tolerance``
    relative to that best (any gain counts when ``tolerance`` is 0 or the best is 0). From
    epoch ``min_epochs`` on, the run stops once ``patience`` epochs have passed without an
    improvement. A resumed run replays the earlier epochs first.
    """

    def __init__(self, *, min_epochs: int, patience: int, tolerance: float) -> None:
        self.min_epochs = min_epochs
        self.patience = patience
        self.tolerance = tolerance
        self._best: float | None = None
        self._waited = 0

    @classmethod
    def from_hyperparameters(cls, hp: HyperParameters) -> EarlyStopping:
        """The callback for ``hp``'s ``early_stopping_*`` values."""
        return cls(
            min_epochs=hp.early_stopping_min_epochs,
            patience=hp.early_stopping_patience,
            tolerance=hp.early_stopping_tolerance,
        )

    def on_train_begin(self, state: TrainingState) -> None:
        self._best, self._waited = None, 0
        for logs in state.history:
            self._observe(logs["val_accuracy"])

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._observe(logs["val_accuracy"])
        if epoch >= self.min_epochs and self._waited >= self.patience:
            self.state.request_stop(
                f"early stopping: validation accuracy has not improved for {self._waited} "
                f"epochs (best {self._best:.4f})",
                early_stop=True,
            )

    def _observe(self, accuracy: float) -> None:
        best = self._best
        if best is None or (accuracy > best and (accuracy - best) >= self.tolerance * best):
            self._best, self._waited = accuracy, 0
        else:
            self._waited += 1


class CheckpointKeeper(Callback):
    """Keeps the best-validation epoch's checkpoint and, with ``frequency``, every N-th.

    A new best is saved before the previous best is deleted, and the previous best is
    deleted only once ``run.json`` records a newer best (``state.recorded_best_epoch``): a
    crash, or a failure in a later callback, at any moment leaves the recorded best on disk.
    At the start, checkpoints the rules do not keep (e.g. of an epoch a crash left
    unrecorded) are removed.
    """

    def __init__(self, frequency: int | None = None) -> None:
        self.frequency = frequency
        self._previous_best: int | None = None
        self._superseded: list[int] = []

    def _by_frequency(self, epoch: int) -> bool:
        return bool(self.frequency) and epoch % self.frequency == 0

    def on_train_begin(self, state: TrainingState) -> None:
        self._previous_best, self._superseded = state.best_epoch, []
        for epoch in list_checkpoints(state.run_dir):
            recorded = epoch < state.start_epoch
            if not recorded or not (epoch == state.best_epoch or self._by_frequency(epoch)):
                remove_checkpoint(state.run_dir, epoch)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._remove_superseded()
        is_best = self.state.best_epoch == epoch
        if is_best or self._by_frequency(epoch):
            self.state.save_checkpoint(epoch)
        previous = self._previous_best
        if is_best:
            if previous is not None and not self._by_frequency(previous):
                self._superseded.append(previous)
            self._previous_best = epoch

    def on_train_end(self, state: TrainingState) -> None:
        self._remove_superseded()

    def _remove_superseded(self) -> None:
        """Delete the former bests, except the one ``run.json`` still names."""
        recorded = self.state.recorded_best_epoch
        for epoch in self._superseded:
            if epoch != recorded:
                remove_checkpoint(self.state.run_dir, epoch)
        self._superseded = [epoch for epoch in self._superseded if epoch == recorded]


class MetricsLog(Callback):
    """``metrics.jsonl``: one JSON line per epoch (``{"epoch": N, ...logs}``), written to
    disk (flushed and fsynced) as each epoch ends.

    On a resumed run the file is first cut back to the epochs before ``start_epoch``, so the
    history continues without gaps or repeated epochs.
    """

    def __init__(self) -> None:
        self._file: IO[str] | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        path = state.run_dir / METRICS_FILE
        atomic_write_text(path, "".join(_json_line(logs) for logs in state.history))
        self._file = path.open("a", encoding="utf-8")

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        assert self._file is not None, "on_train_begin opens the log"
        self._file.write(_json_line({"epoch": epoch, **logs}))
        self._file.flush()
        os.fsync(self._file.fileno())

    def on_train_end(self, state: TrainingState) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _json_line(logs: Logs) -> str:
    return json.dumps(logs, ensure_ascii=False) + "\n"


def format_epoch_line(epoch: int, logs: Logs) -> str:
    """An epoch in SageMaker's log style:
    ``Epoch[3] Train-accuracy=0.981 Validation-accuracy=0.972 Time cost=12.3``."""
    parts = [f"Epoch[{epoch}]"]
    for key, label in _EPOCH_LINE_FIELDS:
        if key in logs:
            parts.append(f"{label}={logs[key]:.{3 if key != 'epoch_time' else 1}f}")
    return " ".join(parts)


_EPOCH_LINE_FIELDS = (
    ("train_accuracy", "Train-accuracy"),
    ("val_accuracy", "Validation-accuracy"),
    ("val_top_k_accuracy", "Validation-top_k_accuracy"),
    ("val_exact_match", "Validation-exact_match"),
    ("epoch_time", "Time cost"),
)


@dataclass(frozen=True)
class TrainingBegan:
    """A run starts or resumes at ``start_epoch``; ``history`` holds the earlier epochs'
    logs (``metrics.jsonl``); ``notes`` what the user should know that is no warning (which
    layers were loaded and which are new; quick transfer's features, computed or reused)."""

    run_dir: Path
    epochs: int
    start_epoch: int
    batches_per_epoch: int
    class_names: tuple[str, ...]
    history: tuple[Logs, ...]
    warnings: tuple[str, ...]
    best_epoch: int | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchDone:
    """A logged batch: the mean loss since the previous one, the learning rate and speed."""

    step: int
    epoch: int
    batch: int
    loss: float
    learning_rate: float | None
    images_per_sec: float | None


@dataclass(frozen=True)
class EpochDone:
    """An epoch and its validation are complete; ``logs`` as the loop documents them, and
    the best epoch so far (this one or an earlier)."""

    epoch: int
    logs: Mapping[str, Any]
    best_epoch: int | None


@dataclass(frozen=True)
class CheckpointSaved:
    """A checkpoint was written."""

    path: Path


TrainingEvent = Union[TrainingBegan, BatchDone, EpochDone, CheckpointSaved]
_BATCH_INTERVAL_S = 0.1


class EventForwarder(Callback):
    """Hands every event on to ``emit`` as a :data:`TrainingEvent` (from the training thread).

    Batches are sent only on the loop's logging steps (when it read the loss) and at most
    every 0.1 s of ``clock`` (seconds); the start, every epoch and checkpoint always.
    ``progress`` hears of every batch, counted over the whole run.
    """

    def __init__(
        self,
        emit: Callable[[TrainingEvent], None],
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
            TrainingBegan(
                run_dir=state.run_dir,
                epochs=state.epochs,
                start_epoch=state.start_epoch,
                batches_per_epoch=state.batches_per_epoch,
                class_names=tuple(state.class_names),
                history=tuple(dict(logs) for logs in state.history),
                warnings=tuple(state.warnings),
                best_epoch=state.best_epoch,
                notes=tuple(state.notes),
            )
        )

    def on_batch_end(self, step: int, logs: Logs) -> None:
        per_epoch = self.state.batches_per_epoch
        epoch, batch = int(logs.get("epoch", 1)), int(logs.get("batch", 0))
        self._progress((epoch - 1) * per_epoch + batch, self.state.epochs * per_epoch)
        now = self._clock()
        if "loss" not in logs:
            return
        if self._last_batch is not None and now - self._last_batch < _BATCH_INTERVAL_S:
            return
        self._last_batch = now
        rate, speed = logs.get("learning_rate"), logs.get("images_per_sec")
        self._emit(
            BatchDone(
                step=step,
                epoch=epoch,
                batch=batch,
                loss=float(logs["loss"]),
                learning_rate=None if rate is None else float(rate),
                images_per_sec=None if speed is None else float(speed),
            )
        )

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._emit(EpochDone(epoch, {**logs, "epoch": epoch}, self.state.best_epoch))

    def on_checkpoint(self, path: Path) -> None:
        self._emit(CheckpointSaved(Path(path)))
