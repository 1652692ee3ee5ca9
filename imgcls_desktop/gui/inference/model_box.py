"""The model box of the Inference tab: which model to open, and what the open one is."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QWidget

from imgcls_desktop.core.app_state import OpenModel
from imgcls_desktop.core.models import SourceKind
from imgcls_desktop.core.precision import AUTO_TOLERANCE_POINTS
from imgcls_desktop.gui.inference.common import button, folder_of
from imgcls_desktop.gui.path_field import PathField, PathKind

MODEL_FILTER = "Models (*.tar.gz *.params *.json);;All files (*)"
LABELS_FILTER = "Class names (*.txt *.json);;All files (*)"
# Precision -> (what the box shows, its tooltip).
PRECISION_CHOICES = {
    "fp32": ("fp32", "Full precision: the model as it was trained"),
    "auto": (
        "Auto",
        "The fastest precision whose accuracy is within "
        f"{AUTO_TOLERANCE_POINTS} points of fp32's, measured on the run's validation images",
    ),
    "int8": (
        "int8",
        "8-bit integers (oneDNN), calibrated on the run's images; its speed and accuracy "
        "against fp32 are measured when the model opens",
    ),
    "bf16": ("bf16", "bfloat16, on CPUs with AVX512-BF16 or AMX; checked against fp32 first"),
}
_KINDS = {
    SourceKind.RUN: "training run",
    SourceKind.SAGEMAKER_ARCHIVE: "SageMaker model",
    SourceKind.CHECKPOINT: "checkpoint",
}


class ModelBox(QGroupBox):
    """The model's path and optional class names, *Open*, and a summary of the open model.

    *Open* emits :attr:`open_requested` with the path; the box shows the app state's open
    model (:meth:`show_model`), so a model that failed to open leaves the open one's path.
    """

    open_requested = Signal(str)
    precision_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        self.model_path = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Model",
            placeholder="A run folder, a SageMaker model.tar.gz or an MXNet checkpoint",
            file_filter=MODEL_FILTER,
            tooltip="A training run folder, a SageMaker model.tar.gz, or a checkpoint's "
            "-symbol.json or -NNNN.params file",
        )
        self.labels_path = PathField(
            PathKind.OPEN_FILE,
            caption="Class names",
            placeholder="Optional: labels.txt (one per line) or classes.json",
            file_filter=LABELS_FILTER,
            tooltip="Class names in id order; runs know theirs, SageMaker models need this "
            "(else class_0, class_1...)",
        )
        self.open_button = button(
            "Open",
            "Load the model (MXNet weights) for inference",
            lambda: self.open_requested.emit(self.model_path.text()),
        )
        self.precision = QComboBox()
        self.precision.setToolTip(
            "The arithmetic the network runs in on the CPU; a reduced precision is checked "
            "against fp32 on the run's validation images when the model opens"
        )
        for index, (precision, (text, tooltip)) in enumerate(PRECISION_CHOICES.items()):
            self.precision.addItem(text, precision)
            self.precision.setItemData(index, tooltip, Qt.ItemDataRole.ToolTipRole)
        self.precision.currentIndexChanged.connect(
            lambda _index: self.precision_changed.emit(self.chosen_precision())
        )
        self.summary = QLabel("No model open.")
        self.summary.setToolTip("The open model: its kind, classes and input shape")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(self.open_button)
        form = QFormLayout(self)
        form.addRow("Model:", row)
        form.addRow("Class names:", self.labels_path)
        precision_row = QHBoxLayout()
        precision_row.addWidget(self.precision)
        precision_row.addStretch(1)
        form.addRow("Precision:", precision_row)
        form.addRow(self.summary)

    def labels(self) -> str:
        """The class names file given, if any."""
        return self.labels_path.text()

    def chosen_precision(self) -> str:
        """The precision chosen in the box: ``fp32``, ``auto``, ``int8`` or ``bf16``."""
        return str(self.precision.currentData())

    def show_model(self, model: OpenModel | None, runs_folder: Path | None) -> None:
        """Show the open model (its path in the field) and open dialogs beside it; with no
        model, beside ``runs_folder``."""
        if model is None:
            self.model_path.setText("")
            self.summary.setText("No model open.")
            self.model_path.set_start_folder(runs_folder)
            return
        self.model_path.setText(str(model.path))
        self.model_path.set_start_folder(folder_of(model.path).parent)
        self.labels_path.set_start_folder(folder_of(model.path))
        predictor = model.predictor
        loaded = predictor.model
        channels, height, width = loaded.input_shape
        names = ", ".join(loaded.class_names[:8]) + (", …" if loaded.num_classes > 8 else "")
        labels = "multi-label, " if loaded.multi_label else ""
        kind = _KINDS.get(loaded.source_kind, loaded.source_kind)
        network = predictor.network
        precision = f"<br>{escape(network.note)}" if network.note else ""
        self.summary.setText(
            f"<b>{kind}</b> (epoch {loaded.epoch}) · {labels}{loaded.num_classes} classes "
            f"({names}) · input {channels} x {height} x {width} · on {predictor.context} in "
            f"{network.precision}{precision}"
        )
