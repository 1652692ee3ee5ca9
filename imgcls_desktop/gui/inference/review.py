"""Reviewing a model's answers image by image, and correcting the wrong ones.

One widget, :class:`ReviewTable`, serves both places where the user looks at images and
their labels: the predictions of a labelled folder and the images of one confusion-matrix
cell (``review_tables``). Each row shows a thumbnail (:class:`ThumbnailColumn`, over the
data set tab's :class:`~imgcls_desktop.gui.thumbnails.ThumbnailModel`). The user selects
rows and corrects their label (*Correct Label…*, which shows the image; also in the context
menu); the corrections are a :class:`~imgcls_desktop.core.corrections.CorrectionSet`.
*Add Corrected to Data Set…* then copies the corrected images into a folder-per-class data
set in a worker (:func:`~imgcls_desktop.core.corrections.add_to_dataset`), proposing the data
set they came from: originals stay, nothing is overwritten. Each row knows where to read its
image again (:class:`~imgcls_desktop.core.corrections.ImageRef`), so images stored inside a
``.rec`` are shown, opened and added like files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.corrections import (
    CORRECTIONS_CSV,
    CorrectionError,
    CorrectionResult,
    CorrectionSet,
    ImageRef,
    add_to_dataset,
    check_class_name,
)
from imgcls_desktop.core.file_names import display_path
from imgcls_desktop.gui.dialogs import show_error, show_info
from imgcls_desktop.gui.inference.correct_dialog import CorrectLabelDialog
from imgcls_desktop.gui.inference.thumbnail_column import ThumbnailColumn
from imgcls_desktop.gui.widgets import read_only_table
from imgcls_desktop.gui.workers import JobHandle, JobSlot

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_VALUE_ROLE = Qt.ItemDataRole.UserRole  # a label: the label before corrections
# A file: its ImageRef, kept as the Python object (as text, Qt would drop the surrogate
# escapes of a file name that is not UTF-8, and two such names could become one).
_IMAGE_ROLE = Qt.ItemDataRole.UserRole + 1


def counted(count: int, noun: str) -> str:
    """``1 image``, ``2 images``, ``1,204 images``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


class NumberItem(QTableWidgetItem):
    """A table cell showing ``text`` that sorts by ``value``."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self.value = value
        self.setTextAlignment(_RIGHT)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)


def shown_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies under it, else in full; bytes that are not
    UTF-8 shown as ``\\xNN`` (Qt would drop them)."""
    return display_path(path.relative_to(root) if path.is_relative_to(root) else path)


class ReviewTable(QWidget):
    """Images with thumbnails, file names and labels; the user corrects wrong labels and adds
    the corrected images to a data set.

    Columns: thumbnail, file, label (the one to correct), then the subclass's own. A
    corrected label reads ``old → new`` in bold until the image is added; choosing the old
    label again undoes the correction. Corrections outlive the rows shown (see
    :meth:`_set_rows`). Double-clicking a row emits :attr:`image_activated` with its
    :class:`ImageRef` (a file or a record).
    """

    THUMBNAIL, FILE, LABEL = range(3)
    image_activated = Signal(object)
    status_message = Signal(str)

    def __init__(
        self, jobs: JobSlot, headers: list[str], tooltip: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self.class_names: list[str] = []
        self.corrections = CorrectionSet()
        self._proposed: Path | None = None
        self.table = read_only_table(["Image", "File", *headers], tooltip, selectable=True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(self.FILE, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(self.FILE, 320)
        self.table.setColumnWidth(self.LABEL, 180)  # room for "old → new"
        self.thumbnails = ThumbnailColumn(self.table, self.THUMBNAIL)
        self.table.setSortingEnabled(True)
        self.table.cellDoubleClicked.connect(
            lambda row, _column: self.image_activated.emit(self.image_at(row))
        )
        self.table.itemSelectionChanged.connect(self._update_actions)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._show_context_menu)

        self.correct_action = QAction("Correct Label…", self)
        self.correct_action.setToolTip(
            "Give the selected images their right class (a new name makes a new class)"
        )
        self.correct_action.triggered.connect(self.ask_correction)
        self.add_action = QAction("Add Corrected to Data Set…", self)
        self.add_action.setToolTip(
            "Copy the corrected images into a folder-per-class data set, under their right "
            "class (the originals stay; nothing is overwritten)"
        )
        self.add_action.triggered.connect(self.choose_dataset_folder)
        self.correct_button = self._action_button(self.correct_action)
        self.add_button = self._action_button(self.add_action)
        self.correction_count = QLabel()
        self.correction_count.setToolTip("Corrected images not yet added to a data set")
        actions = QHBoxLayout()
        actions.addWidget(self.correct_button)
        actions.addWidget(self.add_button)
        actions.addWidget(self.correction_count, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        jobs.busy_changed.connect(lambda _busy: self._update_actions())
        self._update_actions()

    @staticmethod
    def _action_button(action: QAction) -> QPushButton:
        button = QPushButton(action.text())
        button.setToolTip(action.toolTip())
        button.clicked.connect(lambda _checked=False: action.trigger())
        return button

    # Rows ----------------------------------------------------------------------------------

    def _set_rows(
        self,
        rows: Sequence[tuple[ImageRef, str, list[QTableWidgetItem]]],
        root: Path,
        class_names: list[str],
    ) -> None:
        """Show one row per (image, label, the subclass's cells), files relative to ``root``;
        the images are files, or records of one data set.

        Corrections are kept, shown or not, until added: the user may correct images in one
        confusion-matrix cell, then in another, and add them all at once."""
        self.class_names = list(class_names)
        table = self.table
        table.setSortingEnabled(False)
        table.clearSelection()
        table.setRowCount(len(rows))
        thumbnails = self.thumbnails.items([image for image, _label, _cells in rows])
        for row, ((image, label, cells), thumbnail) in enumerate(zip(rows, thumbnails)):
            file_item = QTableWidgetItem(shown_path(Path(image.path), root))
            file_item.setToolTip(display_path(image.source))
            file_item.setData(_IMAGE_ROLE, image)
            label_item = QTableWidgetItem(label)
            label_item.setData(_VALUE_ROLE, label)  # the label before any correction
            for column, item in enumerate((thumbnail, file_item, label_item, *cells)):
                table.setItem(row, column, item)
            if self.corrections.knows(image.source):
                self._show_label(image.source, label_item)
        table.setSortingEnabled(True)
        self._update_actions()

    def set_proposed_dataset(self, folder: Path | None) -> None:
        """The data set *Add Corrected to Data Set…* proposes (where the images came from)."""
        self._proposed = folder

    def proposed_dataset(self) -> Path | None:
        """The data set *Add Corrected to Data Set…* proposes, if known."""
        return self._proposed

    def path_at(self, row: int) -> str:
        """The full path of the image in ``row`` (``<.rec path>#<key>`` for a record)."""
        return self.image_at(row).source

    def image_at(self, row: int) -> ImageRef:
        """Where the image in ``row`` is read from."""
        return self.table.item(row, self.FILE).data(_IMAGE_ROLE)

    def original_label(self, row: int) -> str:
        """The label ``row`` had before any correction."""
        return self.table.item(row, self.LABEL).data(_VALUE_ROLE)

    def selected_rows(self) -> list[int]:
        """The selected rows the filters let through, top to bottom."""
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return sorted(row for row in rows if not self.table.isRowHidden(row))

    def discard_corrections(self) -> None:
        """Forget the corrections not yet added; their rows show the old labels again."""
        self.corrections.discard()
        self._refresh_labels()

    def shutdown(self) -> bool:
        """Stop the thumbnail thread (final); True when it ended within the timeout."""
        return self.thumbnails.shutdown()

    # Correcting ----------------------------------------------------------------------------

    def ask_correction(self) -> CorrectLabelDialog | None:
        """Show the first selected image and ask for the right class of the selected images
        (non-blocking); OK corrects them."""
        rows = self.selected_rows()
        if not rows:
            return None
        dialog = CorrectLabelDialog(
            self.image_at(rows[0]), len(rows), self.class_names, self.original_label(rows[0]), self
        )
        dialog.class_chosen.connect(self.correct_selected)
        dialog.open()
        return dialog

    @Slot(str)
    def correct_selected(self, class_name: str) -> bool:
        """Correct the selected rows' label to ``class_name``; False (and an error shown)
        when the name cannot be a class folder."""
        return self.correct_rows(self.selected_rows(), class_name)

    def correct_rows(self, rows: Sequence[int], class_name: str) -> bool:
        """Correct the label of ``rows`` to ``class_name`` (their old label undoes it)."""
        try:
            name = check_class_name(class_name)
        except CorrectionError as error:
            show_error(self, "Cannot use this class name", str(error))
            return False
        # Items, not row numbers: a table sorted by label re-sorts as the labels change.
        targets = [
            (self.table.item(row, self.FILE), self.table.item(row, self.LABEL)) for row in rows
        ]
        for file_item, label_item in targets:
            image = file_item.data(_IMAGE_ROLE)
            self.corrections.correct(image, label_item.data(_VALUE_ROLE), name)
            self._show_label(image.source, label_item)
        self._update_actions()
        self.status_message.emit(f"{counted(len(targets), 'image')} now labelled {name}")
        return True

    def _show_label(self, source: str, item: QTableWidgetItem) -> None:
        text, tooltip, pending = self.corrections.label_text(source, item.data(_VALUE_ROLE))
        font = item.font()
        font.setBold(pending)
        item.setFont(font)
        item.setText(text)
        item.setToolTip(tooltip)

    def _refresh_labels(self) -> None:
        for row in range(self.table.rowCount()):
            self._show_label(self.path_at(row), self.table.item(row, self.LABEL))
        self._update_actions()

    # Adding to a data set ------------------------------------------------------------------

    def choose_dataset_folder(self) -> None:
        """Ask for the data set's folder (opening at the proposed one), then add the
        corrected images to it."""
        folder = QFileDialog.getExistingDirectory(
            self,
            "Add the corrected images to the data set in (one folder per class)",
            str(self._proposed or ""),
        )
        if folder:
            self.add_corrected_to(folder)

    def add_corrected_to(self, folder: str | Path) -> JobHandle | None:
        """Copy every corrected image into ``folder/<its class>/`` in a worker."""
        items = self.corrections.items()
        if not items:
            return None
        handle = self._jobs.start(
            lambda job: add_to_dataset(
                items, Path(folder), progress=job.progress, cancel=job.cancel
            ),
            f"Adding {counted(len(items), 'corrected image')} to {folder}",
        )
        if handle is not None:
            handle.succeeded.connect(partial(self._on_added, Path(folder)))
            handle.failed.connect(partial(show_error, self, "Cannot add the corrected images"))
            handle.cancelled.connect(
                lambda: self.status_message.emit(
                    f"Adding cancelled; {CORRECTIONS_CSV} lists the images added"
                )
            )
        return handle

    def _on_added(self, folder: Path, result: CorrectionResult) -> None:
        self.corrections.record_added(result)
        self._refresh_labels()
        counts = Counter(image.class_name for image in result.added)
        message = f"Added {counted(len(result.added), 'image')} to {folder}."
        details = "\n".join(f"{name}: {count:,}" for name, count in sorted(counts.items()))
        details += "\n\n" + "\n".join(f"{a.source} → {a.destination}" for a in result.added)
        if result.csv_path is not None:
            message += f"\nWhat went where: {result.csv_path}"
        if result.failed:
            message += f"\n{counted(len(result.failed), 'image')} could not be added (see the "
            message += "details)."
            details += "\n\nNot added:\n" + "\n".join(
                f"{f.path}: {f.reason}" for f in result.failed
            )
            show_error(self, "Some images were not added", message, details.strip())
        else:
            show_info(self, "Added to the data set", message, details.strip())
        added = counted(len(result.added), "corrected image")
        self.status_message.emit(f"Added {added} to {folder}")

    # Actions -------------------------------------------------------------------------------

    def _update_actions(self) -> None:
        pending = len(self.corrections)
        can_correct = bool(self.selected_rows())
        can_add = pending > 0 and not self._jobs.is_busy()
        self.correct_action.setEnabled(can_correct)
        self.correct_button.setEnabled(can_correct)
        self.add_action.setEnabled(can_add)
        self.add_button.setEnabled(can_add)
        self.correction_count.setText(f"{pending:,} corrected, not yet added" if pending else "")

    @Slot(QPoint)
    def _show_context_menu(self, position: QPoint) -> None:
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(self.correct_action)
        menu.addAction(self.add_action)
        menu.popup(self.table.viewport().mapToGlobal(position))
