"""The Correct Label dialog: the image being corrected, and its right class."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.corrections import ImageRef
from imgcls_desktop.core.dataset.images import IMAGE_ERRORS, image_error_reason
from imgcls_desktop.core.file_names import display_path
from imgcls_desktop.gui.imaging import load_qimage

CORRECTION_IMAGE_SIDE = 240
"""Side of the image the Correct Label dialog shows, in pixels."""


class CorrectLabelDialog(QDialog):
    """The image being corrected, and its right class (an editable list of the classes)."""

    class_chosen = Signal(str)

    def __init__(
        self,
        image: ImageRef,
        count: int,
        class_names: list[str],
        current: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("correctLabelDialog")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle("Correct Label")
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(QSize(CORRECTION_IMAGE_SIDE, CORRECTION_IMAGE_SIDE))
        try:
            picture = load_qimage(image.read_bytes(), CORRECTION_IMAGE_SIDE)
        except IMAGE_ERRORS as error:
            self.picture.setText(f"Cannot show the image: {image_error_reason(error)}")
        else:
            self.picture.setPixmap(QPixmap.fromImage(picture))
        self.picture.setToolTip(display_path(image.source))
        noun = "image" if count == 1 else f"{count} images (the first shown)"
        self.prompt = QLabel(
            f"The right class of the selected {noun} (type a new name for a new class):"
        )
        self.prompt.setWordWrap(True)
        self.choice = QComboBox()
        self.choice.setEditable(True)
        self.choice.addItems(class_names)
        self.choice.setCurrentText(current)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.prompt)
        layout.addWidget(self.choice)
        layout.addWidget(buttons)

    def accept(self) -> None:
        """Announce the chosen class, then close."""
        self.class_chosen.emit(self.choice.currentText())
        super().accept()
