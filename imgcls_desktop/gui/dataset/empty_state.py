"""What the Dataset tab shows before a data set is open: what to do, and the sample."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class EmptyState(QWidget):
    """What the tab shows before a data set is open: what to do, and the sample data set."""

    open_folder_requested = Signal()
    open_file_requested = Signal()
    sample_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("<h2>Open a data set to begin</h2>")
        text = QLabel(
            "Drop a folder with one sub-folder of images per class, an im2rec <tt>.lst</tt>, "
            "a SageMaker augmented manifest or a <tt>.rec</tt> file anywhere on this window, "
            "or choose one below.<br><br><b>New here?</b> Try the sample: one click draws 400 "
            "images of four shapes, checks them and proposes a training set-up; training it "
            "takes about a minute, and then the model labels images for you."
        )
        text.setWordWrap(True)
        text.setFixedWidth(560)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        buttons = QHBoxLayout()
        for label, tip, signal in (
            (
                "Open Folder…",
                "A folder with one sub-folder per class (Ctrl+O)",
                self.open_folder_requested,
            ),
            (
                "Open File…",
                "An im2rec .lst, a manifest or a .rec (Ctrl+Shift+O)",
                self.open_file_requested,
            ),
            (
                "Try the Sample Data Set",
                "4 classes of drawn shapes, 100 images each, 64 px, ready to train on",
                self.sample_requested,
            ),
        ):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.setMinimumHeight(36)
            button.clicked.connect(signal)
            buttons.addWidget(button)
        self.sample_button = button
        self.sample_button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        # Centred by stretches: a wrapped label centred by alignment gets clipped.
        for widget in (title, text):
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(widget)
            row.addStretch(1)
            layout.addLayout(row)
        buttons.insertStretch(0, 1)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(3)
