"""Small dialogs shared by every tab."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget, title: str, message: str, details: str = "") -> QMessageBox:
    """Show an error without blocking: the reason, and the details behind a button."""
    box = QMessageBox(
        QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent
    )
    box.setObjectName("errorDialog")
    if details:
        box.setDetailedText(details)
    box.open()
    return box


def show_info(parent: QWidget, title: str, message: str, details: str = "") -> QMessageBox:
    """Show a summary without blocking, with optional details."""
    box = QMessageBox(
        QMessageBox.Icon.Information, title, message, QMessageBox.StandardButton.Ok, parent
    )
    box.setObjectName("infoDialog")
    if details:
        box.setDetailedText(details)
    box.open()
    return box
