"""The augmentation preview window: what training's augmentation makes of a few training
images, computed by training's own iterator (:mod:`imgcls_desktop.core.training.preview`).

Entry point for the Training tab (e.g. a "Preview Augmentation…" button)::

    dialog = AugmentationPreviewDialog(jobs, tab)   # once; non-modal, reusable
    dialog.show_preview(training_data_path, hyperparameters)

:meth:`AugmentationPreviewDialog.show_preview` shows the window and computes in a worker;
the augmentation_type combo and *Shuffle* recompute without scanning the data again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.hyperparams import AUGMENTATION_TYPES, HyperParameters
from imgcls_desktop.core.jobs import JobContext
from imgcls_desktop.core.training.packing import ScannedSource, scan_source
from imgcls_desktop.core.training.preview import AugmentationPreview, augmented_samples
from imgcls_desktop.gui.dialogs import show_error
from imgcls_desktop.gui.imaging import bgr_to_qimage
from imgcls_desktop.gui.workers import JobHandle, JobRunner, JobSlot, SlotPolicy

IMAGES = 4
VERSIONS = 6
TILE_SIDE = 128
"""Pixels of a tile's longer side on screen (small images are enlarged pixel by pixel)."""
_SPACER_COLUMN = 2  # between the original (column 1) and the versions


@dataclass(frozen=True)
class PreviewResult:
    """What a preview job returns: the data path, its scan (kept for the next preview)
    and the preview."""

    data_path: str
    source: ScannedSource
    preview: AugmentationPreview


def compute_preview(
    data_path: str,
    hp: HyperParameters,
    seed: int,
    source: ScannedSource | None,
    job: JobContext,
) -> PreviewResult:
    """Scan ``data_path`` unless ``source`` is its scan already, then preview (in a worker)."""
    if source is None:
        source = scan_source(Path(data_path), progress=job.progress, cancel=job.cancel)
    preview = augmented_samples(
        source,
        hp,
        images=IMAGES,
        versions=VERSIONS,
        seed=seed,
        progress=job.progress,
        cancel=job.cancel,
    )
    return PreviewResult(data_path, source, preview)


class AugmentationPreviewDialog(QDialog):
    """A non-modal window: a row per training image (its class on the left), the image as
    validation sees it, then the versions training's augmentation makes of it."""

    preview_shown = Signal(object)
    """The :class:`AugmentationPreview` just drawn."""

    def __init__(self, jobs: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("augmentationPreview")
        self.setWindowTitle("Augmentation Preview")
        self.setModal(False)
        self._slot = JobSlot(jobs, self, policy=SlotPolicy.REPLACE)  # the latest request wins
        self._slot.busy_changed.connect(self._show_busy)
        self._data_path = ""
        self._hp = HyperParameters()
        self._source: ScannedSource | None = None
        self.seed = 0
        self.preview: AugmentationPreview | None = None

        self.augmentation = QComboBox()
        self.augmentation.addItems(AUGMENTATION_TYPES)
        self.augmentation.setToolTip(
            "SageMaker's augmentation_type; the preview applies it with training's own iterator"
        )
        self.augmentation.currentTextChanged.connect(self._recompute)
        self.shuffle_button = QPushButton("Shuffle")
        self.shuffle_button.setToolTip("Other images, augmented afresh")
        self.shuffle_button.clicked.connect(self.shuffle)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(160)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.grid_area = QScrollArea()
        self.grid_area.setWidgetResizable(True)
        self.grid_area.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid_area.setWidget(QLabel("No preview yet."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("augmentation_type"))
        controls.addWidget(self.augmentation)
        controls.addWidget(self.shuffle_button)
        controls.addStretch(1)
        controls.addWidget(self.progress)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.details)
        layout.addWidget(self.grid_area, 1)
        layout.addWidget(buttons)
        self.finished.connect(self._slot.cancel)  # QDialog.finished: the window closed
        self.resize(960, 640)

    def show_preview(self, data_path: str, hp: HyperParameters) -> JobHandle | None:
        """Show the window and preview ``hp``'s augmentation on the training data at
        ``data_path`` (a .rec, .lst, manifest or class folder), scanned afresh.

        Returns the job (a preview still running is cancelled: this one replaces it), or
        None when there is no data path (an error is shown).
        """
        self._data_path = data_path
        self._hp = hp
        self._source = None
        self.augmentation.blockSignals(True)
        self.augmentation.setCurrentText(hp.augmentation_type)
        self.augmentation.blockSignals(False)
        self.show()
        self.raise_()
        self.activateWindow()
        if not data_path:
            show_error(self, "Nothing to preview", "Choose the training data first.")
            return None
        return self._recompute()

    @Slot()
    def shuffle(self) -> JobHandle | None:
        """Preview other images, augmented afresh (the next seed)."""
        self.seed += 1
        return self._recompute()

    @Slot()
    def _recompute(self) -> JobHandle | None:
        if not self._data_path:
            return None
        hp = self._hp.replace(augmentation_type=self.augmentation.currentText())
        handle = self._slot.start(
            partial(compute_preview, self._data_path, hp, self.seed, self._source),
            "Previewing the augmentation",
        )
        if handle is not None:
            handle.progress.connect(self._on_progress)
            handle.succeeded.connect(self._on_succeeded)
            handle.failed.connect(self._on_failed)
        self.details.setText(f"Augmenting images of {Path(self._data_path).name}…")
        return handle

    @Slot(bool)
    def _show_busy(self, busy: bool) -> None:
        self.progress.setRange(0, 0)  # busy until the first progress report
        self.progress.setVisible(busy)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    @Slot(object)
    def _on_succeeded(self, result: PreviewResult) -> None:
        if result.data_path != self._data_path:
            return  # the data changed meanwhile; the job that replaced this one shows it
        self._source = result.source
        self.preview = result.preview
        self.details.setText(result.preview.describe())
        grid = _grid(result.preview)
        self.grid_area.setWidget(grid)
        self._grow_to_fit(grid)
        self.preview_shown.emit(result.preview)

    def _grow_to_fit(self, grid: QWidget) -> None:
        """Grow (never shrink) so the whole grid shows, within the screen."""
        self.layout().activate()  # lay the new texts out before measuring
        frame = 2 * self.grid_area.frameWidth()
        wanted = self.size() - self.grid_area.size() + grid.sizeHint() + QSize(frame, frame)
        screen = self.screen().availableGeometry()
        self.resize(
            min(max(self.width(), wanted.width()), screen.width()),
            min(max(self.height(), wanted.height()), screen.height()),
        )

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self.details.setText("")
        show_error(self, "Cannot preview the augmentation", message, details)


def _grid(preview: AugmentationPreview) -> QWidget:
    """The tiles with their headers: classes down the left, "original", 1, 2, … across,
    a little space between the original and its versions."""
    grid = QWidget()
    layout = QGridLayout(grid)
    layout.setSpacing(6)
    layout.setColumnMinimumWidth(_SPACER_COLUMN, 8)
    titles = {1: "original"} | {_SPACER_COLUMN + n: str(n) for n in range(1, preview.versions + 1)}
    for column, title in titles.items():
        header = QLabel(f"<b>{title}</b>")
        header.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(header, 0, column)
    for row, entry in enumerate(preview.rows, start=1):
        name = QLabel(f"<b>{entry.class_name}</b><br><small>{Path(entry.source).name}</small>")
        name.setToolTip(entry.source)
        name.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(name, row, 0)
        for column, tile in zip(titles, (entry.original, *entry.versions)):
            image = QLabel()
            image.setPixmap(_pixmap(tile))
            layout.addWidget(image, row, column)
    layout.setRowStretch(len(preview.rows) + 1, 1)
    layout.setColumnStretch(len(titles) + 2, 1)
    return grid


def _pixmap(tile: np.ndarray) -> QPixmap:
    """An RGB tile at :data:`TILE_SIDE`: enlarged by a whole factor, or shrunk smoothly."""
    pixmap = QPixmap.fromImage(bgr_to_qimage(tile[..., ::-1]))
    longer = max(tile.shape[:2])
    if longer <= TILE_SIDE:
        factor = TILE_SIDE // longer
        return pixmap.scaled(pixmap.size() * factor)  # nearest neighbour: the real pixels
    return pixmap.scaled(
        TILE_SIDE,
        TILE_SIDE,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
