"""The *One Image* page: one image, every class's probability, and where the network looked."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from imgcls_desktop.core.app_state import AppState
from imgcls_desktop.core.artifacts import ModelError
from imgcls_desktop.core.corrections import ImageRef
from imgcls_desktop.core.explain import grad_cam, overlay
from imgcls_desktop.core.file_names import display_path
from imgcls_desktop.core.inference import TOP_K, Predictor
from imgcls_desktop.core.jobs import JobContext
from imgcls_desktop.gui.imaging import bgr_to_qimage, load_qimage
from imgcls_desktop.gui.inference.charts import ImageView, ProbabilityChart
from imgcls_desktop.gui.inference.common import run_job
from imgcls_desktop.gui.path_field import PathField, PathKind
from imgcls_desktop.gui.workers import JobHandle, JobSlot

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp);;All files (*)"
IMAGE_SIDE = 360
"""The longest side an image is decoded at for the page (the view fits it to its size)."""


@dataclass(frozen=True)
class ImageAnswer:
    """One classified image: its picture, every class's probability and, when asked for,
    the Grad-CAM overlay of the most probable class (or why there is none)."""

    image: ImageRef
    picture: QImage
    probabilities: np.ndarray
    overlay: QImage | None = None
    overlay_error: str = ""


def classify_image(
    predictor: Predictor, image: ImageRef, explain: bool, _job: JobContext
) -> ImageAnswer:
    """Decode one image for display and predict its class probabilities; with ``explain``,
    also its Grad-CAM overlay (runs in a worker)."""
    data = image.read_bytes()
    picture = load_qimage(data, IMAGE_SIDE)
    pixels = predictor.preprocess(data)
    probabilities = predictor.forward(pixels[np.newaxis])[0]
    if not explain:
        return ImageAnswer(image, picture, probabilities)
    try:
        heatmap = grad_cam(predictor.model, pixels, int(np.argmax(probabilities)))
    except ModelError as error:
        return ImageAnswer(image, picture, probabilities, overlay_error=str(error))
    return ImageAnswer(image, picture, probabilities, bgr_to_qimage(overlay(pixels, heatmap)))


class ImagePage(QWidget):
    """Classify one image (a file chosen, dropped or double-clicked in a table, or a record
    of an evaluated ``.rec``): the image, a bar per class, optionally the Grad-CAM overlay.
    The image and the overlay are both fitted to the view, so they show at the same size."""

    status_message = Signal(str)

    def __init__(self, slot: JobSlot, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._slot = slot
        self._state = state
        self.answer: ImageAnswer | None = None
        self.image_path = PathField(
            PathKind.OPEN_FILE,
            caption="Image",
            placeholder="Choose or drop an image",
            file_filter=IMAGE_FILTER,
            tooltip="The image to classify (or drop one on the picture)",
        )
        self.image_path.changed.connect(self._path_typed)
        self.grad_cam = QCheckBox("Grad-CAM overlay")
        self.grad_cam.setToolTip(
            "Colour where the network looked for the most probable class (red: most), "
            "over the image as the network saw it"
        )
        self.grad_cam.toggled.connect(self._grad_cam_toggled)
        self.image_view = ImageView()
        self.image_view.image_dropped.connect(self.image_path.setText)
        self.chart = ProbabilityChart()
        self.image_answer = QLabel()
        self.image_answer.setToolTip("The most probable class")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.image_view)
        split.addWidget(self.chart)
        split.setSizes([400, 700])
        top = QHBoxLayout()
        top.addWidget(self.image_path, 1)
        top.addWidget(self.grad_cam)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.image_answer)

    def set_start_folder(self, folder: Path | None) -> None:
        """Open the file dialog beside the data."""
        self.image_path.set_start_folder(folder)

    def _path_typed(self, path: str) -> None:
        shown = self.answer.image.source if self.answer is not None else None
        if path != shown and Path(path).is_file():
            self.classify(ImageRef(path))

    def classify(self, image: ImageRef) -> JobHandle | None:
        """Show ``image`` and its class probabilities (predicted in a worker)."""
        model = self._state.model
        if model is None:
            self.status_message.emit("Open a model first.")
            return None
        if self.image_path.text() != image.source:
            self.image_path.edit.blockSignals(True)
            self.image_path.setText(image.source)
            self.image_path.edit.blockSignals(False)
        return run_job(
            self,
            self._slot,
            partial(classify_image, model.predictor, image, self.grad_cam.isChecked()),
            f"Classifying {display_path(image.source)}",
            partial(self._on_classified, model.predictor),
            "Cannot classify the image",
            self.status_message.emit,
        )

    def model_changed(self) -> None:
        """Classify the image shown again, with the model now open."""
        if self.answer is not None and self._state.model is not None:
            self.classify(self.answer.image)

    def _on_classified(self, predictor: Predictor, answer: ImageAnswer) -> None:
        self.answer = answer
        names = predictor.class_names
        # Top-k among few classes would be every class: then only the likelier half.
        highlighted = min(TOP_K, max(1, len(names) // 2))
        self.chart.show_probabilities(names, answer.probabilities, highlighted)
        best = int(np.argmax(answer.probabilities))
        name = Path(answer.image.path).name
        text = f"<b>{names[best]}</b> ({answer.probabilities[best]:.1%}) · {name}"
        if answer.overlay_error:
            text += f" · no Grad-CAM: {answer.overlay_error}"
        self.image_answer.setText(text)
        self._show_answer_image()

    def _grad_cam_toggled(self, checked: bool) -> None:
        answer = self.answer
        if checked and answer is not None and answer.overlay is None and not answer.overlay_error:
            self.classify(answer.image)
        else:
            self._show_answer_image()

    def _show_answer_image(self) -> None:
        if self.answer is None:
            return
        shown = self.answer.overlay if self.grad_cam.isChecked() else None
        self.image_view.show_image(shown or self.answer.picture)
