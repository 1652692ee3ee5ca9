"""*Training > Pretrained Weights…*: the ImageNet backbones on this computer, and the two ways
to get one: *Download…* (the only thing the app does on the network, asked first) and
*Import…* (a file copied from another computer). Both run as jobs with progress and cancel;
the list is read again after each.

Entry point: :func:`show_weights_dialog` (one non-modal dialog per parent, reused).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.jobs import JobContext, Task
from imgcls_desktop.core.weights import (
    Backbone,
    BackboneState,
    WeightsError,
    backbone_states,
    mxnet_cache_folder,
    store_folder,
)
from imgcls_desktop.core.weights.download import download_backbone, download_url
from imgcls_desktop.core.weights.importing import import_weights
from imgcls_desktop.gui.dialogs import ask
from imgcls_desktop.gui.workers import JobHandle, JobRunner, JobSlot

COLUMNS = ("Backbone", "State", "Size", "Source")
_KILOBYTE = 1000  # progress in kB: a QProgressBar holds ints


def show_weights_dialog(jobs: JobRunner, parent: QWidget) -> PretrainedWeightsDialog:
    """Show ``parent``'s weights dialog (made on first use), its list read afresh."""
    dialog = parent.findChild(PretrainedWeightsDialog)
    if dialog is None:
        dialog = PretrainedWeightsDialog(jobs, parent)
    dialog.refresh()
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def _download(backbone: Backbone, job: JobContext) -> BackboneState:
    return download_backbone(backbone, progress=job.progress, cancel=job.cancel)


def _import(path: Path, job: JobContext) -> BackboneState:
    return import_weights(path, progress=job.progress, cancel=job.cancel)


class PretrainedWeightsDialog(QDialog):
    """The backbones with their state, size and source; *Download…*, *Import…*, *Cancel*."""

    weights_changed = Signal(object)
    """A backbone was placed in the store: its :class:`BackboneState`."""

    def __init__(self, jobs: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pretrainedWeights")
        self.setWindowTitle("Pretrained Weights")
        self.setModal(False)
        self._slot = JobSlot(jobs, self)
        self._slot.busy_changed.connect(self._show_busy)
        self.states: list[BackboneState] = []

        intro = QLabel(
            "ImageNet backbones for <b>use_pretrained_model=1</b>, fetched once and kept "
            f"offline in <code>{store_folder()}</code> (MXNet's cache "
            f"<code>{mxnet_cache_folder()}</code> is used too). Download is the only thing "
            "the app does on the network; on a computer that never goes online, import a "
            "file copied from another one."
        )
        intro.setWordWrap(True)
        intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("backbones")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch
        )
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.download_button = self._button("&Download…", "downloadWeights", self.ask_download)
        self.download_button.setToolTip("Fetch the chosen backbone from the Gluon model zoo")
        self.import_button = self._button("&Import…", "importWeights", self.choose_import)
        self.import_button.setToolTip("A .params file or the model zoo's .zip")
        self.cancel_button = self._button("&Cancel", "cancelWeightsJob", self._slot.cancel)
        self.cancel_button.setToolTip("Stop; a download resumes where it stopped")
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel()
        self.status.setObjectName("weightsStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        actions = QHBoxLayout()
        for button in (self.download_button, self.import_button, self.cancel_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(actions)
        self.finished.connect(self._slot.cancel)  # closed: a running job stops
        self.resize(760, 380)
        self._update_buttons()

    def _button(self, text: str, name: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    @Slot()
    def refresh(self) -> None:
        """Read which backbones are on disk again and show them, keeping the selection."""
        row = max(self.table.currentRow(), 0)
        self.states = backbone_states()
        self.table.setRowCount(len(self.states))
        for index, state in enumerate(self.states):
            cells = (
                state.backbone.name,
                "on disk" if state.on_disk else "not on disk",
                f"{state.size / 1e6:.1f} MB" if state.on_disk else "",
                state.source,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(state.path) if state.path else text)
                self.table.setItem(index, column, item)
        for column in range(len(COLUMNS) - 1):  # the last one stretches
            self.table.resizeColumnToContents(column)
        self.table.selectRow(row)
        self._update_buttons()

    def selected(self) -> BackboneState | None:
        """The chosen row's backbone and state."""
        row = self.table.currentRow()
        return self.states[row] if 0 <= row < len(self.states) else None

    def select(self, name: str) -> None:
        """Choose the row of backbone ``name`` (``resnet18_v1``)."""
        names = [state.backbone.name for state in self.states]
        self.table.selectRow(names.index(name))

    # Download and import -----------------------------------------------------------------

    @Slot()
    def ask_download(self) -> QMessageBox | None:
        """Ask before downloading the chosen backbone (size, where from); None when there is
        nothing to ask (the status says why)."""
        state = self.selected()
        if state is None or state.on_disk:
            return None
        backbone = state.backbone
        try:
            url = download_url(backbone)
        except WeightsError as error:
            self._show_error("Cannot download", str(error))
            return None
        return ask(
            self,
            "confirmDownload",
            "Download Pretrained Weights",
            f"Download the ImageNet weights of {backbone.title} (about "
            f"{backbone.approximate_megabytes} MB) from\n{url}\ninto {store_folder()}?\n\n"
            "Their SHA-1 is checked before they are kept; a stopped download resumes.",
            yes="Download",
            no="Not Now",
            on_yes=partial(self.download, backbone),
            icon=QMessageBox.Icon.Question,
        )

    def download(self, backbone: Backbone) -> JobHandle | None:
        """Download ``backbone`` in a worker."""
        title = f"Downloading {backbone.name}"
        return self._start(partial(_download, backbone), title, "Cannot download")

    @Slot()
    def choose_import(self) -> None:
        """Ask for a weights file and import it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Import backbone weights", "", "Backbone weights (*.params *.zip)"
        )
        if path:
            self.import_path(path)

    def import_path(self, path: str | Path) -> JobHandle | None:
        """Import the backbone at ``path`` (a .params, a model-zoo .zip or a folder holding
        one) in a worker."""
        path = Path(path)
        return self._start(partial(_import, path), f"Importing {path.name}", "Cannot import")

    def _start(self, task: Task[BackboneState], title: str, failure: str) -> JobHandle | None:
        handle = self._slot.start(task, title)
        if handle is None:
            return None
        self.status.setStyleSheet("")
        self.status.setText(f"{title}…")
        handle.progress.connect(partial(self._on_progress, title))
        handle.succeeded.connect(self._on_succeeded)
        handle.failed.connect(lambda message, _details: self._show_error(failure, message))
        handle.cancelled.connect(self._on_cancelled)
        handle.finished.connect(self.refresh)
        return handle

    def _on_progress(self, title: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(total // _KILOBYTE, 1) if total else 0)
        self.progress.setValue(done // _KILOBYTE)
        of_total = f" of {total / 1e6:.1f}" if total else ""
        self.status.setText(f"{title}: {done / 1e6:.1f}{of_total} MB")

    def _on_succeeded(self, state: BackboneState) -> None:
        self.status.setText(
            f"{state.backbone.name} is on this computer ({state.size / 1e6:.1f} MB, "
            f"{state.source}); use_pretrained_model=1 uses it."
        )
        self.weights_changed.emit(state)

    def _on_cancelled(self) -> None:
        self.status.setText("Stopped. Download again to resume where it stopped.")

    def _show_error(self, what: str, message: str) -> None:
        self.status.setStyleSheet("color: #b00020")
        self.status.setText(f"{what}: {message}")

    @Slot(bool)
    def _show_busy(self, busy: bool) -> None:
        self.progress.setRange(0, 0)
        self.progress.setVisible(busy)
        self._update_buttons()

    @Slot()
    def _update_buttons(self) -> None:
        busy = self._slot.is_busy()
        state = self.selected()
        self.download_button.setEnabled(not busy and state is not None and not state.on_disk)
        self.import_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
