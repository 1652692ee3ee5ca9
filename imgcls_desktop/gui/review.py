"""Reviewing a model's answers image by image, and correcting the wrong ones.

One widget, :class:`ReviewTable`, serves both places where the user looks at images and
their labels: the predictions of a labelled folder (:class:`PredictionTable`) and the images
of one confusion-matrix cell (:class:`CellImagesTable`). Each row shows a thumbnail, decoded
off the GUI thread (:class:`ThumbnailColumn`). The user selects rows and corrects their
label (*Correct Label…*, also in the context menu); *Add Corrected to Data Set…* then copies
the corrected images into a folder-per-class data set in a worker
(:func:`imgcls_desktop.core.corrections.add_to_dataset`): originals stay, nothing is
overwritten. Each row knows where to read its image again
(:class:`~imgcls_desktop.core.corrections.ImageRef`), so images stored inside a ``.rec`` are
shown and added like files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPoint, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.corrections import (
    CORRECTIONS_CSV,
    CorrectionError,
    CorrectionResult,
    ImageRef,
    add_to_dataset,
    check_class_name,
)
from imgcls_desktop.core.dataset.model import Dataset, SourceKind
from imgcls_desktop.core.evaluation import ImageOutcome
from imgcls_desktop.core.file_names import display_path
from imgcls_desktop.core.labelling import Prediction
from imgcls_desktop.gui.dialogs import show_error, show_info
from imgcls_desktop.gui.thumbnails import ThumbnailLoader, placeholder_pixmap
from imgcls_desktop.gui.widgets import read_only_table
from imgcls_desktop.gui.workers import JobHandle, JobSlot

ROW_THUMBNAIL_SIZE = 48
"""Side of the thumbnails in the tables' rows, in pixels."""
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_VALUE_ROLE = Qt.ItemDataRole.UserRole  # a label: the label before corrections
# A file: its ImageRef, kept as the Python object (as text, Qt would drop the surrogate
# escapes of a file name that is not UTF-8, and two such names could become one).
_IMAGE_ROLE = Qt.ItemDataRole.UserRole + 1
_DECORATION = Qt.ItemDataRole.DecorationRole


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


class _ThumbnailItem(QTableWidgetItem):
    """A cell whose thumbnail is asked for the first time the view paints it."""

    def __init__(self, column: ThumbnailColumn, index: int) -> None:
        super().__init__()
        self._column = column
        self.index = index
        self.setData(_DECORATION, column.placeholder)

    def data(self, role: int) -> Any:
        """The cell's data; asking for the picture requests the thumbnail if still due."""
        if role == _DECORATION:
            self._column.shown(self.index)
        return super().data(role)


class ThumbnailColumn(QObject):
    """Thumbnails in one column of a table, decoded by a
    :class:`~imgcls_desktop.gui.thumbnails.ThumbnailLoader` in its own thread.

    Rows get their thumbnail when first painted; the loader's thread starts with the first
    rows and ends with :meth:`shutdown` (or when the table is destroyed).
    """

    def __init__(self, table: QTableWidget, column: int, size: int = ROW_THUMBNAIL_SIZE) -> None:
        super().__init__(table)
        self._table = table
        self._size = size
        self._loader: ThumbnailLoader | None = None
        self._generation = 0
        self._items: list[_ThumbnailItem] = []
        self._pending: set[int] = set()
        self._settled: set[int] = set()
        self.placeholder = placeholder_pixmap(size, unreadable=False)
        self.unreadable_placeholder = placeholder_pixmap(size, unreadable=True)
        table.setIconSize(QSize(size, size))
        table.verticalHeader().setDefaultSectionSize(size + 6)
        table.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
        table.setColumnWidth(column, size + 12)

    def items(self, images: Sequence[ImageRef]) -> list[QTableWidgetItem]:
        """New cells for the thumbnails of ``images`` (files, or records of one data set);
        earlier cells get no more thumbnails."""
        self._pending.clear()
        self._settled.clear()
        self._items = [_ThumbnailItem(self, index) for index in range(len(images))]
        if images or self._loader is not None:  # no thread until there is something to show
            self._generation = self._ensure_loader().set_dataset(_dataset_of(images))
        return list(self._items)

    def shown(self, index: int) -> None:
        """Request the thumbnail of cell ``index`` unless it arrived or is on its way."""
        if index in self._settled or self._loader is None:
            return
        if index in self._pending:
            self._loader.promote(index)
        else:
            self._pending.add(index)
            self._pending.difference_update(self._loader.request(index))

    def shutdown(self) -> bool:
        """Stop the loader's thread (final); True when it ended within the timeout."""
        return self._loader.shutdown() if self._loader is not None else True

    def _ensure_loader(self) -> ThumbnailLoader:
        if self._loader is None:
            self._loader = ThumbnailLoader(self._size)
            self._loader.loaded.connect(self._on_loaded)
            self._loader.failed.connect(self._on_failed)
            self._table.destroyed.connect(self._loader.shutdown, Qt.ConnectionType.DirectConnection)
        return self._loader

    @Slot(int, int, QImage)
    def _on_loaded(self, generation: int, index: int, image: QImage) -> None:
        if generation == self._generation:
            self._settle(index).setData(_DECORATION, QPixmap.fromImage(image))

    @Slot(int, int, str)
    def _on_failed(self, generation: int, index: int, reason: str) -> None:
        if generation == self._generation:
            item = self._settle(index)
            item.setData(_DECORATION, self.unreadable_placeholder)
            item.setToolTip(f"Cannot show the image: {reason}")

    def _settle(self, index: int) -> _ThumbnailItem:
        self._pending.discard(index)
        self._settled.add(index)
        return self._items[index]


def _dataset_of(images: Sequence[ImageRef]) -> Dataset:
    """A data set whose samples are ``images``, read from their data set's ``.rec`` if any."""
    samples = [image.sample() for image in images]
    source = next((image.dataset for image in images if image.dataset is not None), None)
    if source is None:
        return Dataset(["image"], samples, SourceKind.FOLDER, Path())
    return replace(source, samples=samples)


class ReviewTable(QWidget):
    """Images with thumbnails, file names and labels; the user corrects wrong labels and adds
    the corrected images to a data set.

    Columns: thumbnail, file, label (the one to correct), then the subclass's own. A
    corrected label reads ``old → new`` in bold until the image is added; choosing the old
    label again undoes the correction. Corrections outlive the rows shown (see
    :meth:`_set_rows`). Double-clicking the row of a file emits :attr:`file_activated`.
    """

    THUMBNAIL, FILE, LABEL = range(3)
    file_activated = Signal(str)
    status_message = Signal(str)

    def __init__(
        self, jobs: JobSlot, headers: list[str], tooltip: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self.class_names: list[str] = []
        # Keyed by ImageRef.source: the image and its class name, not yet added.
        self._corrections: dict[str, tuple[ImageRef, str]] = {}
        self._added: dict[str, tuple[str, Path]] = {}  # source -> (class name, copy)
        self.table = read_only_table(["Image", "File", *headers], tooltip, selectable=True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(self.FILE, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(self.FILE, 320)
        self.table.setColumnWidth(self.LABEL, 180)  # room for "old → new"
        self.thumbnails = ThumbnailColumn(self.table, self.THUMBNAIL)
        self.table.setSortingEnabled(True)
        self.table.cellDoubleClicked.connect(lambda row, _column: self._activate(row))
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
            if image.source in self._corrections or image.source in self._added:
                self._show_label(image.source, label_item)
        table.setSortingEnabled(True)
        self._update_actions()

    def path_at(self, row: int) -> str:
        """The full path of the image in ``row`` (``<.rec path>#<key>`` for a record)."""
        return self.image_at(row).source

    def image_at(self, row: int) -> ImageRef:
        """Where the image in ``row`` is read from."""
        return self.table.item(row, self.FILE).data(_IMAGE_ROLE)

    def original_label(self, row: int) -> str:
        """The label ``row`` had before any correction."""
        return self.table.item(row, self.LABEL).data(_VALUE_ROLE)

    def _activate(self, row: int) -> None:
        if self.image_at(row).record is None:  # a record has no file to open elsewhere
            self.file_activated.emit(self.path_at(row))

    def selected_rows(self) -> list[int]:
        """The selected rows the filters let through, top to bottom."""
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return sorted(row for row in rows if not self.table.isRowHidden(row))

    def corrections(self) -> dict[str, str]:
        """Image path (:attr:`ImageRef.source`) -> corrected class name, for corrections not
        yet added to a data set."""
        return {source: name for source, (_image, name) in self._corrections.items()}

    def discard_corrections(self) -> None:
        """Forget the corrections not yet added; their rows show the old labels again."""
        self._corrections.clear()
        for row in range(self.table.rowCount()):
            self._show_label(self.path_at(row), self.table.item(row, self.LABEL))
        self._update_actions()

    def shutdown(self) -> bool:
        """Stop the thumbnail thread (final); True when it ended within the timeout."""
        return self.thumbnails.shutdown()

    # Correcting ----------------------------------------------------------------------------

    def ask_correction(self) -> QInputDialog | None:
        """Ask for the right class of the selected images (non-blocking); OK corrects them."""
        rows = self.selected_rows()
        if not rows:
            return None
        dialog = QInputDialog(self)
        dialog.setObjectName("correctLabelDialog")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setWindowTitle("Correct Label")
        noun = "image" if len(rows) == 1 else f"{len(rows)} images"
        dialog.setLabelText(
            f"The right class of the selected {noun} (type a new name for a new class):"
        )
        dialog.setComboBoxItems(self.class_names)
        dialog.setComboBoxEditable(True)
        dialog.setTextValue(self.original_label(rows[0]))
        dialog.textValueSelected.connect(self.correct_selected)
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
            path = file_item.data(_IMAGE_ROLE).source
            if name == label_item.data(_VALUE_ROLE):
                self._corrections.pop(path, None)
            else:
                self._corrections[path] = (file_item.data(_IMAGE_ROLE), name)
            self._show_label(path, label_item)
        self._update_actions()
        images = "1 image" if len(targets) == 1 else f"{len(targets)} images"
        self.status_message.emit(f"{images} now labelled {name}")
        return True

    def _show_label(self, path: str, item: QTableWidgetItem) -> None:
        original = item.data(_VALUE_ROLE)
        pending = self._corrections.get(path, (None, None))[1]
        added = self._added.get(path)
        font = item.font()
        font.setBold(pending is not None)
        item.setFont(font)
        if pending is not None:
            item.setText(f"{original} → {pending}")
            item.setToolTip(
                f"Corrected from {original} to {pending}, not yet added to a data set "
                f"(choose {original} to undo)"
            )
        elif added is not None:
            item.setText(f"{original} → {added[0]}")
            item.setToolTip(f"Added as {added[0]}: {added[1]}")
        else:
            item.setText(original)
            item.setToolTip("")

    # Adding to a data set ------------------------------------------------------------------

    def choose_dataset_folder(self) -> None:
        """Ask for the data set's folder, then add the corrected images to it."""
        folder = QFileDialog.getExistingDirectory(
            self, "Add the corrected images to the data set in (one folder per class)"
        )
        if folder:
            self.add_corrected_to(folder)

    def add_corrected_to(self, folder: str | Path) -> JobHandle | None:
        """Copy every corrected image into ``folder/<its class>/`` in a worker."""
        items = list(self._corrections.values())
        if not items:
            return None
        job = self._jobs.start(
            partial(add_to_dataset, items, Path(folder)),
            f"Adding {len(items)} corrected images to {folder}",
        )
        if job is not None:
            job.finished.connect(partial(self._on_added, Path(folder)))
            job.failed.connect(partial(show_error, self, "Cannot add the corrected images"))
            job.cancelled.connect(
                lambda: self.status_message.emit(
                    f"Adding cancelled; {CORRECTIONS_CSV} lists the images added"
                )
            )
        return job

    def _on_added(self, folder: Path, result: CorrectionResult) -> None:
        for image in result.added:
            path = image.source
            pending = self._corrections.get(path)
            if pending is not None and pending[1] == image.class_name:
                del self._corrections[path]
            self._added[path] = (image.class_name, image.destination)
        for row in range(self.table.rowCount()):
            path = self.path_at(row)
            if path in self._added:
                self._show_label(path, self.table.item(row, self.LABEL))
        self._update_actions()
        counts = Counter(image.class_name for image in result.added)
        message = f"Added {len(result.added):,} images to {folder}."
        details = "\n".join(f"{name}: {count:,}" for name, count in sorted(counts.items()))
        details += "\n\n" + "\n".join(f"{a.source} → {a.destination}" for a in result.added)
        if result.csv_path is not None:
            message += f"\nWhat went where: {result.csv_path}"
        if result.failed:
            message += f"\n{len(result.failed):,} images could not be added (see the details)."
            details += "\n\nNot added:\n" + "\n".join(
                f"{f.path}: {f.reason}" for f in result.failed
            )
            show_error(self, "Some images were not added", message, details.strip())
        else:
            show_info(self, "Added to the data set", message, details.strip())
        self.status_message.emit(f"Added {len(result.added):,} corrected images to {folder}")

    # Actions -------------------------------------------------------------------------------

    def _update_actions(self) -> None:
        pending = len(self._corrections)
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


class PredictionTable(ReviewTable):
    """The predictions of a labelled folder: thumbnail, file, label, confidence, top-k;
    sortable, filtered by label and minimum confidence, labels correctable."""

    CONFIDENCE, TOP_K = 3, 4

    def __init__(self, jobs: JobSlot, parent: QWidget | None = None) -> None:
        super().__init__(
            jobs,
            ["Label", "Confidence", "Top classes"],
            "The model's label for every image; click a header to sort, double-click a row "
            "to look at the image, right-click to correct the label",
            parent,
        )
        self.table.horizontalHeader().setSectionResizeMode(
            self.TOP_K, QHeaderView.ResizeMode.Stretch
        )
        self.table.sortByColumn(self.FILE, Qt.SortOrder.AscendingOrder)
        self._label_filter: str | None = None
        self._min_confidence = 0.0

    def show_predictions(
        self, predictions: list[Prediction], root: Path, class_names: list[str]
    ) -> None:
        """Fill the table, files named relative to ``root`` (the filters stay)."""
        rows = []
        for prediction in predictions:
            top = ", ".join(f"{label} {p:.1%}" for label, p in prediction.top_k)
            cells = [
                NumberItem(f"{prediction.confidence:.1%}", prediction.confidence),
                QTableWidgetItem(top),
            ]
            label = ", ".join(prediction.labels) or prediction.label
            rows.append((ImageRef(str(prediction.path)), label, cells))
        self._set_rows(rows, root, class_names)
        self._apply_filters()

    def set_filters(self, label: str | None, min_confidence: float) -> None:
        """Show only rows of ``label`` (None: every label) at or above ``min_confidence``;
        the model's labels count, not the corrections."""
        self._label_filter = label
        self._min_confidence = min_confidence
        self._apply_filters()

    def _apply_filters(self) -> None:
        for row in range(self.table.rowCount()):
            labels = self.original_label(row).split(", ")
            confidence = self.table.item(row, self.CONFIDENCE).value
            hidden = (
                self._label_filter is not None and self._label_filter not in labels
            ) or confidence < self._min_confidence
            self.table.setRowHidden(row, hidden)
        self._update_actions()

    def visible_rows(self) -> list[tuple[str, str, float]]:
        """(file, label, confidence) of the rows the filters let through, in table order."""
        return [
            (
                self.table.item(row, self.FILE).text(),
                self.table.item(row, self.LABEL).text(),
                self.table.item(row, self.CONFIDENCE).value,
            )
            for row in range(self.table.rowCount())
            if not self.table.isRowHidden(row)
        ]


class CellImagesTable(ReviewTable):
    """The images of one confusion-matrix cell: thumbnail, file, the class they are
    labelled with (correctable), the predicted class and its probability, surest first."""

    PREDICTED, CONFIDENCE = 3, 4

    def __init__(self, jobs: JobSlot, parent: QWidget | None = None) -> None:
        super().__init__(
            jobs,
            ["Labelled as", "Predicted", "Confidence"],
            "The images of the chosen cell, the model's surest first; a wrong label in the "
            "data can be corrected (right-click) and the image added to a data set",
            parent,
        )
        self.table.horizontalHeader().setSectionResizeMode(
            self.PREDICTED, QHeaderView.ResizeMode.Stretch
        )

    def show_images(
        self,
        images: list[ImageOutcome],
        root: Path,
        class_names: list[str],
        dataset: Dataset | None = None,
    ) -> None:
        """Show single-label ``images`` (files relative to ``root``), surest first; images
        with a record key are read from ``dataset`` (the evaluated ``.rec``)."""
        rows = [
            (
                ImageRef(image.path, image.record, dataset),
                image.true_labels[0],
                [
                    QTableWidgetItem(image.predicted_labels[0]),
                    NumberItem(f"{image.confidence:.1%}", image.confidence),
                ],
            )
            for image in images
            if image.path is not None
        ]
        self._set_rows(rows, root, class_names)
        self.table.sortByColumn(self.CONFIDENCE, Qt.SortOrder.DescendingOrder)

    def shown_images(self) -> list[tuple[str, float]]:
        """(full path, confidence) of every row, in table order."""
        return [
            (self.path_at(row), self.table.item(row, self.CONFIDENCE).value)
            for row in range(self.table.rowCount())
        ]
