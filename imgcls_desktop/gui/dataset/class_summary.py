"""Images per class: a table (name, count, share) and a bar chart whose names never overlap."""

from __future__ import annotations

import math
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QGroupBox, QSplitter, QTableWidgetItem, QVBoxLayout, QWidget

from imgcls_desktop.gui.widgets import read_only_table

MAX_LABEL_CHARS = 14
_LABEL_GAP_PX = 8
_AXIS_MARGIN_PX = 60  # the left axis and the plot's margins


def bar_labels(
    names: list[str], pixels_per_bar: float, text_width: Callable[[str], int]
) -> list[tuple[int, str]]:
    """The names to write under the bars, by position, so that none overlaps the next: every
    name when they fit, else one of every n; a long name is shortened with "…"."""
    shown = [_shortened(name) for name in names]
    widest = max((text_width(name) for name in shown), default=0) + _LABEL_GAP_PX
    step = max(1, math.ceil(widest / max(pixels_per_bar, 1.0)))
    # The middle one of each group of ``step`` bars: none is cut off at the chart's edge.
    return [(position, name) for position, name in enumerate(shown) if position % step == step // 2]


def _shortened(name: str) -> str:
    return name if len(name) <= MAX_LABEL_CHARS else name[: MAX_LABEL_CHARS - 1] + "…"


class ClassSummary(QGroupBox):
    """Images per class: a table (name, count, share) above a bar chart; select a class to
    filter the thumbnails."""

    class_selected = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Classes", parent)
        self._names: list[str] = []
        self.table = read_only_table(
            ["Class", "Images", "Share"],
            "Usable images per class; select a class to show only its images",
            selectable=True,
        )
        self.table.setMinimumHeight(150)
        rows = self.table.verticalHeader()  # compact rows: more classes in sight
        rows.setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.chart = pg.PlotWidget()
        self.chart.setBackground("w")
        self.chart.setMinimumHeight(100)
        self.chart.setMaximumHeight(150)  # the rest is the table's: every class is listed there
        self.chart.setMouseEnabled(x=False, y=False)
        self.chart.hideButtons()
        self.chart.setMenuEnabled(False)
        self.chart.setLabel("left", "images")
        self.chart.setToolTip("Usable images per class (every class is listed in the table)")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="#3b82c4")
        self.chart.addItem(self.bars)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.chart)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def show_counts(self, names: list[str], counts: list[int]) -> None:
        """Fill the table and the chart."""
        self._names = list(names)
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
        self.bars.setOpts(x=list(range(len(names))), height=counts, width=0.7)
        self.chart.setXRange(-0.6, len(names) - 0.4, padding=0)
        self.chart.setYRange(0, max(counts, default=1) * 1.08, padding=0)
        self._label_bars()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Write as many class names under the bars as fit the new width."""
        super().resizeEvent(event)
        self._label_bars()

    def _label_bars(self) -> None:
        axis = self.chart.getAxis("bottom")
        metrics = QFontMetrics(axis.style.get("tickFont") or self.chart.font())
        width = max(1, self.chart.width() - _AXIS_MARGIN_PX)
        labels = bar_labels(
            self._names, width / max(1, len(self._names)), metrics.horizontalAdvance
        )
        axis.setTicks([labels])

    def _on_selection(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        self.class_selected.emit(rows.pop() if rows else None)
