"""Small dialogs shared by every tab. None of them blocks the event loop."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def _show_message(
    parent: QWidget, icon: QMessageBox.Icon, name: str, title: str, message: str, details: str
) -> QMessageBox:
    box = QMessageBox(icon, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName(name)
    if details:
        box.setDetailedText(details)
    box.open()
    return box


def show_error(parent: QWidget, title: str, message: str, details: str = "") -> QMessageBox:
    """Show an error: the reason, and the details (a traceback) behind a button."""
    return _show_message(parent, QMessageBox.Icon.Critical, "errorDialog", title, message, details)


def show_info(parent: QWidget, title: str, message: str, details: str = "") -> QMessageBox:
    """Show a summary, with optional details behind a button."""
    return _show_message(
        parent, QMessageBox.Icon.Information, "infoDialog", title, message, details
    )
