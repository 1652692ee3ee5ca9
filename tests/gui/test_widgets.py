"""Shared widgets: path fields take dropped paths; read-only tables."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QAbstractItemView
from pytestqt.qtbot import QtBot

from imgcls_desktop.gui.path_field import PathField, PathKind
from imgcls_desktop.gui.widgets import read_only_table


def _mime(urls: list[QUrl]) -> QMimeData:
    mime = QMimeData()
    mime.setUrls(urls)
    return mime


def _drop(mime: QMimeData) -> QDropEvent:
    """A drop event; it does not own ``mime``, which must outlive it."""
    return QDropEvent(
        QPoint(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )


def test_a_dropped_local_path_fills_the_field(qtbot: QtBot, tmp_path: Path) -> None:
    field = PathField(PathKind.FOLDER, caption="Output folder")
    qtbot.addWidget(field)
    seen: list[str] = []
    field.changed.connect(seen.append)
    mime = _mime([QUrl("https://example.invalid/x"), QUrl.fromLocalFile(str(tmp_path))])
    field.dropEvent(_drop(mime))
    assert field.text() == str(tmp_path) and seen == [str(tmp_path)]


def test_a_drop_without_local_paths_changes_nothing(qtbot: QtBot) -> None:
    field = PathField(PathKind.OPEN_FILE, caption="Weights")
    qtbot.addWidget(field)
    field.setText("kept")
    mime = _mime([QUrl("https://example.invalid/weights.params")])
    field.dropEvent(_drop(mime))
    assert field.text() == "kept"


def test_read_only_table(qtbot: QtBot) -> None:
    table = read_only_table(["Class", "Count"], "tip", selectable=True)
    qtbot.addWidget(table)
    assert table.columnCount() == 2 and table.toolTip() == "tip"
    assert table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert table.selectionMode() == QAbstractItemView.SelectionMode.SingleSelection


def test_browse_opens_beside_the_data_not_in_the_home_folder(
    qtbot: QtBot, class_folder: Path
) -> None:
    data = class_folder.parent
    field = PathField(PathKind.OPEN_FILE, caption="Data", start_dir=lambda: data)
    qtbot.addWidget(field)
    assert field.start_folder() == str(data)  # empty: where the owner's data is
    field.setText(str(class_folder / "cat" / "cat_0.jpg"))
    assert field.start_folder() == str(class_folder / "cat")  # beside the file in the field
    field.setText(str(class_folder / "gone" / "deeper" / "x.rec"))
    assert field.start_folder() == str(class_folder)  # its nearest folder that exists
    plain = PathField(PathKind.FOLDER, caption="Folder")  # the API without a start folder
    qtbot.addWidget(plain)
    assert plain.start_folder() == ""
