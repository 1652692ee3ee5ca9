"""The Inference tab: open a model, label a folder, classify one image, evaluate on a set."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.app_state import AppState
from imgcls_desktop.core.artifacts import ModelError
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.evaluation import EvaluationReport, evaluate_dataset
from imgcls_desktop.core.explain import grad_cam
from imgcls_desktop.core.inference import Predictor
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn
from imgcls_desktop.core.labelling import (
    UNCERTAIN_FOLDER,
    LabellingResult,
    SortResult,
    label_images,
    sort_into_folders,
    write_csv,
    write_jsonl,
)
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.project import ItemKind
from imgcls_desktop.core.training.data import TrainingData
from imgcls_desktop.core.training.run import RunError, read_run
from imgcls_desktop.gui.dialogs import show_error, show_info
from imgcls_desktop.gui.imaging import bgr_to_qimage, load_qimage
from imgcls_desktop.gui.inference_widgets import (
    ClassMetricsTable,
    ConfusionMatrixView,
    ImageDropLabel,
    ProbabilityChart,
)
from imgcls_desktop.gui.path_field import PathField, PathKind
from imgcls_desktop.gui.review import CellImagesTable, PredictionTable, ReviewTable, shown_path
from imgcls_desktop.gui.widgets import read_only_table
from imgcls_desktop.gui.workers import JobHandle, JobRunner, JobSlot

MODEL_FILTER = "Models (*.tar.gz *.params *.json);;All files (*)"
LABELS_FILTER = "Class names (*.txt *.json);;All files (*)"
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp);;All files (*)"
DATA_FILTER = "Labelled data (*.lst *.rec *.jsonl *.manifest);;All files (*)"
TOP_K = 5
IMAGE_SIDE = 360
_KINDS = {"run": "training run", "sagemaker_archive": "SageMaker model", "checkpoint": "checkpoint"}


@dataclass(frozen=True)
class ImageAnswer:
    """One classified image: its picture, every class's probability and, when asked for,
    the Grad-CAM overlay of the most probable class (or why there is none)."""

    path: str
    image: QImage
    probabilities: np.ndarray
    overlay: QImage | None = None
    overlay_error: str = ""


def open_predictor(path: str, labels: str, progress: ProgressFn, cancel: CancelFlag) -> Predictor:
    """Open the model at ``path`` (class names from ``labels`` if given) for inference."""
    model = open_model(Path(path), labels=Path(labels) if labels else None)
    return Predictor(model)


def label_folder(
    predictor: Predictor, folder: str, progress: ProgressFn, cancel: CancelFlag
) -> LabellingResult:
    """Label every image under ``folder`` (runs in a worker)."""
    k = min(TOP_K, len(predictor.class_names))
    return label_images(predictor, [Path(folder)], top_k=k, progress=progress, cancel=cancel)


def classify_image(
    predictor: Predictor, path: str, explain: bool, progress: ProgressFn, cancel: CancelFlag
) -> ImageAnswer:
    """Decode one image for display and predict its class probabilities; with ``explain``,
    also its Grad-CAM overlay (runs in a worker)."""
    data = Path(path).read_bytes()
    image = load_qimage(data, IMAGE_SIDE)
    pixels = predictor.preprocess(data)
    probabilities = predictor.forward(pixels[np.newaxis])[0]
    if not explain:
        return ImageAnswer(path, image, probabilities)
    try:
        heatmap = grad_cam(predictor.model, pixels, int(np.argmax(probabilities)))
    except ModelError as error:
        return ImageAnswer(path, image, probabilities, overlay_error=str(error))
    return ImageAnswer(path, image, probabilities, grad_cam_overlay(pixels, heatmap))


def grad_cam_overlay(pixels: np.ndarray, heatmap: np.ndarray) -> QImage:
    """The network's input (C x H x W, RGB or grey, 0-255) with ``heatmap`` (H x W, 0..1)
    blended over it in colour, enlarged so its longer side is ``IMAGE_SIDE``."""
    seen = np.clip(pixels, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    seen = cv2.cvtColor(seen, cv2.COLOR_GRAY2BGR if seen.shape[2] == 1 else cv2.COLOR_RGB2BGR)
    colours = cv2.applyColorMap((heatmap * 255).astype(np.uint8), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(seen, 0.55, colours, 0.45, 0)
    height, width = blended.shape[:2]
    scale = IMAGE_SIDE / max(height, width)
    size = (round(width * scale), round(height * scale))
    return bgr_to_qimage(cv2.resize(blended, size, interpolation=cv2.INTER_LINEAR))


def evaluate_set(
    predictor: Predictor, path: str, progress: ProgressFn, cancel: CancelFlag
) -> EvaluationReport:
    """Evaluate the model on the labelled set at ``path`` (runs in a worker)."""
    dataset = load_dataset(Path(path))
    # With TOP_K classes or fewer, top-k accuracy would be 100% by definition.
    k = TOP_K if len(predictor.class_names) > TOP_K else None
    return evaluate_dataset(predictor, dataset, progress=progress, cancel=cancel, top_k=k)


def sort_images(
    result: LabellingResult,
    out_dir: str,
    move: bool,
    min_confidence: float | None,
    progress: ProgressFn,
    cancel: CancelFlag,
) -> SortResult:
    """Copy or move the labelled images into class folders (runs in a worker)."""
    return sort_into_folders(
        result,
        Path(out_dir),
        move=move,
        min_confidence=min_confidence,
        progress=progress,
        cancel=cancel,
    )


def _button(text: str, tooltip: str, slot: Callable[[], object]) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tooltip)
    button.clicked.connect(lambda _checked=False: slot())
    return button


class InferenceTab(QWidget):
    """Open a model; label a folder, classify one image, or evaluate on a labelled set."""

    status_message = Signal(str)
    model_opened = Signal(str)
    folder_labelled = Signal(str, int)
    evaluated = Signal(object)
    """The :class:`EvaluationReport` just shown."""

    def __init__(
        self, jobs: JobRunner, state: AppState | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._state = state or AppState(save=None)
        self._slot = JobSlot(jobs, self)
        self._slot.busy_changed.connect(self._set_busy)
        self._slot.refused.connect(self.status_message)
        self.predictor: Predictor | None = None
        self.labelling: LabellingResult | None = None
        self.report: EvaluationReport | None = None
        self._eval_root = Path()

        layout = QVBoxLayout(self)
        layout.addWidget(self._build_model_box())
        self.pages = QTabWidget()
        self.pages.addTab(self._build_labelling_page(), "Label a Folder")
        self.pages.addTab(self._build_image_page(), "One Image")
        self.pages.addTab(self._build_evaluation_page(), "Evaluate")
        layout.addWidget(self.pages, 1)
        self._set_busy(False)

    # Layout --------------------------------------------------------------------------------

    def _build_model_box(self) -> QGroupBox:
        self.model_path = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Model",
            placeholder="A run folder, a SageMaker model.tar.gz or an MXNet checkpoint",
            file_filter=MODEL_FILTER,
            tooltip="A training run folder, a SageMaker model.tar.gz, or a checkpoint's "
            "-symbol.json or -NNNN.params file",
            start_dir=lambda: next(
                (Path(m).parent for m in self._state.recent(ItemKind.MODEL)), None
            ),
        )
        self.labels_path = PathField(
            PathKind.OPEN_FILE,
            caption="Class names",
            placeholder="Optional: labels.txt (one per line) or classes.json",
            file_filter=LABELS_FILTER,
            tooltip="Class names in id order; runs know theirs, SageMaker models need this "
            "(else class_0, class_1...)",
        )
        self.open_button = _button(
            "Open", "Load the model (MXNet weights) for inference", self.open
        )
        self.model_summary = QLabel("No model open.")
        self.model_summary.setToolTip("The open model: its kind, classes and input shape")
        self.model_summary.setWordWrap(True)
        self.model_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(self.open_button)
        box = QGroupBox("Model")
        form = QFormLayout(box)
        form.addRow("Model:", row)
        form.addRow("Class names:", self.labels_path)
        form.addRow(self.model_summary)
        return box

    def _build_labelling_page(self) -> QWidget:
        self.folder_path = PathField(
            PathKind.FOLDER,
            caption="Folder of images",
            placeholder="A folder of images (sub-folders included)",
            tooltip="Every image in this folder and its sub-folders is labelled",
        )
        self.label_button = _button(
            "Label Folder", "Label every image of the folder with the open model", self.label
        )
        self.cancel_button = _button("Cancel", "Stop the running job", self.cancel)
        top = QHBoxLayout()
        top.addWidget(self.folder_path, 1)
        top.addWidget(self.label_button)
        top.addWidget(self.cancel_button)

        self.label_filter = QComboBox()
        self.label_filter.setToolTip("Show only the images given this label")
        self.label_filter.addItem("All labels", None)
        self.label_filter.currentIndexChanged.connect(self._filter_changed)
        self.min_confidence = self._percent_box(
            "Show only the images the model is at least this sure of"
        )
        self.min_confidence.valueChanged.connect(self._filter_changed)
        self.shown_count = QLabel()
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Label:"))
        filters.addWidget(self.label_filter)
        filters.addWidget(QLabel("Confidence at least:"))
        filters.addWidget(self.min_confidence)
        filters.addWidget(self.shown_count, 1)

        self.predictions = PredictionTable(self._slot)
        self.predictions.file_activated.connect(self.show_image)
        self.predictions.status_message.connect(self.status_message)
        self.unreadable = read_only_table(
            ["Unreadable file", "Reason"], "Files that could not be labelled, and why"
        )
        header = self.unreadable.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.unreadable.setColumnWidth(0, 420)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.predictions)
        split.addWidget(self.unreadable)
        self.unreadable.hide()  # shown when a labelling meets unreadable files
        split.setSizes([500, 120])

        self.csv_button = _button(
            "Export CSV…", "Save path, label, confidence and top classes as CSV", self.export_csv
        )
        self.jsonl_button = _button(
            "Export JSON Lines…",
            "Save SageMaker batch-transform JSON Lines (every class's probability)",
            self.export_jsonl,
        )
        self.sort_mode = QComboBox()
        self.sort_mode.addItem("Copy", False)
        self.sort_mode.addItem("Move", True)
        self.sort_mode.setToolTip(
            "Copy the images into class folders (the originals stay), or move them"
        )
        self.sort_threshold = self._percent_box(
            f"Images the model is less sure of go into {UNCERTAIN_FOLDER}; 0 sorts every image"
        )
        self.sort_button = _button(
            "Sort into Folders…",
            "Copy or move every labelled image into a folder named after its label",
            self.choose_sort_folder,
        )
        actions = QHBoxLayout()
        actions.addWidget(self.csv_button)
        actions.addWidget(self.jsonl_button)
        actions.addStretch(1)
        actions.addWidget(self.sort_mode)
        actions.addWidget(QLabel("uncertain below:"))
        actions.addWidget(self.sort_threshold)
        actions.addWidget(self.sort_button)

        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(split, 1)
        layout.addLayout(actions)
        return page

    def _build_image_page(self) -> QWidget:
        self.image_path = PathField(
            PathKind.OPEN_FILE,
            caption="Image",
            placeholder="Choose or drop an image",
            file_filter=IMAGE_FILTER,
            tooltip="The image to classify (or drop one on the picture)",
        )
        self.image_path.changed.connect(self._image_path_changed)
        self.grad_cam = QCheckBox("Grad-CAM overlay")
        self.grad_cam.setToolTip(
            "Colour where the network looked for the most probable class (red: most), "
            "over the image as the network saw it"
        )
        self.grad_cam.toggled.connect(self._grad_cam_toggled)
        self.answer: ImageAnswer | None = None
        self.image_view = ImageDropLabel()
        self.image_view.image_dropped.connect(self.image_path.setText)
        self.chart = ProbabilityChart()
        self.image_answer = QLabel()
        self.image_answer.setToolTip("The most probable class")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.image_view)
        split.addWidget(self.chart)
        split.setSizes([400, 700])
        page = QWidget()
        layout = QVBoxLayout(page)
        top = QHBoxLayout()
        top.addWidget(self.image_path, 1)
        top.addWidget(self.grad_cam)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.image_answer)
        return page

    def _build_evaluation_page(self) -> QWidget:
        self.eval_path = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Labelled data",
            placeholder="A folder per class, an im2rec .lst or a .rec",
            file_filter=DATA_FILTER,
            tooltip="Images with known classes: a folder of class folders, a .lst or a .rec",
        )
        self.evaluate_button = _button(
            "Evaluate",
            "Predict every image of the set and compare with its class",
            lambda: self.evaluate(self.eval_path.text() or None),
        )
        top = QHBoxLayout()
        top.addWidget(self.eval_path, 1)
        top.addWidget(self.evaluate_button)
        self.eval_summary = QLabel("Evaluate the model on a labelled set.")
        self.eval_summary.setToolTip("Accuracy on the set")
        self.eval_summary.setWordWrap(True)
        self.confusion = ConfusionMatrixView()
        self.confusion.cell_clicked.connect(self.show_cell)
        self.class_metrics = ClassMetricsTable()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.confusion)
        split.addWidget(self.class_metrics.table)
        split.setSizes([600, 500])
        self.cell_caption = QLabel()
        self.cell_images = CellImagesTable(self._slot)
        self.cell_images.file_activated.connect(self.show_image)
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
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addLayout(top)
        layout.addWidget(self.eval_summary)
        layout.addWidget(vertical, 1)
        return page

    @staticmethod
    def _percent_box(tooltip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0, 100)
        box.setDecimals(0)
        box.setSuffix(" %")
        box.setToolTip(tooltip)
        return box

    # The model -----------------------------------------------------------------------------

    @Slot(str)
    def set_model_path(self, path: str) -> JobHandle | None:
        """Offer the model at ``path`` (a run just trained) and open it."""
        self.model_path.setText(path)
        self.labels_path.setText("")
        return self.open()

    def open_model(self, path: str) -> JobHandle | None:
        """Open the model at ``path``."""
        return self.set_model_path(path)

    def choose_model(self) -> None:
        """Ask for a model (a run folder or a model file) and open it."""
        self.model_path.browse()
        if self.model_path.text():
            self.open()

    def choose_folder_to_label(self) -> None:
        """Ask for a folder of images and label it with the open model."""
        start = self.folder_path.text() or (
            str(self._state.dataset.path.parent) if self._state.dataset else ""
        )
        folder = QFileDialog.getExistingDirectory(self, "Label the images of the folder", start)
        if folder:
            self.label_folder(folder)

    def label_folder(self, folder: str) -> JobHandle | None:
        """Label the images of ``folder``."""
        self.pages.setCurrentIndex(0)
        self.folder_path.setText(folder)
        return self.label()

    def open(self) -> JobHandle | None:
        """Load the model of the path fields in a worker."""
        path = self.model_path.text()
        if not path:
            show_error(self, "No model", "Choose a run folder, a model.tar.gz or a checkpoint.")
            return None
        job = self._start(
            partial(open_predictor, path, self.labels_path.text()), f"Opening {Path(path).name}"
        )
        if job is not None:
            job.finished.connect(self._on_opened)
            job.failed.connect(partial(self._on_failed, "Cannot open the model"))
        return job

    def _on_opened(self, predictor: Predictor) -> None:
        self.predictor = predictor
        model = predictor.model
        channels, height, width = model.input_shape
        names = ", ".join(model.class_names[:8]) + (", …" if model.num_classes > 8 else "")
        labels = "multi-label, " if model.multi_label else ""
        self.model_summary.setText(
            f"<b>{_KINDS.get(model.source_kind, model.source_kind)}</b> (epoch {model.epoch}) · "
            f"{labels}{model.num_classes} classes ({names}) · input {channels} x {height} x "
            f"{width} · on {predictor.context}"
        )
        path = Path(self.model_path.text())
        self._state.open_model(path, predictor, _validation_records(path))
        self.status_message.emit(f"Opened the model {model.path}")
        self.model_opened.emit(self.model_path.text())

    # Labelling a folder --------------------------------------------------------------------

    def label(self) -> JobHandle | None:
        """Label every image of the chosen folder in a worker; with corrections not yet
        added, first ask whether to discard them (:meth:`ask_discard`) and return None."""
        folder = self.folder_path.text()
        if self.predictor is None or not folder:
            self.status_message.emit("Open a model and choose a folder of images first.")
            return None
        if self.ask_discard(self.predictions, self.label) is not None:
            return None
        job = self._start(partial(label_folder, self.predictor, folder), f"Labelling {folder}")
        if job is not None:
            job.finished.connect(partial(self._on_labelled, Path(folder)))
            job.failed.connect(partial(self._on_failed, "Labelling failed"))
            job.cancelled.connect(lambda: self.status_message.emit("Labelling cancelled"))
        return job

    def _on_labelled(self, folder: Path, result: LabellingResult) -> None:
        self.labelling = result
        self.label_filter.blockSignals(True)
        self.label_filter.clear()
        self.label_filter.addItem("All labels", None)
        for name in result.class_names:
            self.label_filter.addItem(name, name)
        self.label_filter.blockSignals(False)
        self.predictions.show_predictions(result.predictions, folder, result.class_names)
        self.unreadable.setRowCount(len(result.unreadable))
        self.unreadable.setVisible(bool(result.unreadable))
        for row, item in enumerate(result.unreadable):
            name = QTableWidgetItem(shown_path(item.path, folder))
            name.setToolTip(str(item.path))
            self.unreadable.setItem(row, 0, name)
            self.unreadable.setItem(row, 1, QTableWidgetItem(item.reason))
        self._filter_changed()
        unreadable = f", {len(result.unreadable)} unreadable" if result.unreadable else ""
        self.status_message.emit(f"Labelled {len(result.predictions):,} images{unreadable}")
        self.folder_labelled.emit(str(folder), len(result.predictions))

    def _filter_changed(self) -> None:
        self.predictions.set_filters(
            self.label_filter.currentData(), self.min_confidence.value() / 100
        )
        total = self.predictions.table.rowCount()
        self.shown_count.setText(f"{len(self.predictions.visible_rows()):,} of {total:,} shown")

    def export_csv(self) -> None:
        """Ask for a file name and save the labels as CSV."""
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", "labels.csv", "CSV (*.csv)")
        if path:
            self.save_labels(Path(path), write_csv)

    def export_jsonl(self) -> None:
        """Ask for a file name and save the labels as SageMaker JSON Lines."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Export JSON Lines", "labels.jsonl", "JSON Lines (*.jsonl)"
        )
        if path:
            self.save_labels(Path(path), write_jsonl)

    def save_labels(
        self, path: Path, writer: Callable[[LabellingResult, Path], None] = write_csv
    ) -> bool:
        """Write the last labelling to ``path`` with ``writer`` (``write_csv``/``write_jsonl``)."""
        if self.labelling is None:
            return False
        try:
            writer(self.labelling, path)
        except OSError as error:
            show_error(self, "Cannot save the labels", f"{path}: {error.strerror or error}")
            return False
        self.status_message.emit(f"Saved {len(self.labelling.predictions):,} labels to {path}")
        return True

    def choose_sort_folder(self) -> None:
        """Ask where to sort the images, then confirm."""
        folder = QFileDialog.getExistingDirectory(self, "Sort the images into class folders in")
        if folder:
            self.confirm_sort(folder)

    def confirm_sort(self, out_dir: str) -> QMessageBox | None:
        """Say what sorting into ``out_dir`` will do; Yes starts it (non-blocking)."""
        if self.labelling is None:
            return None
        move = bool(self.sort_mode.currentData())
        threshold = self.sort_threshold.value() / 100
        count = len(self.labelling.predictions)
        verb = "Move" if move else "Copy"
        text = f"{verb} {count:,} images into one folder per label in {out_dir}?"
        if threshold:
            text += (
                f"\nImages labelled with less than {threshold:.0%} confidence go into "
                f"{Path(out_dir) / UNCERTAIN_FOLDER}."
            )
        text += "\nExisting files are never overwritten; sorted.csv lists where each image went."
        if move:
            text += "\nThe images leave their current folders."
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Sort into folders",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("confirmSortDialog")
        box.button(QMessageBox.StandardButton.Yes).setText(f"{verb} Images")
        box.accepted.connect(partial(self.sort_into, out_dir, move, threshold or None))
        box.open()
        return box

    def sort_into(self, out_dir: str, move: bool, min_confidence: float | None) -> JobHandle | None:
        """Copy or move the labelled images into class folders under ``out_dir``, in a worker."""
        if self.labelling is None:
            return None
        job = self._start(
            partial(sort_images, self.labelling, out_dir, move, min_confidence),
            f"Sorting images into {out_dir}",
        )
        if job is not None:
            job.finished.connect(partial(self._on_sorted, out_dir, move))
            job.failed.connect(partial(self._on_failed, "Sorting failed"))
            job.cancelled.connect(
                lambda: self.status_message.emit("Sorting cancelled; see sorted.csv")
            )
        return job

    def _on_sorted(self, out_dir: str, move: bool, result: SortResult) -> None:
        counts = Counter(Path(image.destination).parent.name for image in result.sorted)
        lines = "\n".join(f"{name}: {count:,}" for name, count in sorted(counts.items()))
        message = f"{'Moved' if move else 'Copied'} {len(result.sorted):,} images into {out_dir}."
        if result.failed:
            message += f"\n{len(result.failed)} images could not be sorted (see the details)."
        details = lines
        if result.failed:
            details += "\n\nNot sorted:\n" + "\n".join(
                f"{f.path}: {f.reason}" for f in result.failed
            )
        if result.csv_path:
            message += f"\nWhat went where: {result.csv_path}"
        show_info(self, "Sorted into folders", message, details)
        self.status_message.emit(f"Sorted {len(result.sorted):,} images into {out_dir}")

    # One image -----------------------------------------------------------------------------

    def show_image(self, path: str) -> None:
        """Classify the image at ``path`` on the One Image page."""
        self.pages.setCurrentIndex(1)
        self.image_path.setText(path)

    def _image_path_changed(self, path: str) -> None:
        if Path(path).is_file():
            self.classify(path)

    def classify(self, path: str) -> JobHandle | None:
        """Show the image at ``path`` and its class probabilities (predicted in a worker)."""
        if self.predictor is None:
            self.status_message.emit("Open a model first.")
            return None
        job = self._start(
            partial(classify_image, self.predictor, path, self.grad_cam.isChecked()),
            f"Classifying {path}",
        )
        if job is not None:
            job.finished.connect(self._on_classified)
            job.failed.connect(partial(self._on_failed, "Cannot classify the image"))
        return job

    def _on_classified(self, answer: ImageAnswer) -> None:
        self.answer = answer
        names = self.predictor.class_names
        # Top-k among few classes would be every class: then only the likelier half.
        highlighted = min(TOP_K, max(1, len(names) // 2))
        self.chart.show_probabilities(names, answer.probabilities, highlighted)
        best = int(np.argmax(answer.probabilities))
        text = f"<b>{names[best]}</b> ({answer.probabilities[best]:.1%}) · {Path(answer.path).name}"
        if answer.overlay_error:
            text += f" · no Grad-CAM: {answer.overlay_error}"
        self.image_answer.setText(text)
        self._show_answer_image()

    def _grad_cam_toggled(self, checked: bool) -> None:
        answer = self.answer
        if checked and answer is not None and answer.overlay is None and not answer.overlay_error:
            self.classify(answer.path)
        else:
            self._show_answer_image()

    def _show_answer_image(self) -> None:
        if self.answer is None:
            return
        overlay = self.answer.overlay if self.grad_cam.isChecked() else None
        self.image_view.setPixmap(QPixmap.fromImage(overlay or self.answer.image))

    # Evaluation ----------------------------------------------------------------------------

    def evaluate(self, data: str | None = None) -> JobHandle | None:
        """Evaluate the model on ``data`` (None: its run's validation images) in a worker;
        with corrections not yet added, first ask whether to discard them
        (:meth:`ask_discard`) and return None."""
        model = self._state.model
        if data is None and model is not None and model.validation is not None:
            data = str(model.validation)
        self.pages.setCurrentIndex(2)
        if self.predictor is None or not data:
            self.status_message.emit(
                "Open a model and choose a labelled set first: this model has no validation "
                "images of its run."
            )
            return None
        self.eval_path.setText(data)
        path = data
        if self.ask_discard(self.cell_images, partial(self.evaluate, data)) is not None:
            return None
        job = self._start(partial(evaluate_set, self.predictor, path), f"Evaluating on {path}")
        if job is not None:
            job.finished.connect(partial(self._on_evaluated, Path(path)))
            job.failed.connect(partial(self._on_failed, "Evaluation failed"))
            job.cancelled.connect(lambda: self.status_message.emit("Evaluation cancelled"))
        return job

    def _on_evaluated(self, path: Path, report: EvaluationReport) -> None:
        self.report = report
        self._eval_root = path if path.is_dir() else path.parent
        text = f"<b>Accuracy {report.accuracy:.1%}</b> on {report.count:,} images"
        if report.top_k_accuracy is not None:
            text += f" · top-{report.top_k} accuracy {report.top_k_accuracy:.1%}"
        if report.skipped:
            text += f" · {len(report.skipped)} unreadable images left out"
        self.eval_summary.setText(text)
        if not report.multi_label:
            self.confusion.show_matrix(report.class_names, report.confusion_matrix)
        self.class_metrics.show_metrics(report.per_class)
        self.cell_images.show_images([], self._eval_root, report.class_names, report.dataset)
        self.cell_caption.setText(
            "" if report.multi_label else "Click a cell of the confusion matrix to see its images."
        )
        self._state.set_evaluation(Path(self.model_path.text()), path, report)
        self.status_message.emit(f"Accuracy {report.accuracy:.1%} on {report.count:,} images")
        self.evaluated.emit(report)

    @Slot(int, int)
    def show_cell(self, true_index: int, predicted_index: int) -> None:
        """List the images of one confusion-matrix cell, the model's surest first."""
        report = self.report
        if report is None or report.multi_label:
            return
        images = report.cell(true_index, predicted_index)
        names = report.class_names
        self.cell_images.show_images(images, self._eval_root, names, report.dataset)
        self.cell_caption.setText(
            f"<b>{names[true_index]}</b> images predicted as <b>{names[predicted_index]}</b>: "
            f"{len(images):,}, the model's surest first"
        )

    # Corrections not yet added -------------------------------------------------------------

    def ask_discard(self, table: ReviewTable, then: Callable[[], object]) -> QMessageBox | None:
        """When ``table`` holds corrections not yet added to a data set, ask whether to
        discard them (non-blocking): Discard forgets them and calls ``then``, Keep changes
        nothing. None (and no question) when there is nothing to lose."""
        count = len(table.corrections())
        if not count:
            return None
        text = (
            "1 corrected label has not been added to a data set. Discard it?"
            if count == 1
            else f"{count:,} corrected labels have not been added to a data set. Discard them?"
        )
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Discard corrections",
            text,
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("discardCorrectionsDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setInformativeText("Keep them to add them with Add Corrected to Data Set… first.")
        keep = box.button(QMessageBox.StandardButton.Cancel)
        keep.setText("Keep")
        box.setDefaultButton(keep)
        box.button(QMessageBox.StandardButton.Discard).clicked.connect(
            partial(self._discard_then, table, then)
        )
        keep.clicked.connect(
            lambda: self.status_message.emit(
                "Corrections kept: add them to a data set, then start again"
            )
        )
        box.open()
        return box

    def _discard_then(self, table: ReviewTable, then: Callable[[], object]) -> None:
        table.discard_corrections()
        then()

    # Jobs ----------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Ask the running job to stop."""
        self._slot.cancel()

    def shutdown(self) -> None:
        """Stop background work of the tab (the window is closing): the thumbnail threads."""
        self.predictions.shutdown()
        self.cell_images.shutdown()

    def _start(self, job_function: object, title: str) -> JobHandle | None:
        return self._slot.start(job_function, title)

    def _on_failed(self, title: str, message: str, details: str) -> None:
        show_error(self, title, message, details)
        self.status_message.emit(f"{title}: {message}")

    def _set_busy(self, busy: bool) -> None:
        ready = not busy and self.predictor is not None
        labelled = not busy and self.labelling is not None
        self.open_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        for button in (self.label_button, self.evaluate_button):
            button.setEnabled(ready)
        for button in (self.csv_button, self.jsonl_button, self.sort_button):
            button.setEnabled(labelled)


def _validation_records(run_dir: Path) -> Path | None:
    """The validation .rec a run trained with, if it still exists."""
    try:
        data = TrainingData.from_dict(read_run(run_dir).data, run_dir)
    except (RunError, KeyError, TypeError, ValueError, OSError):
        return None
    return data.val_rec if data.val_rec.exists() else None
