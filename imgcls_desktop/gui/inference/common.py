"""Small pieces the Inference tab's pages share: buttons, percent boxes, running a job, and
the question before corrections not yet added would be lost."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QMessageBox, QPushButton, QWidget

from imgcls_desktop.core.jobs import Task
from imgcls_desktop.gui.dialogs import show_error
from imgcls_desktop.gui.inference.review import ReviewTable
from imgcls_desktop.gui.workers import JobHandle, JobSlot


def button(text: str, tooltip: str, slot: Callable[[], object]) -> QPushButton:
    """A push button calling ``slot()`` when clicked."""
    push = QPushButton(text)
    push.setToolTip(tooltip)
    push.clicked.connect(lambda _checked=False: slot())
    return push


def percent_box(tooltip: str) -> QDoubleSpinBox:
    """A 0-100 % box, whole percents."""
    box = QDoubleSpinBox()
    box.setRange(0, 100)
    box.setDecimals(0)
    box.setSuffix(" %")
    box.setToolTip(tooltip)
    return box


def folder_of(path: Path) -> Path:
    """``path`` when it is a folder, else the folder holding it."""
    return path if path.is_dir() else path.parent


def run_job(
    page: QWidget,
    slot: JobSlot,
    task: Task[Any],
    title: str,
    on_succeeded: Callable[[Any], None],
    failure: str,
    status: Callable[[str], None],
) -> JobHandle | None:
    """Start ``task`` in ``slot``: ``on_succeeded(result)``; a failure shown as ``failure``
    (and said in the status bar); a cancel said too. None when the slot is busy."""
    handle = slot.start(task, title)
    if handle is not None:
        handle.succeeded.connect(on_succeeded)
        handle.failed.connect(partial(_failed, page, failure, status))
        handle.cancelled.connect(lambda: status(f"{title}: cancelled"))
    return handle


def _failed(
    page: QWidget, title: str, status: Callable[[str], None], message: str, details: str
) -> None:
    show_error(page, title, message, details)
    status(f"{title}: {message}")


def ask_discard(
    parent: QWidget, table: ReviewTable, then: Callable[[], object], status: Callable[[str], None]
) -> QMessageBox | None:
    """When ``table`` holds corrections not yet added to a data set, ask whether to discard
    them (non-blocking): Discard forgets them and calls ``then``, Keep changes nothing.
    None (and no question) when there is nothing to lose."""
    count = len(table.corrections)
    if not count:
        return None
    text = (
        "1 corrected label has not been added to a data set. Discard it?"
        if count == 1
        else f"{count:,} corrected labels have not been added to a data set. Discard them?"
    )
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Discard corrections",
        text,
        QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        parent,
    )
    box.setObjectName("discardCorrectionsDialog")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setInformativeText("Keep them to add them with Add Corrected to Data Set… first.")
    keep = box.button(QMessageBox.StandardButton.Cancel)
    keep.setText("Keep")
    box.setDefaultButton(keep)
    box.button(QMessageBox.StandardButton.Discard).clicked.connect(
        lambda: (table.discard_corrections(), then())
    )
    keep.clicked.connect(
        lambda: status("Corrections kept: add them to a data set, then start again")
    )
    box.open()
    return box
