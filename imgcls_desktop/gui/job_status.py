"""The status-bar widget that shows the running job's progress and a Cancel button."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from imgcls_desktop.gui.workers import JobHandle


class JobStatus(QWidget):
    """Follows the most recently started job: its title, progress and a Cancel button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._job: JobHandle | None = None
        self.title = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(220)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job; nothing half-written is kept")
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.hide()

    @Slot(object)
    def track(self, job: JobHandle) -> None:
        """Show the progress of ``job`` until it has finished."""
        self._job = job
        self.title.setText(job.title)
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.cancel_button.setEnabled(True)
        job.progress.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        self.show()

    @Slot()
    def cancel(self) -> None:
        """Cancel the job being shown."""
        if self._job is not None:
            self._job.cancel()
            self.title.setText(f"{self._job.title}: cancelling…")
            self.cancel_button.setEnabled(False)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self.sender() is not self._job:
            return
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self.bar.setFormat("%v / %m")

    @Slot()
    def _on_finished(self) -> None:
        if self.sender() is self._job:
            self._job = None
            self.hide()
