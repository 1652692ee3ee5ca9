"""The Help menu's windows: Getting Started, the keyboard shortcuts and About. None of
them blocks the window."""

from __future__ import annotations

import html

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMenu, QMenuBar, QMessageBox, QWidget

from imgcls_desktop.core import about
from imgcls_desktop.core.paths import data_dir

GETTING_STARTED = """
<h3>From a folder of images to a model that labels them</h3>
<ol>
<li><b>Open a data set</b> (Ctrl+O): a folder with one sub-folder of images per class, or
an im2rec <tt>.lst</tt>, a manifest or a <tt>.rec</tt>; drop it on the window. New here?
<i>File › Try the Sample Data Set</i> does steps 1 and 2 in one click.</li>
<li><b>Check and export</b>: look over the classes and the Problems the scan found, choose
the validation share, then <i>Export RecordIO</i> (Ctrl+E).</li>
<li><b>Train</b>: the Training tab reads the export and suggests settings; <i>Start
Training</i> (Ctrl+T) and watch the curves. <i>Stop</i> keeps the last finished epoch;
<i>Resume</i> (Ctrl+R) continues it, also after a restart.</li>
<li><b>Use the model</b>: it opens in the Inference tab. <i>Evaluate</i> it on its
validation images, <i>Label a Folder</i> (Ctrl+L) of new images, correct wrong labels and
add them to your data set, or export the model for SageMaker.</li>
</ol>
<p>The banner above the tabs always says what just happened and offers the next step.</p>
"""


def _message_box(parent: QWidget, name: str, title: str, text: str) -> QMessageBox:
    box = parent.findChild(QMessageBox, name)
    if box is None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, title, "", QMessageBox.StandardButton.Close)
        box.setParent(parent, box.windowFlags())
        box.setObjectName(name)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setWindowModality(Qt.WindowModality.NonModal)
    box.setText(text)
    box.show()
    box.raise_()
    return box


def show_getting_started(parent: QWidget) -> QMessageBox:
    """The journey in four steps, beside the window (it stays usable)."""
    return _message_box(parent, "gettingStarted", "Getting Started", GETTING_STARTED)


def shortcuts(menu_bar: QMenuBar) -> list[tuple[str, str, str]]:
    """``(menu, action, keys)`` of every menu action with a shortcut, in menu order."""
    found = []
    for menu in menu_bar.findChildren(QMenu):
        title = menu.title().replace("&", "")
        for action in menu.actions():
            if not action.shortcut().isEmpty():
                keys = action.shortcut().toString(action.shortcut().SequenceFormat.NativeText)
                found.append((title, action.text().replace("&", ""), keys))
    return found


def show_shortcuts(parent: QWidget, menu_bar: QMenuBar) -> QMessageBox:
    """A table of the menus' shortcuts, beside the window."""
    rows = "".join(
        f"<tr><td>{html.escape(menu)}</td><td>{html.escape(name)}</td>"
        f"<td><b>{html.escape(keys)}</b></td></tr>"
        for menu, name, keys in shortcuts(menu_bar)
    )
    text = f"<h3>Keyboard shortcuts</h3><table cellpadding='3'>{rows}</table>"
    return _message_box(parent, "keyboardShortcuts", "Keyboard Shortcuts", text)


def open_data_folder() -> bool:
    """Open the app's data folder (runs, the sample, the recent lists) in the file manager."""
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


class AboutBox(QMessageBox):
    """Versions, folders and devices (the devices once MXNet is loaded)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("About imgcls-desktop")
        self.setIconPixmap(parent.windowIcon().pixmap(64, 64))
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def show_devices(self, devices: about.Devices | None, error: str = "") -> None:
        """Fill in the text with ``devices`` (None: still loading, or ``error``)."""
        listed = {**about.versions(), "PySide6": f"{pyside_version} (Qt {qVersion()})"}
        app_version = listed.pop("imgcls-desktop")
        versions = "<br>".join(f"{name} {text}" for name, text in listed.items())
        folders = "<br>".join(
            f"{name}: {html.escape(str(path))}" for name, path in about.folders().items()
        )
        if devices is not None:
            found = "<br>".join(devices.names)
            if devices.unused_gpu_note:
                found += f"<br><b>{html.escape(devices.unused_gpu_note)}</b>"
        else:
            found = html.escape(error) or "Looking for them while MXNet loads…"
        self.setText(
            f"<h3>imgcls-desktop {app_version}</h3>"
            "<p>Train and use image classifiers offline, in the formats of SageMaker's "
            "Image Classification algorithm.</p>"
            f"<p>{versions}</p><p><b>Folders</b><br>{folders}</p>"
            f"<p><b>Devices</b><br>{found}</p>"
        )
