"""Live training curves: batch loss, epoch loss, accuracy and learning rate (pyqtgraph).

Each curve is one persistent ``PlotDataItem``; new points only go into Python lists, and a
timer pushes them with ``setData`` a few times a second, so a fast stream of batches never
makes the window redraw more often than it can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

REDRAW_INTERVAL_MS = 250
SMOOTHING = 0.9  # weight of the running average of the batch loss

_BLUE, _ORANGE, _GREEN, _GREY, _PURPLE = "#1f77b4", "#ff7f0e", "#2ca02c", "#b0b0b0", "#9467bd"
_ACCURACY_NAMES = (("train", _BLUE), ("validation", _ORANGE), ("top-k", _GREEN))


def _accuracy_title(*, top_k: bool) -> str:
    """The accuracy plot's title, naming its curves in their colours (top-k when drawn)."""
    names = _ACCURACY_NAMES if top_k else _ACCURACY_NAMES[:2]
    words = " ".join(f"<span style='color:{colour}'>{name}</span>" for name, colour in names)
    return f"Accuracy per epoch: {words}"


class _Curve:
    """A growing series and its plot item."""

    def __init__(
        self,
        plot: pg.PlotItem,
        name: str,
        colour: str,
        *,
        width: float = 2.0,
        symbol: str | None = None,
    ) -> None:
        self.x: list[float] = []
        self.y: list[float] = []
        self.item = plot.plot(
            [],
            [],
            name=name,
            pen=pg.mkPen(colour, width=width),
            symbol=symbol,
            symbolSize=6,
            symbolBrush=colour,
            symbolPen=None,
        )
        self._drawn = 0

    def append(self, x: float, y: float) -> None:
        self.x.append(x)
        self.y.append(y)

    def clear(self) -> None:
        self.x.clear()
        self.y.clear()
        self._drawn = -1

    def redraw(self) -> None:
        if self._drawn != len(self.x):
            self.item.setData(self.x, self.y)
            self._drawn = len(self.x)


def _plot(
    grid: QGridLayout,
    row: int,
    column: int,
    title: str,
    x_label: str,
    y_label: str,
    *,
    legend: bool = True,
) -> pg.PlotItem:
    # Separate PlotWidgets: GraphicsLayoutWidget calls pyqtgraph's mkQApp(), whose unique
    # connection to QStyleHints makes PySide6 6.11 print a Qt warning.
    widget = pg.PlotWidget(background="w")
    widget.setToolTip("Drag to pan, scroll to zoom; the small A button fits the curves again")
    grid.addWidget(widget, row, column)
    plot = widget.getPlotItem()
    plot.setTitle(title)
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.25)
    if legend:  # top right: the corner falling loss curves leave free
        plot.addLegend(offset=(-8, 8))
    plot.setMenuEnabled(False)
    return plot


class TrainingPlots(QWidget):
    """Four live plots: batch loss (raw, smoothed), epoch loss, accuracy, learning rate."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        batch = _plot(grid, 0, 0, "Batch loss", "epoch", "loss")
        epoch = _plot(grid, 0, 1, "Loss per epoch", "epoch", "loss")
        # Accuracy rises and may stay anywhere: its names go in the title, not over the curves.
        accuracy = _plot(
            grid, 1, 0, _accuracy_title(top_k=False), "epoch", "accuracy", legend=False
        )
        rate = _plot(grid, 1, 1, "Learning rate", "epoch", "learning rate", legend=False)
        accuracy.setYRange(0, 1, padding=0.02)
        self._plots = (batch, epoch, accuracy, rate)
        self.batch_loss = _Curve(batch, "batch", _GREY, width=1)
        self.smoothed_loss = _Curve(batch, "smoothed", _BLUE)
        self.train_loss = _Curve(epoch, "train", _BLUE, symbol="o")
        self.val_loss = _Curve(epoch, "validation", _ORANGE, symbol="o")
        self.train_accuracy = _Curve(accuracy, "train", _BLUE, symbol="o")
        self.val_accuracy = _Curve(accuracy, "validation", _ORANGE, symbol="o")
        self.top_k_accuracy = _Curve(accuracy, "validation top-k", _GREEN, symbol="t")
        self._accuracy_plot = accuracy
        self._titled_top_k = False
        self.learning_rate = _Curve(rate, "learning rate", _PURPLE)
        self._rate_plot = rate
        self._rate_top = 0.0
        self._curves = (
            self.batch_loss,
            self.smoothed_loss,
            self.train_loss,
            self.val_loss,
            self.train_accuracy,
            self.val_accuracy,
            self.top_k_accuracy,
            self.learning_rate,
        )
        self._smoothed: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self.redraw)
        self._timer.start()

    def clear(self) -> None:
        """Forget every point (a new run)."""
        for curve in self._curves:
            curve.clear()
        self._smoothed = None
        self.redraw()

    def set_epoch_range(self, epochs: int) -> None:
        """Show epochs 0 to ``epochs`` on every x axis.

        A fixed x range also makes redraws cheap: an auto-ranged axis lays its ticks out again
        whenever a point arrives (about 45 ms for the four plots, against 10 ms fixed).
        """
        for plot in self._plots:
            plot.setXRange(0, max(epochs, 1), padding=0.02)

    def add_batch(self, position: float, logs: Mapping[str, float]) -> None:
        """Add a batch's loss and learning rate at ``position`` (in epochs, fractional)."""
        if "loss" in logs:
            loss = float(logs["loss"])
            self._smoothed = (
                loss
                if self._smoothed is None
                else (SMOOTHING * self._smoothed + (1 - SMOOTHING) * loss)
            )
            self.batch_loss.append(position, loss)
            self.smoothed_loss.append(position, self._smoothed)
        if "learning_rate" in logs:
            self.learning_rate.append(position, float(logs["learning_rate"]))

    def add_epoch(self, epoch: int, logs: Mapping[str, object]) -> None:
        """Add an epoch's losses and accuracies (epoch numbers are 1-based)."""
        for key, curve in (
            ("train_loss", self.train_loss),
            ("val_loss", self.val_loss),
            ("train_accuracy", self.train_accuracy),
            ("val_accuracy", self.val_accuracy),
            ("val_top_k_accuracy", self.top_k_accuracy),
        ):
            value = logs.get(key)
            if isinstance(value, (int, float)):
                curve.append(epoch, float(value))

    def show_history(self, epochs: Sequence[Mapping[str, object]], target: int = 0) -> None:
        """Replace the curves by a run's per-epoch history (metrics.jsonl lines), on an x axis
        up to ``target`` epochs (at least the history's). Batches are not kept in the
        history: each epoch's mean training loss and its learning rate stand for them."""
        self.clear()
        self.set_epoch_range(max(len(epochs), target))
        for number, logs in enumerate(epochs, start=1):
            epoch = int(logs.get("epoch", number))  # type: ignore[call-overload]
            self.add_epoch(epoch, logs)
            loss, rate = logs.get("train_loss"), logs.get("learning_rate")
            if isinstance(loss, (int, float)):
                self._smoothed = float(loss)
                self.smoothed_loss.append(epoch, self._smoothed)
            if isinstance(rate, (int, float)):
                self.learning_rate.append(epoch, float(rate))
        self.redraw()

    def redraw(self) -> None:
        """Push new points to the plot items (called by the timer)."""
        for curve in self._curves:
            curve.redraw()
        if bool(self.top_k_accuracy.x) != self._titled_top_k:
            self._titled_top_k = bool(self.top_k_accuracy.x)
            self._accuracy_plot.setTitle(_accuracy_title(top_k=self._titled_top_k))
        top = max(self.learning_rate.y, default=0.0)
        if top > 0 and top != self._rate_top:
            # From zero: a constant rate auto-ranged alone reads as "0" on a +-0.5 axis.
            self._rate_top = top
            self._rate_plot.setYRange(0, top * 1.1, padding=0)
