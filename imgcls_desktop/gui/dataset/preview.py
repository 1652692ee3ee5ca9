"""A non-modal window showing one image of the data set and what is known about it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from imgcls_desktop.gui.imaging import load_qimage


class ImagePreview(QDialog):
    """A non-modal window showing one image and what is known about it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Image")
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(320, 240)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)

    def show_image(self, title: str, data: bytes | None, caption: str) -> None:
        """Show ``data`` (or only the caption when it cannot be decoded)."""
        self.setWindowTitle(title)
        self.caption.setText(caption)
        image = None
        if data:
            try:
                image = load_qimage(data, 512)
            except Exception:  # an unreadable image is exactly what the caption explains
                image = None
        if image is None or image.isNull():
            self.image.setText("This file cannot be shown.")
        else:
            self.image.setPixmap(QPixmap.fromImage(image))
        self.show()
        self.raise_()
