"""The parts of the Inference tab: the probability chart, the confusion matrix and the
per-class metrics (the tables of images to review are in ``review``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QLabel, QTableWidgetItem, QWidget

from imgcls_desktop.core.evaluation import ClassMetrics
from imgcls_desktop.gui.review import NumberItem
from imgcls_desktop.gui.widgets import DropPathMixin, read_only_table

BAR_COLOUR = "#9bbbdc"
TOP_K_COLOUR = "#1f5fa8"


def _fixed_plot(plot: pg.PlotWidget, tooltip: str) -> None:
    """Make ``plot`` white and still (no mouse zoom, no menu), with ``tooltip``."""
    plot.setBackground("w")
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.setToolTip(tooltip)


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
    each cell's count written on it. A click on a cell emits :attr:`cell_clicked`."""

    cell_clicked = Signal(int, int)
    """(true class index, predicted class index)"""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _fixed_plot(
            self,
            "Rows: the true class; columns: the predicted class; darker is a larger share. "
            "Click a cell to see its images",
        )
        self.setLabel("left", "true class")
        self.setLabel("bottom", "predicted class")
        self.invertY(True)
        for axis in ("bottom", "left"):
            self.getAxis(axis).setTicks([[]])  # empty until a matrix brings its class names
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.ColorMap([0.0, 1.0], [(255, 255, 255), (31, 95, 168)]))
        self.addItem(self.image)
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self._labels: list[pg.TextItem] = []
        self.scene().sigMouseClicked.connect(self._on_clicked)

    def cell_at(self, scene_position: QPointF) -> tuple[int, int] | None:
        """(true, predicted) class indices of the cell at a scene position, if any."""
        point = self.getPlotItem().getViewBox().mapSceneToView(scene_position)
        row, column = math.floor(point.y()), math.floor(point.x())
        size = len(self.matrix)
        return (row, column) if 0 <= row < size and 0 <= column < size else None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Keep the press: clicks on the matrix are the view's, not its parent's."""
        super().mousePressEvent(event)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """Keep the release, like the press."""
        super().mouseReleaseEvent(event)
        event.accept()

    def _on_clicked(self, event: MouseClickEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            self.cell_clicked.emit(*cell)

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
                table.setItem(row, column, NumberItem(f"{value:.3f}", value))
            table.setItem(row, 4, NumberItem(f"{m.support:,}", m.support))
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
