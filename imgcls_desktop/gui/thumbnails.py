"""A thumbnail grid of a data set's images: loaded lazily in a worker thread, cached, filterable.

The model asks the loader for a thumbnail the first time the view paints a row; the loader
decodes in its own thread, most recent request first, and sends back a ``QImage`` that the
model turns into a cached ``QPixmap`` on the GUI thread. Results carry the generation of the
data set they were made for, so nothing from a replaced data set ever reaches the new one.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from pathlib import PurePath
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSignalBlocker,
    QSize,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QCloseEvent, QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.gui.thumbnail_loader import THUMBNAIL_SIZE, ThumbnailLoader, placeholder_pixmap

CACHE_SIZE = 2000
"""Thumbnails kept in memory (37 kB each at 96 px: about 74 MB when full)."""


class ThumbnailModel(QAbstractListModel):
    """One row per shown sample of a data set (all, or one class's), with lazy thumbnails.

    Roles: display = file name, tool tip = path and class(es), decoration = the thumbnail
    (:attr:`placeholder` until it arrives, or :attr:`unreadable_placeholder`),
    :attr:`SampleIndexRole` = the sample's index in ``dataset.samples``. Thumbnails are cached
    by sample index (least recently shown dropped first), so changing the filter keeps them.
    """

    SampleIndexRole = Qt.ItemDataRole.UserRole + 1

    def __init__(
        self,
        loader: ThumbnailLoader,
        cache_size: int = CACHE_SIZE,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._loader = loader
        self._cache_size = cache_size
        self._dataset: Dataset | None = None
        self._generation = 0
        self._class_id: int | None = None
        self._rows: list[int] = []  # sample indices, ascending
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()
        self._failures: dict[int, str] = {}
        self._pending: set[int] = set()
        self.placeholder = placeholder_pixmap(loader.size, unreadable=False)
        self.unreadable_placeholder = placeholder_pixmap(loader.size, unreadable=True)
        loader.loaded.connect(self._on_loaded)
        loader.failed.connect(self._on_failed)

    def dataset(self) -> Dataset | None:
        """The data set shown, if any."""
        return self._dataset

    def loader(self) -> ThumbnailLoader:
        """The loader decoding this model's thumbnails."""
        return self._loader

    def failure(self, sample_index: int) -> str | None:
        """Why the sample's thumbnail cannot be shown, or None."""
        return self._failures.get(sample_index)

    def set_dataset(self, dataset: Dataset | None) -> None:
        """Show a data set (all classes), forgetting every thumbnail of the previous one."""
        self.beginResetModel()
        self._dataset = dataset
        self._generation = self._loader.set_dataset(dataset)
        self._class_id = None
        self._cache.clear()
        self._failures.clear()
        self._pending.clear()
        self._rows = self._filtered_rows()
        self.endResetModel()

    def generation(self) -> int:
        """The loader's generation for the data set shown; results of other ones are ignored."""
        return self._generation

    def class_filter(self) -> int | None:
        """The class id whose samples are shown, or None for all."""
        return self._class_id

    def set_class_filter(self, class_id: int | None) -> None:
        """Show only the samples labelled with this class id (None: all samples)."""
        if class_id is not None and not (
            self._dataset is not None and 0 <= class_id < self._dataset.num_classes
        ):
            raise ValueError(f"no class with id {class_id}")
        self.beginResetModel()
        self._class_id = class_id
        self._rows = self._filtered_rows()
        self.endResetModel()

    def sample_index(self, row: int) -> int:
        """The index in ``dataset.samples`` of the sample shown in a row."""
        return self._rows[row]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        """Rows shown: 0 under a valid parent, as for any list model."""
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """The file name, tool tip, thumbnail or sample index of a row."""
        if self._dataset is None or not index.isValid():
            return None
        sample_index = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return PurePath(self._dataset.samples[sample_index].path).name
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(sample_index)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(sample_index)
        if role == self.SampleIndexRole:
            return sample_index
        return None

    def _filtered_rows(self) -> list[int]:
        if self._dataset is None:
            return []
        if self._class_id is None:
            return list(range(len(self._dataset.samples)))
        class_id = self._class_id
        return [i for i, sample in enumerate(self._dataset.samples) if class_id in sample.labels]

    def _decoration(self, sample_index: int) -> QPixmap:
        pixmap = self._cache.get(sample_index)
        if pixmap is not None:
            self._cache.move_to_end(sample_index)
            return pixmap
        if sample_index in self._failures:
            return self.unreadable_placeholder
        if sample_index in self._pending:
            self._loader.promote(sample_index)
        else:
            self._pending.add(sample_index)
            self._pending.difference_update(self._loader.request(sample_index))
        return self.placeholder

    def _tooltip(self, sample_index: int) -> str:
        assert self._dataset is not None
        sample = self._dataset.samples[sample_index]
        names = ", ".join(self._dataset.class_names[label] for label in sample.labels)
        heading = "Classes" if len(sample.labels) > 1 else "Class"
        lines = [sample.path, f"{heading}: {names or 'none'}"]
        reason = self._failures.get(sample_index)
        if reason is not None:
            lines.append(f"Unreadable: {reason}")
        return "\n".join(lines)

    @Slot(int, int, QImage)
    def _on_loaded(self, generation: int, sample_index: int, image: QImage) -> None:
        if generation != self._generation:
            return
        self._pending.discard(sample_index)
        self._cache[sample_index] = QPixmap.fromImage(image)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        self._row_changed(sample_index)

    @Slot(int, int, str)
    def _on_failed(self, generation: int, sample_index: int, reason: str) -> None:
        if generation != self._generation:
            return
        self._pending.discard(sample_index)
        self._failures[sample_index] = reason
        self._row_changed(sample_index)

    def _row_changed(self, sample_index: int) -> None:
        row = bisect.bisect_left(self._rows, sample_index)
        if row < len(self._rows) and self._rows[row] == sample_index:
            model_index = self.index(row)
            self.dataChanged.emit(
                model_index,
                model_index,
                [Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole],
            )


class _ThumbnailView(QListView):
    """An icon-mode list view for many same-sized thumbnails.

    The cells share a row's spare width, so the grid has no ragged empty strip at the right.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setToolTip("Thumbnails of the images; double-click one (or press Enter) to open it")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self._cell = QSize(THUMBNAIL_SIZE + 24, THUMBNAIL_SIZE + self.fontMetrics().height() + 16)
        self.setGridSize(self._cell)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        # Always on: a scroll bar coming and going would change the width the cells share.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.verticalScrollBar().setSingleStep(THUMBNAIL_SIZE // 3)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Widen the cells so that whole columns fill the width."""
        width = self.viewport().width() - 1  # a row that fills the width exactly would wrap
        columns = max(1, width // self._cell.width())
        cell = QSize(max(self._cell.width(), width // columns), self._cell.height())
        if cell != self.gridSize():
            self.setGridSize(cell)
        super().resizeEvent(event)


class ThumbnailGrid(QWidget):
    """A data set's images as a grid of thumbnails, with a class filter and an image count.

    Double-click or Enter on a thumbnail emits :attr:`sample_activated` with the sample's
    index. Call :meth:`shutdown` when the grid is no longer needed (closing it does too).
    """

    sample_activated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loader = ThumbnailLoader(THUMBNAIL_SIZE)
        self._model = ThumbnailModel(self._loader, parent=self)
        self.destroyed.connect(self._loader.shutdown, Qt.ConnectionType.DirectConnection)

        self._filter = QComboBox()
        self._filter.setToolTip("Show the images of one class only, or of all classes")
        self._filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._count = QLabel()
        self._count.setToolTip("How many images the grid shows")
        self._view = _ThumbnailView()
        self._view.setModel(self._model)

        bar = QHBoxLayout()
        filter_label = QLabel("&Class:")
        filter_label.setBuddy(self._filter)
        bar.addWidget(filter_label)
        bar.addWidget(self._filter)
        bar.addStretch(1)
        bar.addWidget(self._count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self._view, 1)

        self._filter.currentIndexChanged.connect(self._on_filter_chosen)
        self._view.activated.connect(self._on_activated)
        self.set_dataset(None)

    def model(self) -> ThumbnailModel:
        """The model behind the grid."""
        return self._model

    def view(self) -> QListView:
        """The list view showing the thumbnails."""
        return self._view

    def loader(self) -> ThumbnailLoader:
        """The loader whose thread decodes the thumbnails."""
        return self._loader

    def set_dataset(self, dataset: Dataset | None) -> None:
        """Show a data set (all classes), or nothing."""
        self._model.set_dataset(dataset)
        with QSignalBlocker(self._filter):
            self._filter.clear()
            self._filter.addItem("All classes", None)
            if dataset is not None:
                counts = dataset.class_counts()
                for class_id, (name, count) in enumerate(zip(dataset.class_names, counts)):
                    self._filter.addItem(f"{name} ({count})", class_id)
        self._filter.setEnabled(self._filter.count() > 1)
        self._view.scrollToTop()
        self._update_count()

    def class_filter(self) -> int | None:
        """The class id whose images are shown, or None for all classes."""
        return self._model.class_filter()

    def set_class_filter(self, class_id: int | None) -> None:
        """Show only the images of this class id (None: all classes)."""
        self._apply_filter(class_id)
        with QSignalBlocker(self._filter):
            self._filter.setCurrentIndex(0 if class_id is None else class_id + 1)

    def shutdown(self) -> bool:
        """Stop the thumbnail thread (final; closing or destroying the grid does it too).

        True when the thread ended within the timeout.
        """
        return self._loader.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the thumbnail thread when the grid's window closes."""
        self.shutdown()
        super().closeEvent(event)

    @Slot(int)
    def _on_filter_chosen(self, combo_index: int) -> None:
        self._apply_filter(self._filter.itemData(combo_index))

    def _apply_filter(self, class_id: int | None) -> None:
        self._model.set_class_filter(class_id)
        self._view.scrollToTop()
        self._update_count()

    @Slot(QModelIndex)
    def _on_activated(self, index: QModelIndex) -> None:
        self.sample_activated.emit(self._model.sample_index(index.row()))

    def _update_count(self) -> None:
        dataset = self._model.dataset()
        total = 0 if dataset is None else len(dataset.samples)
        shown = self._model.rowCount()
        noun = "image" if total == 1 else "images"
        self._count.setText(f"{shown} {noun}" if shown == total else f"{shown} of {total} {noun}")
