"""Small widget helpers shared by the tabs."""

from __future__ import annotations

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget


def read_only_table(headers: list[str], tooltip: str, *, selectable: bool = False) -> QTableWidget:
    """A table of values: first column stretched, the others at least as wide as their
    headers, no row numbers, no editing.

    With ``selectable``, the user selects one whole row at a time.
    """
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    header = table.horizontalHeader()
    for column in range(1, len(headers)):
        fitting_header = header.sectionSizeHint(column)
        table.setColumnWidth(column, max(header.defaultSectionSize(), fitting_header))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setToolTip(tooltip)
    if selectable:
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    else:
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    return table


def dropped_paths(mime: QMimeData) -> list[str]:
    """The local files and folders in a drag or a drop (other URLs ignored)."""
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]


class DropPathMixin:
    """For a QWidget (listed first among the bases): a dropped local file or folder is
    handed to :meth:`path_dropped`. The widget must ``setAcceptDrops(True)``."""

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept a drag that carries a local file or folder."""
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Take the first dropped local file or folder."""
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.path_dropped(paths[0])

    def path_dropped(self, path: str) -> None:
        """Use the dropped path."""
        raise NotImplementedError
