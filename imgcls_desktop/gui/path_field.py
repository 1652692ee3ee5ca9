"""A path entry: a line edit, a Browse button, and drag and drop of a file or folder."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget

from imgcls_desktop.gui.widgets import DropPathMixin


class PathKind(Enum):
    """What a path field asks for."""

    FOLDER = "folder"
    OPEN_FILE = "open file"
    FILE_OR_FOLDER = "file or folder"


class PathField(DropPathMixin, QWidget):
    """A path the user types, picks with Browse… or drops on the field.

    Browse… opens beside the path in the field; when it is empty, in the folder
    ``start_dir()`` gives (e.g. the open data set's), else in the current folder.
    """

    changed = Signal(str)

    def __init__(
        self,
        kind: PathKind,
        *,
        caption: str,
        placeholder: str = "",
        file_filter: str = "",
        tooltip: str = "",
        start_dir: Callable[[], Path | str | None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._kind = kind
        self._start_dir = start_dir
        self._caption = caption
        self._filter = file_filter
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.setToolTip(tooltip or caption)
        self.edit.textChanged.connect(self.changed)
        self.edit.setAcceptDrops(False)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setToolTip(f"{caption} (or drop it here)")
        self.browse_button.clicked.connect(self.browse)
        if kind is PathKind.FILE_OR_FOLDER:
            self.folder_button = QPushButton("Folder…")
            self.folder_button.setToolTip("Choose a folder instead of a file")
            self.folder_button.clicked.connect(self._browse_folder)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.browse_button)
        if kind is PathKind.FILE_OR_FOLDER:
            layout.addWidget(self.folder_button)
        self.setAcceptDrops(True)

    def text(self) -> str:
        """The path as typed (stripped)."""
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        """Show ``text`` as the path."""
        self.edit.setText(text)

    def set_start_folder(self, folder: Path | str | None) -> None:
        """Open Browse… in ``folder`` while the field is empty (None: the current folder),
        instead of where ``start_dir`` said."""
        self._start_dir = lambda: folder

    def browse(self) -> None:
        """Ask for the path with a file dialog."""
        if self._kind is PathKind.FOLDER:
            self._browse_folder()
            return
        path, _ = QFileDialog.getOpenFileName(
            self, self._caption, self.start_folder(), self._filter
        )
        if path:
            self.setText(path)

    def start_folder(self) -> str:
        """Where Browse… opens: the nearest existing folder of the path in the field, else
        the owner's start folder, else "" (the current folder)."""
        for candidate in (self.text(), self._start_dir() if self._start_dir else None):
            folder = existing_folder(candidate)
            if folder:
                return folder
        return ""

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self._caption, self.start_folder())
        if folder:
            self.setText(folder)

    def path_dropped(self, path: str) -> None:
        """Take a dropped file or folder as the path."""
        self.setText(path)


def existing_folder(path: Path | str | None) -> str:
    """``path`` itself when it is a folder, else its nearest existing parent folder ("" for
    none): where a file dialog opens beside ``path``."""
    if not path:
        return ""
    candidate = Path(path).expanduser()
    for folder in (candidate, *candidate.parents):
        if folder.is_dir():
            return "" if folder == Path(".") else str(folder)
    return ""
