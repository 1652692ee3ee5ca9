"""The Inference tab: open a model, label a folder, classify one image, evaluate on a set.

The tab shows the app state's open model (``state.model``) and its evaluation
(``state.evaluation``) and changes them only through the state: after a successful open
(``state.open_model``) and after an evaluation (``state.set_evaluation``). The pages do the
work; the tab wires them and offers the window its public API.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from imgcls_desktop.core.app_state import AppState, Part, default_runs_folder
from imgcls_desktop.core.corrections import ImageRef
from imgcls_desktop.core.inference import Predictor, open_predictor
from imgcls_desktop.core.jobs import JobContext
from imgcls_desktop.core.models import run_validation_data
from imgcls_desktop.core.precision import choose_precision, run_check_data
from imgcls_desktop.gui.dialogs import show_error
from imgcls_desktop.gui.inference.common import folder_of, run_job
from imgcls_desktop.gui.inference.evaluate_page import EvaluatePage
from imgcls_desktop.gui.inference.image_page import ImagePage
from imgcls_desktop.gui.inference.label_page import LabelPage
from imgcls_desktop.gui.inference.model_box import ModelBox
from imgcls_desktop.gui.workers import JobHandle, JobRunner, JobSlot


def open_model_job(
    path: str, labels: str, precision: str, job: JobContext
) -> tuple[Predictor, Path | None]:
    """Open the model at ``path`` for inference at ``precision`` (checked on the run's
    images), with its run's validation images (runs in a worker)."""
    predictor = open_predictor(Path(path), labels=Path(labels) if labels else None)
    if precision != "fp32":
        predictor = choose_precision(
            predictor,
            precision,
            run_check_data(Path(path)),
            progress=job.progress,
            cancel=job.cancel,
        )
    return predictor, run_validation_data(Path(path))


class InferenceTab(QWidget):
    """Open a model; label a folder, classify one image, or evaluate on a labelled set."""

    status_message = Signal(str)
    folder_labelled = Signal(str, int)
    evaluated = Signal(object)
    """The :class:`~imgcls_desktop.core.evaluation.EvaluationReport` just made."""

    LABEL_PAGE, IMAGE_PAGE, EVALUATE_PAGE = range(3)

    def __init__(self, jobs: JobRunner, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._slot = JobSlot(jobs, self)
        self._slot.refused.connect(self.status_message)
        self.model_box = ModelBox()
        self.model_box.open_requested.connect(self.open_model)
        self.model_box.precision_changed.connect(self._reopen_at_precision)
        self.label_page = LabelPage(self._slot, state)
        self.image_page = ImagePage(self._slot, state)
        self.evaluate_page = EvaluatePage(self._slot, state)
        self.pages = QTabWidget()
        self.pages.addTab(self.label_page, "Label a Folder")
        self.pages.addTab(self.image_page, "One Image")
        self.pages.addTab(self.evaluate_page, "Evaluate")
        for page in (self.label_page, self.image_page, self.evaluate_page):
            page.status_message.connect(self.status_message)
        for page in (self.label_page, self.evaluate_page):
            page.image_activated.connect(self._show_image_ref)
        self.label_page.folder_labelled.connect(self.folder_labelled)
        self.label_page.folder_labelled.connect(self._on_labelled)
        self.evaluate_page.evaluated.connect(self.evaluated)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_box)
        layout.addWidget(self.pages, 1)

        self._slot.busy_changed.connect(self._set_busy)
        state.subscribe(Part.MODEL, self._model_changed)
        state.subscribe(Part.EVALUATION, self.evaluate_page.show_evaluation)
        state.subscribe(Part.DATASET, self._start_folders)
        self._model_changed()
        self._set_busy(False)

    # The window's API ----------------------------------------------------------------------

    def open_model(self, path: str) -> JobHandle | None:
        """Open the model at ``path`` in a worker; the open model stays open (and its path
        shown) when this one cannot be opened."""
        if not path:
            show_error(self, "No model", "Choose a run folder, a model.tar.gz or a checkpoint.")
            return None
        self.model_box.model_path.setText(path)
        job = run_job(
            self,
            self._slot,
            partial(
                open_model_job, path, self.model_box.labels(), self.model_box.chosen_precision()
            ),
            f"Opening {Path(path).name}",
            partial(self._on_opened, Path(path)),
            "Cannot open the model",
            self.status_message.emit,
        )
        if job is None:
            self._model_changed()
        else:
            job.failed.connect(lambda *_reason: self._model_changed())
            job.cancelled.connect(self._model_changed)
        return job

    def choose_model(self) -> None:
        """Ask for a model with a file dialog (beside the open one), then open it."""
        field = self.model_box.model_path
        before = field.text()
        field.browse()
        if field.text() and field.text() != before:
            self.open_model(field.text())

    def label_folder(self, folder: str) -> JobHandle | None:
        """Label every image of ``folder`` with the open model, on the Label a Folder page."""
        self.pages.setCurrentIndex(self.LABEL_PAGE)
        return self.label_page.label_folder(folder)

    def choose_folder_to_label(self) -> None:
        """Ask for a folder of images (beside the data), then label it."""
        self.pages.setCurrentIndex(self.LABEL_PAGE)
        field = self.label_page.folder_path
        before = field.text()
        field.browse()
        if field.text() and field.text() != before:
            self.label_folder(field.text())

    def evaluate(self, data: str | None = None) -> JobHandle | None:
        """Evaluate the open model on ``data`` (None: its run's validation images), on the
        Evaluate page."""
        self.pages.setCurrentIndex(self.EVALUATE_PAGE)
        return self.evaluate_page.evaluate(data)

    def show_image(self, path: str) -> JobHandle | None:
        """Classify the image at ``path`` on the One Image page."""
        return self._show_image_ref(ImageRef(path))

    def shutdown(self) -> None:
        """Stop background work of the tab (the window is closing): the thumbnail threads."""
        self.label_page.predictions.shutdown()
        self.evaluate_page.cell_images.shutdown()

    # Following the state -------------------------------------------------------------------

    def _on_opened(self, path: Path, opened: tuple[Predictor, Path | None]) -> None:
        predictor, validation = opened
        self._state.open_model(path, predictor, validation)
        self.status_message.emit(f"Opened the model {path}")

    def _reopen_at_precision(self, _precision: str) -> None:
        model = self._state.model
        if model is not None and not self._slot.is_busy():
            self.open_model(str(model.path))

    def _model_changed(self) -> None:
        self.model_box.show_model(self._state.model, self._runs_folder())
        self.evaluate_page.model_changed()
        self.image_page.model_changed()
        self._start_folders()
        self._set_busy(self._slot.is_busy())

    def _on_labelled(self, folder: str, _count: int) -> None:
        self.image_page.set_start_folder(Path(folder))

    def _start_folders(self) -> None:
        """Open the file dialogs beside the data: the open data set, else the model."""
        opened, model = self._state.dataset, self._state.model
        data = opened.path.parent if opened else None
        if data is None and model is not None:
            data = folder_of(model.path).parent
        self.label_page.set_start_folder(data)
        if self.label_page.folder is None:
            self.image_page.set_start_folder(opened.path if opened else data)

    def _runs_folder(self) -> Path | None:
        run = self._state.run
        if run is not None:
            return run.path.parent
        runs = default_runs_folder()
        return runs if runs.is_dir() else None

    def _show_image_ref(self, image: ImageRef) -> JobHandle | None:
        self.pages.setCurrentIndex(self.IMAGE_PAGE)
        return self.image_page.classify(image)

    def _set_busy(self, busy: bool) -> None:
        model_open = self._state.model is not None
        self.model_box.open_button.setEnabled(not busy)
        self.label_page.set_busy(busy, model_open)
        self.evaluate_page.set_busy(busy)
