"""The Evaluate page's pictures: the confusion matrix and the per-class metrics."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QTableWidgetItem, QWidget

from imgcls_desktop.core.evaluation import ClassMetrics
from imgcls_desktop.gui.inference.charts import fixed_plot
from imgcls_desktop.gui.inference.review import NumberItem
from imgcls_desktop.gui.widgets import read_only_table

FAILING_COLOUR = "#c0392b"
"""Text of a failing class (see ``EvaluationReport.failing_classes``)."""
_HIGHLIGHT = QColor(230, 126, 34)


class ConfusionMatrixView(pg.PlotWidget):
    """The confusion matrix as a heatmap: true classes down, predicted classes across,
    each cell's count written on it. A click on a cell outlines it and emits
    :attr:`cell_clicked`."""

    cell_clicked = Signal(int, int)
    """(true class index, predicted class index)"""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        fixed_plot(
            self,
            "Rows: the true class; columns: the predicted class; darker is a larger share. "
            "Click a cell to see its images",
        )
        self.setLabel("left", "true class")
        self.setLabel("bottom", "predicted class")
        self.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.ColorMap([0.0, 1.0], [(255, 255, 255), (31, 95, 168)]))
        self.addItem(self.image)
        self.outline = QGraphicsRectItem()
        pen = QPen(_HIGHLIGHT, 3)
        pen.setCosmetic(True)
        self.outline.setPen(pen)
        self.outline.setZValue(10)
        self.outline.hide()
        self.addItem(self.outline)
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.selected_cell: tuple[int, int] | None = None
        self._labels: list[pg.TextItem] = []
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.clear_matrix()

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
            self.select_cell(*cell)
            self.cell_clicked.emit(*cell)

    def select_cell(self, true_index: int, predicted_index: int) -> None:
        """Outline one cell (the one whose images are listed)."""
        self.selected_cell = (true_index, predicted_index)
        self.outline.setRect(QRectF(predicted_index, true_index, 1, 1))
        self.outline.show()

    def clear_matrix(self) -> None:
        """Show no matrix (no evaluation of the open model)."""
        self.show_matrix([], np.zeros((0, 0), dtype=np.int64))

    def show_matrix(self, class_names: list[str], matrix: np.ndarray) -> None:
        """Show ``matrix`` (true x predicted counts) with the class names on both axes."""
        self.matrix = np.asarray(matrix)
        self.selected_cell = None
        self.outline.hide()
        size = len(class_names)
        # Each row scaled by its class's images, so small classes read as clearly as big ones.
        totals = self.matrix.sum(axis=1, keepdims=True).clip(min=1)
        if size:
            self.image.setImage(self.matrix / totals, levels=(0, 1))
        else:
            self.image.clear()
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
        self.setRange(xRange=(0, max(size, 1)), yRange=(0, max(size, 1)), padding=0.02)


class ClassMetricsTable:
    """Precision, recall, F1 and support of every class; failing classes in red."""

    def __init__(self) -> None:
        self.table = read_only_table(
            ["Class", "Precision", "Recall", "F1", "Support"],
            "Per class: precision (right when predicted), recall (found when present), "
            "their harmonic mean F1, and how many images of the class there were; red: "
            "a class the model mostly gets wrong",
        )
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def show_metrics(self, metrics: list[ClassMetrics], failing: list[ClassMetrics]) -> None:
        """Fill one row per class; the ``failing`` ones in red."""
        table = self.table
        table.setSortingEnabled(False)
        table.setRowCount(len(metrics))
        red = QColor(FAILING_COLOUR)
        for row, m in enumerate(metrics):
            items = [QTableWidgetItem(m.name)]
            items += [NumberItem(f"{value:.3f}", value) for value in (m.precision, m.recall, m.f1)]
            items.append(NumberItem(f"{m.support:,}", m.support))
            for column, item in enumerate(items):
                if m in failing:
                    item.setForeground(red)
                table.setItem(row, column, item)
        table.setSortingEnabled(True)
