"""Thumbnails in a column of a table, over the data set tab's lazy thumbnail model: one
mechanism for the grid and the review tables (decoded in a thread, cached, placeholders)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QSize, Qt, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from imgcls_desktop.core.corrections import ImageRef
from imgcls_desktop.core.dataset.samples import Dataset, SourceKind
from imgcls_desktop.gui.thumbnail_loader import ThumbnailLoader
from imgcls_desktop.gui.thumbnails import ThumbnailModel

ROW_THUMBNAIL_SIZE = 48
"""Side of the thumbnails in the tables' rows, in pixels."""
_DECORATION = Qt.ItemDataRole.DecorationRole


class _ThumbnailItem(QTableWidgetItem):
    """A cell whose thumbnail is asked for the first time the view paints it."""

    def __init__(self, column: ThumbnailColumn, index: int) -> None:
        super().__init__()
        self._column = column
        self.index = index

    def data(self, role: int) -> Any:
        """The cell's data; the picture comes from the column's thumbnail model."""
        if role == _DECORATION:
            return self._column.thumbnail(self.index)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._column.tooltip(self.index)
        return super().data(role)


class ThumbnailColumn(QObject):
    """Thumbnails in one column of a table, from a
    :class:`~imgcls_desktop.gui.thumbnails.ThumbnailModel` (the data set tab's lazy loading
    and cache, decoded in the loader's thread): a row asks for its thumbnail when first
    painted. The loader's thread ends with :meth:`shutdown` (or when the table is destroyed).
    """

    def __init__(self, table: QTableWidget, column: int, size: int = ROW_THUMBNAIL_SIZE) -> None:
        super().__init__(table)
        self._table = table
        self._column = column
        self._size = size
        self._model: ThumbnailModel | None = None
        self._loader: ThumbnailLoader | None = None
        self._items: list[_ThumbnailItem] = []
        table.setIconSize(QSize(size, size))
        table.verticalHeader().setDefaultSectionSize(size + 6)
        table.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
        table.setColumnWidth(column, size + 12)

    def items(self, images: Sequence[ImageRef]) -> list[QTableWidgetItem]:
        """New cells for the thumbnails of ``images`` (files, or records of one data set);
        earlier cells get no more thumbnails."""
        if images or self._model is not None:  # no thread until there is something to show
            self._ensure_model().set_dataset(_dataset_of(images))
        self._items = [_ThumbnailItem(self, index) for index in range(len(images))]
        return list(self._items)

    @property
    def placeholder(self) -> QPixmap:
        """The picture of a row whose thumbnail is not decoded yet."""
        return self._ensure_model().placeholder

    @property
    def unreadable_placeholder(self) -> QPixmap:
        """The picture of a row whose image cannot be shown."""
        return self._ensure_model().unreadable_placeholder

    def thumbnail(self, index: int) -> Any:
        """The thumbnail of image ``index`` (a placeholder until decoded)."""
        assert self._model is not None
        return self._model.data(self._model.index(index), _DECORATION)

    def tooltip(self, index: int) -> str:
        """Why image ``index`` cannot be shown, if it cannot."""
        reason = None if self._model is None else self._model.failure(index)
        return "" if reason is None else f"Cannot show the image: {reason}"

    def shutdown(self) -> bool:
        """Stop the loader's thread (final); True when it ended within the timeout."""
        return self._model.loader().shutdown() if self._model is not None else True

    def _ensure_model(self) -> ThumbnailModel:
        if self._model is None:
            loader = self._loader = ThumbnailLoader(self._size)
            self._model = ThumbnailModel(loader, parent=self)
            self._model.dataChanged.connect(self._on_changed)
            self._table.destroyed.connect(loader.shutdown, Qt.ConnectionType.DirectConnection)
        return self._model

    @Slot(QModelIndex, QModelIndex)
    def _on_changed(self, first: QModelIndex, last: QModelIndex) -> None:
        for index in range(first.row(), last.row() + 1):
            if index < len(self._items):  # repaint the cell: it asks for its picture again
                item = self._items[index]
                self._table.viewport().update(self._table.visualItemRect(item))


def _dataset_of(images: Sequence[ImageRef]) -> Dataset:
    """A data set whose samples are ``images``, read from their data set's ``.rec`` if any."""
    samples = [image.sample() for image in images]
    source = next((image.dataset for image in images if image.dataset is not None), None)
    if source is None:
        return Dataset(["image"], samples, SourceKind.FOLDER, Path())
    return replace(source, samples=samples)
