"""Small dialogs shared by every tab. None of them blocks the event loop."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
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


def ask(
    parent: QWidget,
    name: str,
    title: str,
    question: str,
    *,
    yes: str,
    no: str,
    on_yes: Callable[[], object],
    icon: QMessageBox.Icon = QMessageBox.Icon.Warning,
) -> QMessageBox:
    """Ask a question whose buttons say what they do (``yes``, ``no``, the safe default);
    ``on_yes`` runs when the user agrees. Connect to the box's ``rejected`` for the other."""
    buttons = QMessageBox.StandardButton
    box = QMessageBox(icon, title, question, buttons.Yes | buttons.No, parent)
    box.setObjectName(name)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.button(buttons.Yes).setText(yes)
    box.button(buttons.No).setText(no)
    box.setDefaultButton(buttons.No)
    box.accepted.connect(on_yes)
    box.open()
    return box
