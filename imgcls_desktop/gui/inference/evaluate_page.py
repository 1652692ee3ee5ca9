"""The *Evaluate* page: the open model measured on a labelled set, and its mistakes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from imgcls_desktop.core.app_state import AppState
from imgcls_desktop.core.corrections import proposed_dataset
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.evaluation import EvaluationReport, evaluate_dataset, failing_summary
from imgcls_desktop.core.inference import TOP_K, Predictor
from imgcls_desktop.core.jobs import JobContext
from imgcls_desktop.gui.inference.common import ask_discard, button, folder_of, run_job
from imgcls_desktop.gui.inference.confusion import (
    FAILING_COLOUR,
    ClassMetricsTable,
    ConfusionMatrixView,
)
from imgcls_desktop.gui.inference.review import counted
from imgcls_desktop.gui.inference.review_tables import CellImagesTable
from imgcls_desktop.gui.path_field import PathField, PathKind
from imgcls_desktop.gui.workers import JobHandle, JobSlot

DATA_FILTER = "Labelled data (*.lst *.rec *.jsonl *.manifest);;All files (*)"
NO_EVALUATION = "Evaluate the model on a labelled set."


def evaluate_job(predictor: Predictor, path: str, job: JobContext) -> EvaluationReport:
    """Evaluate the model on the labelled set at ``path`` (runs in a worker)."""
    dataset = load_dataset(Path(path))
    return evaluate_dataset(
        predictor, dataset, progress=job.progress, cancel=job.cancel, top_k=TOP_K
    )


class EvaluatePage(QWidget):
    """Evaluate the open model on a labelled set (by default its run's validation images);
    show the app state's evaluation: accuracy and failing classes, the confusion matrix, the
    per-class metrics, and the images of a clicked cell to review and correct."""

    status_message = Signal(str)
    evaluated = Signal(object)
    image_activated = Signal(object)
    """An :class:`~imgcls_desktop.core.corrections.ImageRef` double-clicked in the table."""

    def __init__(self, slot: JobSlot, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._slot = slot
        self._state = state
        self._proposed: Path | None = None  # the validation images proposed in the field
        self.eval_path = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Labelled data",
            placeholder="A folder per class, an im2rec .lst or a .rec",
            file_filter=DATA_FILTER,
            tooltip="Images with known classes: a folder of class folders, a .lst or a .rec "
            "(empty: the model's own validation images)",
        )
        self.evaluate_button = button(
            "Evaluate",
            "Predict every image of the set and compare with its class",
            lambda: self.evaluate(self.eval_path.text() or None),
        )
        top = QHBoxLayout()
        top.addWidget(self.eval_path, 1)
        top.addWidget(self.evaluate_button)
        self.summary = QLabel(NO_EVALUATION)
        self.summary.setToolTip("Accuracy on the set, and the classes the model fails")
        self.summary.setWordWrap(True)
        self.confusion = ConfusionMatrixView()
        self.confusion.cell_clicked.connect(self.show_cell)
        self.class_metrics = ClassMetricsTable()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.confusion)
        split.addWidget(self.class_metrics.table)
        split.setSizes([600, 500])
        self.cell_caption = QLabel()
        self.cell_images = CellImagesTable(slot)
        self.cell_images.image_activated.connect(self.image_activated)
        self.cell_images.status_message.connect(self.status_message)
        cell_box = QWidget()
        cell_layout = QVBoxLayout(cell_box)
        cell_layout.setContentsMargins(0, 0, 0, 0)
        cell_layout.addWidget(self.cell_caption)
        cell_layout.addWidget(self.cell_images, 1)
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(split)
        vertical.addWidget(cell_box)
        vertical.setSizes([400, 300])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(vertical, 1)

    def set_busy(self, busy: bool) -> None:
        """Enable Evaluate when a model is open and no job runs."""
        self.evaluate_button.setEnabled(not busy and self._state.model is not None)

    def model_changed(self) -> None:
        """Propose the new model's validation images (unless the user chose another set),
        and open the dialog beside them or the data set."""
        model = self._state.model
        validation = model.validation if model is not None else None
        if not self.eval_path.text() or Path(self.eval_path.text()) == self._proposed:
            self.eval_path.setText(str(validation) if validation else "")
            self._proposed = validation
        opened = self._state.dataset
        start = validation.parent if validation else (opened.path.parent if opened else None)
        self.eval_path.set_start_folder(start)
        self.show_evaluation()

    def evaluate(self, data: str | None = None) -> JobHandle | None:
        """Evaluate the open model on ``data`` (None: its run's validation images) in a
        worker; with corrections not yet added, first ask whether to discard them (then
        None)."""
        model = self._state.model
        if model is None:
            self.status_message.emit("Open a model first.")
            return None
        if data is None:
            if model.validation is None:
                self.status_message.emit(
                    f"{model.path.name} has no validation images of its own (it is not a run "
                    "of this app, or they are gone): choose a labelled set to evaluate on."
                )
                return None
            data = str(model.validation)
        self.eval_path.setText(data)
        then = partial(self.evaluate, data)
        if ask_discard(self, self.cell_images, then, self.status_message.emit) is not None:
            return None
        return run_job(
            self,
            self._slot,
            partial(evaluate_job, model.predictor, data),
            f"Evaluating on {data}",
            partial(self._on_evaluated, model.path, Path(data)),
            "Evaluation failed",
            self.status_message.emit,
        )

    def _on_evaluated(self, model: Path, data: Path, report: EvaluationReport) -> None:
        self._state.set_evaluation(model, data, report)
        self.status_message.emit(f"Accuracy {report.accuracy:.1%} on {report.count:,} images")
        self.evaluated.emit(report)

    def show_evaluation(self) -> None:
        """Show the app state's evaluation of the open model, or none."""
        evaluation = self._state.evaluation
        if evaluation is None:
            self.summary.setText(self._waiting_text())
            self.confusion.clear_matrix()
            self.class_metrics.show_metrics([], [])
            self.cell_images.show_images([], Path(), [])
            self.cell_caption.setText("")
            return
        report = evaluation.report
        text = f"<b>Accuracy {report.accuracy:.1%}</b> on {counted(report.count, 'image')}"
        if report.top_k_accuracy is not None:
            text += f" · top-{report.top_k} accuracy {report.top_k_accuracy:.1%}"
        if report.failing_classes:
            text += f" · <b style='color:{FAILING_COLOUR}'>failing: {failing_summary(report)}</b>"
        if report.skipped:
            text += f" · {counted(len(report.skipped), 'unreadable image')} left out"
        self.summary.setText(text)
        if not report.multi_label:
            self.confusion.show_matrix(report.class_names, report.confusion_matrix)
        self.class_metrics.show_metrics(report.per_class, report.failing_classes)
        root = folder_of(evaluation.data)
        self.cell_images.show_images([], root, report.class_names, report.dataset)
        opened = self._state.dataset
        self.cell_images.set_proposed_dataset(
            proposed_dataset(report.dataset, opened and opened.dataset)
        )
        self.cell_caption.setText(
            "" if report.multi_label else "Click a cell of the confusion matrix to see its images."
        )

    def _waiting_text(self) -> str:
        model = self._state.model
        if model is None:
            return "Open a model, then evaluate it on a labelled set."
        if model.validation is not None:
            return (
                "Click Evaluate to measure the model on its run's validation images "
                f"({model.validation.name}), or choose another labelled set."
            )
        return NO_EVALUATION

    @Slot(int, int)
    def show_cell(self, true_index: int, predicted_index: int) -> None:
        """List the images of one confusion-matrix cell, the model's surest first."""
        evaluation = self._state.evaluation
        if evaluation is None or evaluation.report.multi_label:
            return
        report = evaluation.report
        self.confusion.select_cell(true_index, predicted_index)
        images = report.cell(true_index, predicted_index)
        names = report.class_names
        root = folder_of(evaluation.data)
        self.cell_images.show_images(images, root, names, report.dataset)
        self.cell_caption.setText(
            f"<b>{names[true_index]}</b> images predicted as <b>{names[predicted_index]}</b>: "
            f"{len(images):,}, the model's surest first"
        )
