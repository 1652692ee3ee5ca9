"""The parts of the Inference tab: the labelling table, the probability chart, the confusion
matrix and the per-class metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidgetItem, QWidget

from imgcls_desktop.core.evaluation import ClassMetrics
from imgcls_desktop.core.labelling import Prediction
from imgcls_desktop.gui.widgets import DropPathMixin, read_only_table

BAR_COLOUR = "#9bbbdc"
TOP_K_COLOUR = "#1f5fa8"
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class _NumberItem(QTableWidgetItem):
    """A table cell showing ``text`` that sorts by ``value``."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self.value = value
        self.setTextAlignment(_RIGHT)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _NumberItem):
            return self.value < other.value
        return super().__lt__(other)


def shown_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies under it, else in full."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _fixed_plot(plot: pg.PlotWidget, tooltip: str) -> None:
    """Make ``plot`` white and still (no mouse zoom, no menu), with ``tooltip``."""
    plot.setBackground("w")
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.setToolTip(tooltip)


class PredictionTable(QWidget):
    """The predictions of a labelled folder: file, label, confidence, top-k; sortable, and
    filtered by label and minimum confidence."""

    FILE, LABEL, CONFIDENCE, TOP_K = range(4)
    file_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = read_only_table(
            ["File", "Label", "Confidence", "Top classes"],
            "The model's label for every image; click a header to sort, double-click a row "
            "to look at the image",
            selectable=True,
        )
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(self.FILE, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(self.TOP_K, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(self.FILE, 320)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(self.FILE, Qt.SortOrder.AscendingOrder)
        self.table.cellDoubleClicked.connect(
            lambda row, _column: self.file_activated.emit(
                self.table.item(row, self.FILE).data(Qt.ItemDataRole.UserRole)
            )
        )
        self._label_filter: str | None = None
        self._min_confidence = 0.0

    def show_predictions(self, predictions: list[Prediction], root: Path) -> None:
        """Fill the table, files named relative to ``root`` (the filters stay)."""
        table = self.table
        table.setSortingEnabled(False)
        table.setRowCount(len(predictions))
        for row, prediction in enumerate(predictions):
            path = prediction.path
            file_item = QTableWidgetItem(shown_path(path, root))
            file_item.setToolTip(str(path))
            file_item.setData(Qt.ItemDataRole.UserRole, str(path))
            top = ", ".join(f"{label} {p:.1%}" for label, p in prediction.top_k)
            cells = (
                file_item,
                QTableWidgetItem(", ".join(prediction.labels) or prediction.label),
                _NumberItem(f"{prediction.confidence:.1%}", prediction.confidence),
                QTableWidgetItem(top),
            )
            for column, item in enumerate(cells):
                table.setItem(row, column, item)
        table.setSortingEnabled(True)
        self._apply_filters()

    def set_filters(self, label: str | None, min_confidence: float) -> None:
        """Show only rows of ``label`` (None: every label) at or above ``min_confidence``."""
        self._label_filter = label
        self._min_confidence = min_confidence
        self._apply_filters()

    def _apply_filters(self) -> None:
        for row in range(self.table.rowCount()):
            label = self.table.item(row, self.LABEL).text()
            confidence = self.table.item(row, self.CONFIDENCE).value
            hidden = (
                self._label_filter is not None and self._label_filter not in label.split(", ")
            ) or confidence < self._min_confidence
            self.table.setRowHidden(row, hidden)

    def visible_rows(self) -> list[tuple[str, str, float]]:
        """(file, label, confidence) of the rows the filters let through, in table order."""
        return [
            (
                self.table.item(row, self.FILE).text(),
                self.table.item(row, self.LABEL).text(),
                self.table.item(row, self.CONFIDENCE).value,
            )
            for row in range(self.table.rowCount())
            if not self.table.isRowHidden(row)
        ]


class ProbabilityChart(pg.PlotWidget):
    """Every class's probability as a bar; the top-k bars in a darker colour."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _fixed_plot(self, "The probability of every class; the top classes are darker")
        self.setLabel("left", "probability")
        self.setMinimumHeight(180)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=BAR_COLOUR)
        self.addItem(self.bars)

    def show_probabilities(self, class_names: list[str], probabilities: np.ndarray, k: int) -> None:
        """Draw one bar per class, the ``k`` most probable highlighted."""
        top = set(np.argsort(-probabilities, kind="stable")[:k].tolist())
        positions = list(range(len(class_names)))
        brushes = [pg.mkBrush(TOP_K_COLOUR if i in top else BAR_COLOUR) for i in positions]
        self.bars.setOpts(x=positions, height=probabilities.tolist(), width=0.7, brushes=brushes)
        self.getAxis("bottom").setTicks([list(zip(positions, class_names))])
        self.setXRange(-0.6, len(class_names) - 0.4, padding=0)
        self.setYRange(0, 1.05, padding=0)


class ConfusionMatrixView(pg.PlotWidget):
    """The confusion matrix as a heatmap: true classes down, predicted classes across,
    each cell's count written on it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _fixed_plot(
            self, "Rows: the true class; columns: the predicted class; darker is a larger share"
        )
        self.setLabel("left", "true class")
        self.setLabel("bottom", "predicted class")
        self.invertY(True)
        self.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.ColorMap([0.0, 1.0], [(255, 255, 255), (31, 95, 168)]))
        self.addItem(self.image)
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self._labels: list[pg.TextItem] = []

    def show_matrix(self, class_names: list[str], matrix: np.ndarray) -> None:
        """Show ``matrix`` (true x predicted counts) with the class names on both axes."""
        self.matrix = np.asarray(matrix)
        size = len(class_names)
        # Each row scaled by its class's images, so small classes read as clearly as big ones.
        totals = self.matrix.sum(axis=1, keepdims=True).clip(min=1)
        self.image.setImage(self.matrix / totals, levels=(0, 1))
        ticks = [list(zip([i + 0.5 for i in range(size)], class_names))]
        self.getAxis("bottom").setTicks(ticks)
        self.getAxis("left").setTicks(ticks)
        for label in self._labels:
            self.removeItem(label)
        self._labels = []
        for (row, column), count in np.ndenumerate(self.matrix):
            share = count / totals[row, 0]
            label = pg.TextItem(str(count), color="w" if share > 0.5 else "k", anchor=(0.5, 0.5))
            label.setPos(column + 0.5, row + 0.5)
            self.addItem(label)
            self._labels.append(label)
        self.setRange(xRange=(0, size), yRange=(0, size), padding=0.02)


class ClassMetricsTable(QWidget):
    """Precision, recall, F1 and support of every class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = read_only_table(
            ["Class", "Precision", "Recall", "F1", "Support"],
            "Per class: precision (right when predicted), recall (found when present), "
            "their harmonic mean F1, and how many images of the class there were",
        )
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def show_metrics(self, metrics: list[ClassMetrics]) -> None:
        """Fill one row per class."""
        table = self.table
        table.setSortingEnabled(False)
        table.setRowCount(len(metrics))
        for row, m in enumerate(metrics):
            table.setItem(row, 0, QTableWidgetItem(m.name))
            for column, value in enumerate((m.precision, m.recall, m.f1), start=1):
                table.setItem(row, column, _NumberItem(f"{value:.3f}", value))
            table.setItem(row, 4, _NumberItem(f"{m.support:,}", m.support))
        table.setSortingEnabled(True)


class ImageDropLabel(DropPathMixin, QLabel):
    """Shows one image; an image file dropped on it is announced by ``image_dropped``."""

    image_dropped = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Drop an image here, or choose one above.", parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(280, 220)
        self.setToolTip("The image being classified; drop another image here")
        self.setStyleSheet("QLabel { border: 1px dashed #9aa4ae; }")
        self.setAcceptDrops(True)

    def path_dropped(self, path: str) -> None:
        """Announce a dropped file."""
        if Path(path).is_file():
            self.image_dropped.emit(path)
