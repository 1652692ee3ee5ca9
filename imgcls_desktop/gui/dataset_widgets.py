"""The parts of the Dataset tab: empty state, class summary, problems, export settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.dataset.export import ExportOptions
from imgcls_desktop.gui.imaging import load_qimage
from imgcls_desktop.gui.path_field import PathField, PathKind
from imgcls_desktop.gui.widgets import read_only_table

PATH_ROLE = Qt.ItemDataRole.UserRole


class EmptyState(QWidget):
    """What the tab shows before a data set is open: what to do, and the sample data set."""

    open_folder_requested = Signal()
    open_file_requested = Signal()
    sample_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("<h2>Open a data set to begin</h2>")
        text = QLabel(
            "Drop a folder with one sub-folder of images per class, an im2rec <tt>.lst</tt>, "
            "a SageMaker augmented manifest or a <tt>.rec</tt> file anywhere on this window, "
            "or choose one below.<br><br><b>New here?</b> Try the sample: one click draws 400 "
            "images of four shapes, checks them and proposes a training set-up; training it "
            "takes about a minute, and then the model labels images for you."
        )
        text.setWordWrap(True)
        text.setFixedWidth(560)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        buttons = QHBoxLayout()
        for label, tip, signal in (
            (
                "Open Folder…",
                "A folder with one sub-folder per class (Ctrl+O)",
                self.open_folder_requested,
            ),
            (
                "Open File…",
                "An im2rec .lst, a manifest or a .rec (Ctrl+Shift+O)",
                self.open_file_requested,
            ),
            (
                "Try the Sample Data Set",
                "4 classes of drawn shapes, 100 images each, 64 px, ready to train on",
                self.sample_requested,
            ),
        ):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.setMinimumHeight(36)
            button.clicked.connect(signal)
            buttons.addWidget(button)
        self.sample_button = button
        self.sample_button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        # Centred by stretches: a wrapped label centred by alignment gets clipped.
        for widget in (title, text):
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(widget)
            row.addStretch(1)
            layout.addLayout(row)
        buttons.insertStretch(0, 1)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(3)


class ClassSummary(QGroupBox):
    """Images per class: a table (name, count, share) and a bar chart."""

    class_selected = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Classes", parent)
        self.table = read_only_table(
            ["Class", "Images", "Share"],
            "Usable images per class; select a class to show only its images",
            selectable=True,
        )
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.chart = pg.PlotWidget()
        self.chart.setBackground("w")
        self.chart.setMinimumHeight(150)
        self.chart.setMouseEnabled(x=False, y=False)
        self.chart.hideButtons()
        self.chart.setMenuEnabled(False)
        self.chart.setLabel("left", "images")
        self.chart.setToolTip("Usable images per class")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="#3b82c4")
        self.chart.addItem(self.bars)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 3)
        layout.addWidget(self.chart, 2)

    def show_counts(self, names: list[str], counts: list[int]) -> None:
        """Fill the table and the chart."""
        total = sum(counts) or 1
        self.table.setRowCount(len(names))
        for row, (name, count) in enumerate(zip(names, counts)):
            cells = (name, f"{count:,}", f"{count / total:.1%}")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, column, item)
        positions = list(range(len(names)))
        self.bars.setOpts(x=positions, height=counts, width=0.7)
        self.chart.getAxis("bottom").setTicks([list(zip(positions, names))])
        self.chart.setXRange(-0.6, len(names) - 0.4, padding=0)
        self.chart.setYRange(0, max(counts, default=1) * 1.08, padding=0)

    def _on_selection(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        self.class_selected.emit(rows.pop() if rows else None)


@dataclass(frozen=True)
class Problem:
    """One line of the problems list: a category, a text and optionally a file."""

    category: str
    text: str
    path: str | None = None


class ProblemsView(QGroupBox):
    """The scan's findings grouped by category; a click on a file shows it."""

    file_clicked = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Problems", parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setToolTip("What the scan found; click a file to look at it")
        self.tree.itemClicked.connect(self._on_click)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)

    def show_problems(self, problems: list[Problem]) -> None:
        """Group ``problems`` by category, each category with its count."""
        self.tree.clear()
        categories: dict[str, QTreeWidgetItem] = {}
        for problem in problems:
            parent = categories.get(problem.category)
            if parent is None:
                parent = QTreeWidgetItem(self.tree, [problem.category])
                categories[problem.category] = parent
            item = QTreeWidgetItem(parent, [problem.text])
            item.setToolTip(0, problem.path or problem.text)
            item.setData(0, PATH_ROLE, problem.path)
        for name, item in categories.items():
            item.setText(0, f"{name} ({item.childCount()})")
            item.setExpanded(item.childCount() <= 20)
        if not problems:
            QTreeWidgetItem(self.tree, ["No problems found"])
        self.setTitle(f"Problems ({len(problems)})" if problems else "Problems")

    def _on_click(self, item: QTreeWidgetItem) -> None:
        path = item.data(0, PATH_ROLE)
        if path:
            self.file_clicked.emit(path, item.text(0))


class ImagePreview(QDialog):
    """A non-modal window showing one image and what is known about it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Image")
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(320, 240)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)

    def show_image(self, title: str, data: bytes | None, caption: str) -> None:
        """Show ``data`` (or only the caption when it cannot be decoded)."""
        self.setWindowTitle(title)
        self.caption.setText(caption)
        image = None
        if data:
            try:
                image = load_qimage(data, 512)
            except Exception:  # an unreadable image is exactly what the caption explains
                image = None
        if image is None or image.isNull():
            self.image.setText("This file cannot be shown.")
        else:
            self.image.setPixmap(QPixmap.fromImage(image))
        self.show()
        self.raise_()


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
    """Split shares, image options and the output folder, and the Export button."""

    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
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
