"""The Dataset tab's export settings: split shares, image options, the output folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from imgcls_desktop.core.dataset.recordio_export import ExportOptions
from imgcls_desktop.gui.path_field import PathField, PathKind


@dataclass(frozen=True)
class ExportSettings:
    """What the export panel asks for."""

    out_dir: Path
    name: str
    val_ratio: float
    test_ratio: float
    seed: int
    options: ExportOptions


class ExportPanel(QGroupBox):
    """Split shares, image options and the output folder, and the Export button;
    ``start_dir`` gives where browsing for the folder starts when the field is empty."""

    export_requested = Signal()

    def __init__(
        self,
        start_dir: Callable[[], Path | None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Split and export RecordIO", parent)
        self.val_percent = self._percent_box(20, "Share of each class kept for validation")
        self.test_percent = self._percent_box(0, "Share of each class kept for a final test")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The same seed always gives the same split")
        self.resize_enabled = QCheckBox("Resize shorter side to")
        self.resize_enabled.setToolTip("Like im2rec --resize: smaller files, faster training")
        self.resize = QSpinBox()
        self.resize.setRange(8, 8192)
        self.resize.setValue(256)
        self.resize.setSuffix(" px")
        self.resize.setEnabled(False)
        self.resize.setToolTip("Length of the shorter side after resizing")
        self.resize_enabled.toggled.connect(self.resize.setEnabled)
        self.encoding = QComboBox()
        self.encoding.addItems([".jpg", ".png"])
        self.encoding.setToolTip("How images are stored in the .rec (what im2rec calls --encoding)")
        self.quality_label = QLabel()
        self.quality = QSpinBox()
        self.encoding.currentTextChanged.connect(self._show_quality_range)
        self._show_quality_range(self.encoding.currentText())
        self.pass_through = QCheckBox("Copy images unchanged when possible")
        self.pass_through.setToolTip(
            "Pass-through: store the original bytes of images that need no resizing or "
            "conversion (much faster; im2rec --pass-through)"
        )
        self.out_dir = PathField(
            PathKind.FOLDER,
            caption="Output folder",
            placeholder="Folder for the .lst, .rec and .idx files",
            tooltip="Where the RecordIO files are written; each data set starts with its own "
            "folder beside it, and replacing an earlier export asks first",
            start_dir=start_dir,
        )
        self.name = QLineEdit("dataset")
        self.name.setToolTip("File names start with it: NAME-train.rec, NAME-val.rec, …")
        self.export_button = QPushButton("Export RecordIO")
        self.export_button.setToolTip(
            "Write NAME-train/val/test .lst, .rec and .idx, classes.json and labels.txt"
        )
        self.export_button.setMinimumSize(180, 32)
        self.export_button.clicked.connect(self.export_requested)

        split_form = QFormLayout()
        split_form.addRow("Validation", self.val_percent)
        split_form.addRow("Test", self.test_percent)
        split_form.addRow("Seed", self.seed)
        image_form = QGridLayout()
        image_form.addWidget(self.resize_enabled, 0, 0)
        image_form.addWidget(self.resize, 0, 1)
        image_form.addWidget(QLabel("Encoding"), 1, 0)
        image_form.addWidget(self.encoding, 1, 1)
        image_form.addWidget(self.quality_label, 2, 0)
        image_form.addWidget(self.quality, 2, 1)
        image_form.addWidget(self.pass_through, 3, 0, 1, 2)
        output_form = QFormLayout()
        output_form.addRow("Output folder", self.out_dir)
        output_form.addRow("Name", self.name)
        export_row = QHBoxLayout()
        export_row.addStretch(1)
        export_row.addWidget(self.export_button)
        output_form.addRow(export_row)
        layout = QHBoxLayout(self)
        layout.addLayout(split_form)
        layout.addSpacing(24)
        layout.addLayout(image_form)
        layout.addSpacing(24)
        layout.addLayout(output_form, 1)

    @staticmethod
    def _percent_box(value: int, tip: str) -> QSpinBox:
        box = QSpinBox()
        box.setRange(0, 90)
        box.setValue(value)
        box.setSuffix(" %")
        box.setToolTip(tip)
        return box

    def _show_quality_range(self, encoding: str) -> None:
        if encoding == ".png":
            self.quality_label.setText("Compression")
            self.quality.setRange(0, 9)
            self.quality.setValue(3)
            self.quality.setToolTip("PNG compression level 0-9: higher is smaller and slower")
        else:
            self.quality_label.setText("Quality")
            self.quality.setRange(1, 100)
            self.quality.setValue(95)
            self.quality.setToolTip("JPEG quality 1-100: higher is sharper and larger")

    def settings(self) -> ExportSettings:
        """The chosen settings; ValueError with the reason when they cannot work."""
        out_dir = self.out_dir.text().strip()
        if not out_dir:
            raise ValueError("Choose an output folder for the RecordIO files.")
        name = self.name.text().strip()
        if not name or os.sep in name or name.startswith("."):
            raise ValueError("The name must be a plain file name prefix, such as 'dataset'.")
        val_ratio = self.val_percent.value() / 100
        test_ratio = self.test_percent.value() / 100
        if val_ratio + test_ratio >= 1:
            raise ValueError("Validation and test shares together must leave images to train on.")
        options = ExportOptions(
            resize=self.resize.value() if self.resize_enabled.isChecked() else None,
            quality=self.quality.value(),
            encoding=self.encoding.currentText(),
            pass_through=self.pass_through.isChecked(),
        )
        return ExportSettings(
            Path(out_dir).expanduser(), name, val_ratio, test_ratio, self.seed.value(), options
        )
