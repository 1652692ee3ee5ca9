"""The *Label a Folder* page: label every image of a folder, filter, export, sort, correct."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.app_state import AppState
from imgcls_desktop.core.corrections import proposed_dataset
from imgcls_desktop.core.inference import TOP_K, Predictor
from imgcls_desktop.core.jobs import JobContext
from imgcls_desktop.core.labelling import (
    UNCERTAIN_FOLDER,
    LabellingResult,
    SortResult,
    label_images,
    sort_into_folders,
    write_csv,
    write_jsonl,
)
from imgcls_desktop.gui.dialogs import show_error, show_info
from imgcls_desktop.gui.inference.common import ask_discard, button, percent_box, run_job
from imgcls_desktop.gui.inference.review import counted, shown_path
from imgcls_desktop.gui.inference.review_tables import PredictionTable
from imgcls_desktop.gui.path_field import PathField, PathKind
from imgcls_desktop.gui.widgets import read_only_table
from imgcls_desktop.gui.workers import JobHandle, JobSlot


def label_folder_job(predictor: Predictor, folder: str, job: JobContext) -> LabellingResult:
    """Label every image under ``folder`` (runs in a worker)."""
    return label_images(
        predictor, [Path(folder)], top_k=TOP_K, progress=job.progress, cancel=job.cancel
    )


class LabelPage(QWidget):
    """A folder of images labelled by the open model: a table to filter, check and correct;
    the labels exported as CSV or JSON Lines, or the images sorted into class folders."""

    status_message = Signal(str)
    folder_labelled = Signal(str, int)
    image_activated = Signal(object)
    """An :class:`~imgcls_desktop.core.corrections.ImageRef` double-clicked in the table."""

    def __init__(self, slot: JobSlot, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._slot = slot
        self._state = state
        self.labelling: LabellingResult | None = None
        self.folder: Path | None = None
        self.folder_path = PathField(
            PathKind.FOLDER,
            caption="Folder of images",
            placeholder="A folder of images (sub-folders included)",
            tooltip="Every image in this folder and its sub-folders is labelled",
        )
        self.label_button = button(
            "Label Folder",
            "Label every image of the folder with the open model",
            lambda: self.label_folder(self.folder_path.text()),
        )
        self.cancel_button = button("Cancel", "Stop the running job", slot.cancel)
        top = QHBoxLayout()
        top.addWidget(self.folder_path, 1)
        top.addWidget(self.label_button)
        top.addWidget(self.cancel_button)

        self.label_filter = QComboBox()
        self.label_filter.setToolTip("Show only the images given this label")
        self.label_filter.addItem("All labels", None)
        self.label_filter.currentIndexChanged.connect(self._filter_changed)
        self.min_confidence = percent_box("Show only the images the model is at least this sure of")
        self.min_confidence.valueChanged.connect(self._filter_changed)
        self.shown_count = QLabel()
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Label:"))
        filters.addWidget(self.label_filter)
        filters.addWidget(QLabel("Confidence at least:"))
        filters.addWidget(self.min_confidence)
        filters.addWidget(self.shown_count, 1)

        self.predictions = PredictionTable(slot)
        self.predictions.image_activated.connect(self.image_activated)
        self.predictions.status_message.connect(self.status_message)
        self.unreadable = read_only_table(
            ["Unreadable file", "Reason"], "Files that could not be labelled, and why"
        )
        header = self.unreadable.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.unreadable.setColumnWidth(0, 420)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.predictions)
        split.addWidget(self.unreadable)
        self.unreadable.hide()  # shown when a labelling meets unreadable files
        split.setSizes([500, 120])

        page = QVBoxLayout(self)
        page.addLayout(top)
        page.addLayout(filters)
        page.addWidget(split, 1)
        page.addLayout(self._build_actions())

    def _build_actions(self) -> QVBoxLayout:
        self.csv_button = button(
            "Export CSV…", "Save path, label, confidence and top classes as CSV", self.export_csv
        )
        self.jsonl_button = button(
            "Export JSON Lines…",
            "Save SageMaker batch-transform JSON Lines (every class's probability)",
            self.export_jsonl,
        )
        self.sort_mode = QComboBox()
        self.sort_mode.addItem("Copy", False)
        self.sort_mode.addItem("Move", True)
        self.sort_mode.setToolTip(
            "Copy the images into class folders (the originals stay), or move them"
        )
        self.sort_threshold = percent_box(
            f"Images the model is less sure of go into {UNCERTAIN_FOLDER}; 0 sorts every image"
        )
        self.sort_path = PathField(
            PathKind.FOLDER,
            caption="Sort the images into class folders in",
            placeholder="Where the class folders go (created if new)",
            tooltip="The folder the class folders go into; a new folder is created",
        )
        self.sort_button = button(
            "Sort into Folders…",
            "Copy or move every labelled image into a folder named after its label",
            self.confirm_sort,
        )
        sort = QHBoxLayout()
        sort.addWidget(self.sort_mode)
        sort.addWidget(QLabel("uncertain below:"))
        sort.addWidget(self.sort_threshold)
        sort.addWidget(QLabel("into:"))
        sort.addWidget(self.sort_path, 1)
        sort.addWidget(self.sort_button)
        actions = QVBoxLayout()
        exports = QHBoxLayout()
        exports.addWidget(self.csv_button)
        exports.addWidget(self.jsonl_button)
        exports.addStretch(1)
        actions.addLayout(exports)
        actions.addLayout(sort)
        return actions

    def set_start_folder(self, folder: Path | None) -> None:
        """Open the folder dialog beside the data (until a folder has been labelled)."""
        if self.folder is None:
            self.folder_path.set_start_folder(folder)

    def set_busy(self, busy: bool, model_open: bool) -> None:
        """Enable what can be done now."""
        labelled = not busy and self.labelling is not None
        self.label_button.setEnabled(not busy and model_open)
        self.cancel_button.setEnabled(busy)
        for push in (self.csv_button, self.jsonl_button, self.sort_button):
            push.setEnabled(labelled)

    def label_folder(self, folder: str) -> JobHandle | None:
        """Label every image of ``folder`` with the open model in a worker; with corrections
        not yet added, first ask whether to discard them (then None)."""
        self.folder_path.setText(folder)
        model = self._state.model
        if model is None or not folder:
            self.status_message.emit("Open a model and choose a folder of images first.")
            return None
        then = partial(self.label_folder, folder)
        if ask_discard(self, self.predictions, then, self.status_message.emit) is not None:
            return None
        return run_job(
            self,
            self._slot,
            partial(label_folder_job, model.predictor, folder),
            f"Labelling {folder}",
            partial(self._on_labelled, Path(folder)),
            "Labelling failed",
            self.status_message.emit,
        )

    def _on_labelled(self, folder: Path, result: LabellingResult) -> None:
        self.labelling, self.folder = result, folder
        self.label_filter.blockSignals(True)
        self.label_filter.clear()
        self.label_filter.addItem("All labels", None)
        for name in result.class_names:
            self.label_filter.addItem(name, name)
        self.label_filter.blockSignals(False)
        self.predictions.show_predictions(result.predictions, folder, result.class_names)
        self.predictions.set_proposed_dataset(self._dataset_proposal(folder))
        self.unreadable.setRowCount(len(result.unreadable))
        self.unreadable.setVisible(bool(result.unreadable))
        for row, item in enumerate(result.unreadable):
            name = QTableWidgetItem(shown_path(item.path, folder))
            name.setToolTip(str(item.path))
            self.unreadable.setItem(row, 0, name)
            self.unreadable.setItem(row, 1, QTableWidgetItem(item.reason))
        self._filter_changed()
        self.folder_path.set_start_folder(folder.parent)
        self.sort_path.set_start_folder(folder.parent)
        if not self.sort_path.text():
            self.sort_path.setText(str(folder.with_name(f"{folder.name}-sorted")))
        unreadable = f", {len(result.unreadable):,} unreadable" if result.unreadable else ""
        arithmetic = "" if result.numeric_precision == "fp32" else f" in {result.numeric_precision}"
        self.status_message.emit(
            f"Labelled {counted(len(result.predictions), 'image')}{arithmetic}{unreadable}"
        )
        self.folder_labelled.emit(str(folder), len(result.predictions))

    def _dataset_proposal(self, folder: Path) -> Path | None:
        opened = self._state.dataset
        return proposed_dataset(folder=folder) or proposed_dataset(opened and opened.dataset)

    def _filter_changed(self) -> None:
        self.predictions.set_filters(
            self.label_filter.currentData(), self.min_confidence.value() / 100
        )
        total = self.predictions.table.rowCount()
        self.shown_count.setText(f"{len(self.predictions.visible_rows()):,} of {total:,} shown")

    # Exports and sorting -------------------------------------------------------------------

    def _beside_folder(self, suffix: str) -> str:
        folder = self.folder or Path.home()
        return str(folder.with_name(f"{folder.name}-labels{suffix}"))

    def export_csv(self) -> None:
        """Ask for a file name (beside the labelled folder) and save the labels as CSV."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Export CSV", self._beside_folder(".csv"), "CSV (*.csv)"
        )
        if path:
            self.save_labels(Path(path), write_csv)

    def export_jsonl(self) -> None:
        """Ask for a file name (beside the labelled folder) and save SageMaker JSON Lines."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Export JSON Lines", self._beside_folder(".jsonl"), "JSON Lines (*.jsonl)"
        )
        if path:
            self.save_labels(Path(path), write_jsonl)

    def save_labels(
        self, path: Path, writer: Callable[[LabellingResult, Path], None] = write_csv
    ) -> bool:
        """Write the last labelling to ``path`` with ``writer`` (``write_csv``/``write_jsonl``)."""
        if self.labelling is None:
            return False
        try:
            writer(self.labelling, path)
        except OSError as error:
            show_error(self, "Cannot save the labels", f"{path}: {error.strerror or error}")
            return False
        saved = counted(len(self.labelling.predictions), "label")
        self.status_message.emit(f"Saved {saved} to {path}")
        return True

    def confirm_sort(self, out_dir: str | None = None) -> QMessageBox | None:
        """Say what sorting into ``out_dir`` (default: the *into* field; created when new)
        will do; Yes starts it (non-blocking)."""
        out_dir = out_dir or self.sort_path.text()
        if self.labelling is None:
            return None
        if not out_dir:
            self.status_message.emit("Choose or type the folder to sort the images into.")
            return None
        move = bool(self.sort_mode.currentData())
        threshold = self.sort_threshold.value() / 100
        verb = "Move" if move else "Copy"
        images = counted(len(self.labelling.predictions), "image")
        text = f"{verb} {images} into one folder per label in {out_dir}?"
        if not Path(out_dir).exists():
            text += "\nThe folder is new: it will be created."
        if threshold:
            text += (
                f"\nImages labelled with less than {threshold:.0%} confidence go into "
                f"{Path(out_dir) / UNCERTAIN_FOLDER}."
            )
        text += "\nExisting files are never overwritten; sorted.csv lists where each image went."
        if move:
            text += "\nThe images leave their current folders."
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Sort into folders",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("confirmSortDialog")
        box.button(QMessageBox.StandardButton.Yes).setText(f"{verb} Images")
        box.accepted.connect(partial(self.sort_into, out_dir, move, threshold or None))
        box.open()
        return box

    def sort_into(self, out_dir: str, move: bool, min_confidence: float | None) -> JobHandle | None:
        """Copy or move the labelled images into class folders under ``out_dir``, in a worker."""
        if self.labelling is None:
            return None
        return run_job(
            self,
            self._slot,
            partial(_sort_job, self.labelling, out_dir, move, min_confidence),
            f"Sorting images into {out_dir}",
            partial(self._on_sorted, out_dir, move),
            "Sorting failed",
            self.status_message.emit,
        )

    def _on_sorted(self, out_dir: str, move: bool, result: SortResult) -> None:
        counts = Counter(Path(image.destination).parent.name for image in result.sorted)
        details = "\n".join(f"{name}: {count:,}" for name, count in sorted(counts.items()))
        images = counted(len(result.sorted), "image")
        message = f"{'Moved' if move else 'Copied'} {images} into {out_dir}."
        if result.failed:
            failed = counted(len(result.failed), "image")
            message += f"\n{failed} could not be sorted (see the details)."
            details += "\n\nNot sorted:\n" + "\n".join(
                f"{f.path}: {f.reason}" for f in result.failed
            )
        if result.csv_path:
            message += f"\nWhat went where: {result.csv_path}"
        show_info(self, "Sorted into folders", message, details)
        self.status_message.emit(f"Sorted {images} into {out_dir}")


def _sort_job(
    result: LabellingResult,
    out_dir: str,
    move: bool,
    min_confidence: float | None,
    job: JobContext,
) -> SortResult:
    return sort_into_folders(
        result,
        Path(out_dir),
        move=move,
        min_confidence=min_confidence,
        progress=job.progress,
        cancel=job.cancel,
    )
