"""The One Image page's pictures: the class probabilities as bars, and the image itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics, QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

from imgcls_desktop.gui.widgets import DropPathMixin

TOP_COLOUR = "#c0392b"
"""The most probable class's bar."""
RUNNER_UP_COLOUR = "#1f5fa8"
"""The bars of the next most probable classes (the rest of the top k)."""
BAR_COLOUR = "#9bbbdc"


def fixed_plot(plot: pg.PlotWidget, tooltip: str) -> None:
    """Make ``plot`` white and still (no mouse zoom, no menu), with ``tooltip``."""
    plot.setBackground("w")
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.setToolTip(tooltip)


class ProbabilityChart(pg.PlotWidget):
    """Every class's probability as a bar: the most probable in red, the next ones of the
    top k in dark blue. Class names are shortened to their bar's width, so they never
    overlap (the full names are in the tooltip)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        fixed_plot(
            self, "The probability of every class: red the most probable, dark blue the runners-up"
        )
        self.setLabel("left", "probability")
        self.setMinimumHeight(180)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=BAR_COLOUR)
        self.addItem(self.bars)
        self._names: list[str] = []
        self._shown: list[str] = []
        self.getPlotItem().getViewBox().sigResized.connect(self._label_bars)

    def show_probabilities(self, class_names: list[str], probabilities: np.ndarray, k: int) -> None:
        """Draw one bar per class, the ``k`` most probable highlighted."""
        ranked = np.argsort(-probabilities, kind="stable")[:k].tolist()
        colours = {index: RUNNER_UP_COLOUR for index in ranked[1:]}
        colours[ranked[0]] = TOP_COLOUR
        positions = list(range(len(class_names)))
        brushes = [pg.mkBrush(colours.get(i, BAR_COLOUR)) for i in positions]
        self.bars.setOpts(x=positions, height=probabilities.tolist(), width=0.7, brushes=brushes)
        self._names = list(class_names)
        self._label_bars()
        self.setXRange(-0.6, len(class_names) - 0.4, padding=0)
        self.setYRange(0, 1.05, padding=0)
        best = ranked[0]
        self.setToolTip(
            f"Most probable: {class_names[best]} ({probabilities[best]:.1%}). Classes: "
            + ", ".join(class_names)
        )

    def shown_names(self) -> list[str]:
        """The class names as written under the bars (shortened to fit)."""
        return list(self._shown)

    def bar_width(self) -> int:
        """The width each bar's name may take, in pixels."""
        width = self.getPlotItem().getViewBox().width() or self.width()
        return max(1, int(width / max(1, len(self._names))) - 4)

    def _label_bars(self) -> None:
        if not self._names:
            return
        metrics = QFontMetrics(self.getAxis("bottom").style.get("tickFont") or self.font())
        room = self.bar_width()
        self._shown = [
            metrics.elidedText(name, Qt.TextElideMode.ElideRight, room) for name in self._names
        ]
        self.getAxis("bottom").setTicks([list(enumerate(self._shown))])


class ImageView(DropPathMixin, QLabel):
    """Shows one image scaled to fit the view (small images enlarged, large ones shrunk, the
    aspect ratio kept); an image file dropped on it is announced by ``image_dropped``."""

    image_dropped = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Drop an image here, or choose one above.", parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(280, 220)
        self.setToolTip("The image being classified; drop another image here")
        self.setStyleSheet("QLabel { border: 1px dashed #9aa4ae; }")
        self.setAcceptDrops(True)
        self._image: QImage | None = None

    def show_image(self, image: QImage) -> None:
        """Show ``image`` fitted to the view."""
        self._image = image
        self._fit()

    def sizeHint(self) -> QSize:
        """Room for a picture, not the size of the last one."""
        return QSize(360, 360)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Fit the image to the new size."""
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._image is None:
            return
        room = self.contentsRect().size() - QSize(4, 4)
        scaled = self._image.scaled(
            room.expandedTo(QSize(1, 1)),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.setPixmap(QPixmap.fromImage(scaled))

    def path_dropped(self, path: str) -> None:
        """Announce a dropped file."""
        if Path(path).is_file():
            self.image_dropped.emit(path)
