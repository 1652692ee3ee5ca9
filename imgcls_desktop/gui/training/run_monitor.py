"""The Training tab's right side: progress, speed, the curves, the best epoch per class and
the log of the run in focus, fed by training events or read from a run folder."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.training.callbacks import (
    BatchDone,
    CheckpointSaved,
    EpochDone,
    TrainingBegan,
    TrainingEvent,
    format_epoch_line,
)
from imgcls_desktop.core.training.run import CLASSES_FILE, read_metrics
from imgcls_desktop.core.training.standing import RunStanding
from imgcls_desktop.gui.training.plots import TrainingPlots
from imgcls_desktop.gui.widgets import read_only_table

_NO_EPOCH = "No finished epoch to show yet."


class RunMonitor(QWidget):
    """Progress bars and speed above the curves; per class, log and ``extra`` pages below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.epoch_bar = _bar("epochProgress", "Epoch: not started", "Progress within the epoch")
        self.run_bar = _bar("runProgress", "Run: none yet", "The run in focus: where it stands")
        self.speed = QLabel()
        self.speed.setObjectName("trainingSpeed")
        self.speed.setToolTip("Training speed and the estimated time left")
        self.plots = TrainingPlots()
        self.per_class_title = QLabel(_NO_EPOCH)
        self.per_class_title.setObjectName("perClassEpoch")
        self.per_class = read_only_table(
            ["Class", "Precision", "Recall"],
            "Validation precision and recall of each class at the best epoch (the kept model)",
        )
        self.per_class.setObjectName("perClass")
        self.log = QPlainTextEdit()
        self.log.setObjectName("trainingLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setToolTip("One line per epoch, in SageMaker's style")
        self.details = QTabWidget()
        per_class_page = QWidget()
        per_class_layout = QVBoxLayout(per_class_page)
        per_class_layout.setContentsMargins(0, 0, 0, 0)
        per_class_layout.addWidget(self.per_class_title)
        per_class_layout.addWidget(self.per_class, 1)
        self.details.addTab(per_class_page, "Per class (best epoch)")
        self.details.addTab(self.log, "Log")
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.epoch_bar, 1)
        progress_row.addWidget(self.run_bar, 1)
        progress_row.addWidget(self.speed)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.plots)
        split.addWidget(self.details)
        split.setSizes([520, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(progress_row)
        layout.addWidget(split, 1)
        self._class_names: tuple[str, ...] = ()
        self._epochs: dict[int, Mapping[str, Any]] = {}
        self._best_epoch: int | None = None
        self._batches_per_epoch = 1
        self._eta = ""

    def add_page(self, page: QWidget, title: str) -> None:
        """Add a page beside Per class and Log."""
        self.details.addTab(page, title)

    # A run trained here -------------------------------------------------------------------

    def clear(self) -> None:
        """Forget the run shown: a new one is being prepared."""
        self.plots.clear()
        self.log.clear()
        self.speed.setText("")
        self.epoch_bar.setValue(0)
        self.epoch_bar.setFormat("Epoch: not started")
        self._class_names, self._epochs, self._best_epoch = (), {}, None
        self._show_per_class()

    def show_event(self, event: TrainingEvent) -> None:
        """Show one training event."""
        if isinstance(event, TrainingBegan):
            self._began(event)
        elif isinstance(event, BatchDone):
            self._batch(event)
        elif isinstance(event, EpochDone):
            self._epoch(event)
        elif isinstance(event, CheckpointSaved):
            self.append_log(f"Saved {event.path.name}")

    def _began(self, event: TrainingBegan) -> None:
        self._batches_per_epoch = max(1, event.batches_per_epoch)
        self._show_history(event.class_names, event.history, event.epochs, event.best_epoch)
        self.run_bar.setRange(0, event.epochs)
        self.run_bar.setValue(event.start_epoch - 1)
        self.run_bar.setFormat(f"Epoch %v of {event.epochs}")
        for warning in event.warnings:
            self.append_log(f"Warning: {warning}")
        for note in event.notes:
            self.append_log(note[0].upper() + note[1:])
        self.append_log(
            f"Training {len(event.class_names)} classes from epoch {event.start_epoch} of "
            f"{event.epochs}, {event.batches_per_epoch} batches per epoch, in {event.run_dir}"
        )

    def _batch(self, event: BatchDone) -> None:
        position = event.epoch - 1 + event.batch / self._batches_per_epoch
        logs = {"loss": event.loss}
        if event.learning_rate is not None:
            logs["learning_rate"] = event.learning_rate
        self.plots.add_batch(position, logs)
        self.epoch_bar.setRange(0, self._batches_per_epoch)
        self.epoch_bar.setValue(event.batch)
        self.epoch_bar.setFormat(f"Epoch {event.epoch}: batch %v of %m")
        if event.images_per_sec is not None:
            self._show_speed(event.images_per_sec)

    def _epoch(self, event: EpochDone) -> None:
        logs = event.logs
        self.plots.add_epoch(event.epoch, logs)
        self.run_bar.setValue(event.epoch)
        self.append_log(format_epoch_line(event.epoch, dict(logs)))
        eta = logs.get("eta_seconds")
        self._eta = duration(eta) if isinstance(eta, (int, float)) and eta > 0 else ""
        self._show_speed(float(logs.get("images_per_sec", 0.0)))
        self._epochs[event.epoch] = logs
        self._best_epoch = event.best_epoch
        self._show_per_class()

    def _show_speed(self, images_per_second: float) -> None:
        left = f" · {self._eta} left" if self._eta else ""
        self.speed.setText(f"{images_per_second:,.0f} images/s{left}")

    # A run read from its folder -----------------------------------------------------------

    def show_run(self, run: RunStanding) -> None:
        """Show a run that is not being trained here: its curves (``metrics.jsonl``), where
        it stands, and its best epoch per class."""
        self.clear()
        info = run.info
        if info is None:
            self.show_standing(run)
            return
        history = read_metrics(run.path, info.last_completed_epoch)
        self._show_history(_class_names(run.path), history, info.epochs, info.best_epoch)
        self.show_standing(run)

    def show_standing(self, run: RunStanding) -> None:
        """Say where ``run`` stands on the run bar, e.g. "run-1: stopped at epoch 9 of 60"."""
        info = run.info
        self.run_bar.setRange(0, max(1, info.epochs if info else 1))
        self.run_bar.setValue(info.last_completed_epoch if info else 0)
        self.run_bar.setFormat(f"{run.path.name}: {run.status}")

    def _show_history(
        self,
        class_names: Sequence[str],
        history: Sequence[Mapping[str, Any]],
        epochs: int,
        best_epoch: int | None,
    ) -> None:
        self._class_names = tuple(class_names)
        self._epochs = {int(logs.get("epoch", n)): logs for n, logs in enumerate(history, 1)}
        self._best_epoch = best_epoch
        self.plots.show_history(history, epochs)
        self._show_per_class()

    def _show_per_class(self) -> None:
        logs = self._epochs.get(self._best_epoch) if self._best_epoch else None
        if logs is None:
            self.per_class_title.setText(_NO_EPOCH)
            self.per_class.setRowCount(0)
            return
        precision = logs.get("val_precision_per_class") or []
        recall = logs.get("val_recall_per_class") or []
        accuracy = logs.get("val_accuracy")
        of = f" (validation accuracy {accuracy:.3f})" if isinstance(accuracy, float) else ""
        self.per_class_title.setText(
            f"Epoch {self._best_epoch}, the best so far{of}: the model the run keeps"
        )
        self.per_class.setRowCount(len(self._class_names))
        for row, name in enumerate(self._class_names):
            values = (
                name,
                f"{precision[row]:.3f}" if row < len(precision) else "",
                f"{recall[row]:.3f}" if row < len(recall) else "",
            )
            for column, text in enumerate(values):
                self.per_class.setItem(row, column, QTableWidgetItem(text))

    def append_log(self, line: str) -> None:
        """Add a line to the log."""
        self.log.appendPlainText(line)


def _bar(name: str, text: str, tip: str) -> QProgressBar:
    bar = QProgressBar()
    bar.setObjectName(name)
    bar.setFormat(text)
    bar.setValue(0)
    bar.setToolTip(tip)
    return bar


def _class_names(run_dir: Path) -> tuple[str, ...]:
    """The run's class names (``classes.json``), or none when it cannot be read."""
    try:
        names = json.loads((run_dir / CLASSES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    return tuple(str(name) for name in names) if isinstance(names, list) else ()


def duration(total_seconds: float) -> str:
    """A duration for people: "42 s", "3 min 05 s", "2 h 07 min"."""
    seconds = round(total_seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
