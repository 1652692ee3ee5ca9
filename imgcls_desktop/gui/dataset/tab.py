"""The Dataset tab: open a data set, see what the scan found, split and export RecordIO.

The tab shows the app state's open data set (:attr:`AppState.dataset`) and keeps no copy of
it: opening one hands it to the state, and the tab redraws when the state says it changed.
Each data set exports into its own folder (``<name>-recordio`` beside it, or where the user
chose for it); an export that would replace an earlier one asks first. The sample data set
lives in the app's data folder and is exported beside it; asked for again, its earlier
export is used as it is.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.app_state import AppState, OpenDataset, Part
from imgcls_desktop.core.dataset.findings import findings, relative_to
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.recordio_export import existing_export_files
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.dataset.scan import CrossSplitDuplicate
from imgcls_desktop.core.dataset.split_export import Packed
from imgcls_desktop.core.paths import data_dir
from imgcls_desktop.core.project import ItemKind
from imgcls_desktop.gui.dataset.class_summary import ClassSummary
from imgcls_desktop.gui.dataset.empty_state import EmptyState
from imgcls_desktop.gui.dataset.export_panel import ExportPanel, ExportSettings
from imgcls_desktop.gui.dataset.preview import ImagePreview
from imgcls_desktop.gui.dataset.problems import ProblemsView
from imgcls_desktop.gui.dataset.work import (
    Scanned,
    generate_sample,
    open_and_scan,
    split_and_export,
)
from imgcls_desktop.gui.dialogs import ask, show_error, show_info
from imgcls_desktop.gui.path_field import existing_folder
from imgcls_desktop.gui.thumbnails import ThumbnailGrid
from imgcls_desktop.gui.workers import JobHandle, JobRunner, JobSlot

DATASET_FILE_FILTER = (
    "Data sets (*.lst *.jsonl *.manifest *.json *.rec);;"
    "im2rec lists (*.lst);;Augmented manifests (*.jsonl *.manifest *.json);;RecordIO (*.rec)"
)
SAMPLE_FOLDER_NAME = "sample-shapes"
_KINDS = {
    "folder": "folder per class",
    "lst": "im2rec .lst",
    "manifest": "augmented manifest",
    "recordio": "RecordIO",
}


class DatasetTab(QWidget):
    """Open a data set, see its classes and problems, browse it, export RecordIO."""

    dataset_exported = Signal(str, str)
    """The training and validation (or "") .rec files of an export, once it is written."""
    sample_ready = Signal()
    status_message = Signal(str)

    def __init__(self, jobs: JobRunner, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._slot = JobSlot(jobs, self)
        self._slot.busy_changed.connect(self._set_busy)
        self._slot.refused.connect(self.status_message)
        self._shown: Dataset | None = None
        self._preparing_sample = False

        self.empty_state = EmptyState()
        self.empty_state.open_folder_requested.connect(self.choose_folder)
        self.empty_state.open_file_requested.connect(self.choose_file)
        self.empty_state.sample_requested.connect(self.generate_sample)

        self.source_label = QLabel()
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Read the data set again and repeat the health scan")
        self.rescan_button.clicked.connect(self.rescan)
        header = QHBoxLayout()
        header.addWidget(self.source_label, 1)
        header.addWidget(self.rescan_button)

        self.classes = ClassSummary()
        self.problems = ProblemsView()
        self.problems.file_clicked.connect(self.show_file)
        self.thumbnails = ThumbnailGrid()
        self.thumbnails.sample_activated.connect(self.show_sample)
        self.classes.class_selected.connect(self.thumbnails.set_class_filter)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.classes)
        left.addWidget(self.problems)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 2)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(self.thumbnails)
        body.setStretchFactor(1, 1)
        body.setSizes([440, 840])

        self.export_panel = ExportPanel(start_dir=self._beside_dataset)
        self.export_panel.export_requested.connect(self.export)
        self.export_panel.out_dir.changed.connect(self._export_dir_edited)

        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addLayout(header)
        content_layout.addWidget(body, 1)
        content_layout.addWidget(self.export_panel)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_state)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)
        self.preview = ImagePreview(self)
        state.subscribe(Part.DATASET, self._show_dataset)

    # Opening -------------------------------------------------------------------------------

    @Slot()
    def choose_folder(self) -> None:
        """Ask for a folder-per-class data set (beside the last one) and open it."""
        folder = QFileDialog.getExistingDirectory(
            self, "Open a folder of class folders", self._beside_dataset()
        )
        if folder:
            self.open_path(folder)

    @Slot()
    def choose_file(self) -> None:
        """Ask for a .lst, manifest or .rec file (beside the last data set) and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a data set file", self._beside_dataset(), DATASET_FILE_FILTER
        )
        if path:
            self.open_path(path)

    def _beside_dataset(self) -> str:
        """The folder the open (else the last) data set is in: where dialogs start."""
        opened = self._state.dataset
        last = opened.path if opened else next(iter(self._state.recent(ItemKind.DATASET)), None)
        return existing_folder(Path(last).parent) if last else ""

    def open_path(self, path: str | Path) -> JobHandle | None:
        """Import and scan ``path`` in a worker; it becomes the open data set when done."""
        path = Path(path)
        job = self._slot.start(partial(open_and_scan, path), f"Scanning {path.name}")
        if job is not None:
            job.succeeded.connect(self._on_scanned)
            job.failed.connect(partial(self._on_failed, "Cannot open the data set"))
            job.cancelled.connect(self._forget_sample)
        return job

    @Slot()
    def rescan(self) -> None:
        """Import and scan the open data set again."""
        if self._state.dataset is not None:
            self.open_path(self._state.dataset.path)

    @Slot()
    def generate_sample(self) -> JobHandle | None:
        """Generate the sample data set in the app's data folder, open it and export it for
        training (:attr:`sample_ready` says when it is ready)."""
        target = data_dir() / SAMPLE_FOLDER_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        job = self._slot.start(partial(generate_sample, target), "Generating the sample data set")
        if job is not None:
            self._preparing_sample = True
            job.succeeded.connect(self.open_path)
            job.failed.connect(partial(self._on_failed, "Cannot generate the sample data set"))
            job.cancelled.connect(self._forget_sample)
        return job

    def _forget_sample(self) -> None:
        self._preparing_sample = False

    def is_preparing_sample(self) -> bool:
        """True from a click on Generate Sample until the sample is exported for training."""
        return self._preparing_sample

    def _on_scanned(self, scanned: Scanned) -> None:
        self._state.open_dataset(scanned.path, scanned.dataset, scanned.report)
        usable, bad = len(scanned.report.usable_indices), len(scanned.report.bad_files)
        self.status_message.emit(
            f"Opened {scanned.path.name}: {usable:,} usable images"
            + (f", {bad} unusable (see Problems)" if bad else "")
        )
        if self._preparing_sample:
            self._export_sample()

    def _show_dataset(self) -> None:
        """Show the state's open data set; only its export folder when only that changed."""
        opened = self._state.dataset
        if opened is None:
            return
        if self.export_panel.out_dir.text() != str(opened.export_dir):
            self.export_panel.out_dir.setText(str(opened.export_dir))
        if opened.dataset is self._shown:
            return
        self._shown = opened.dataset
        dataset, report = opened.dataset, opened.report
        labels = "multi-label, " if dataset.multi_label else ""
        self.source_label.setText(
            f"<b>{opened.path}</b><br>{_KINDS[dataset.kind.value]} · {labels}"
            f"{dataset.num_classes} classes · {len(report.usable_indices):,} usable of "
            f"{len(dataset.samples):,} images"
        )
        self.classes.show_counts(dataset.class_names, report.class_counts)
        self._show_findings(opened)
        self.thumbnails.set_dataset(dataset)
        self.stack.setCurrentIndex(1)

    def _show_findings(self, opened: OpenDataset, leaks: list[CrossSplitDuplicate] = ()) -> None:
        show_path = relative_to(opened.dataset.root)
        self.problems.show_findings(findings(opened.report, leaks, show_path))

    def _export_dir_edited(self, text: str) -> None:
        if text.strip():
            self._state.set_export_dir(Path(text.strip()).expanduser())

    def _export_sample(self) -> None:
        """Export the sample for training, or hand on the export made of it before."""
        try:
            settings = self.export_panel.settings()
        except ValueError:
            settings = None  # export() says why
        if settings is not None:
            train, validation = (
                settings.out_dir / f"{settings.name}-{split}.rec" for split in ("train", "val")
            )
            if train.is_file() and validation.is_file():
                self.status_message.emit(f"Using the sample's export in {settings.out_dir}")
                self._hand_on(str(train), str(validation))
                return
        self.export(announce=False)

    # Export --------------------------------------------------------------------------------

    @Slot()
    def export(self, announce: bool = True) -> JobHandle | None:
        """Split and export the open data set into its export folder, in a worker; with
        ``announce``, a summary opens when it is done.

        When the folder holds an earlier export of that name, a question asks whether to
        replace it; the export starts if the user agrees (and None is returned)."""
        opened = self._state.dataset
        if opened is None:
            return None
        try:
            settings = self.export_panel.settings()
        except ValueError as error:
            show_error(self, "Cannot export", str(error))
            self._forget_sample()
            return None
        existing = existing_export_files(settings.out_dir, settings.name)
        if existing:
            self._ask_to_replace(opened, settings, existing, announce)
            return None
        return self._start_export(opened, settings, announce, overwrite=False)

    def _ask_to_replace(
        self, opened: OpenDataset, settings: ExportSettings, existing: list[Path], announce: bool
    ) -> None:
        box = ask(
            self,
            "confirmReplaceExportDialog",
            "Replace the earlier export?",
            f"{settings.out_dir} already holds an export. Exporting replaces "
            f"{', '.join(path.name for path in existing)}.\n\nRuns trained on those files "
            "would no longer match them. Replace them?",
            yes="Replace",
            no="Keep Them",
            on_yes=lambda: self._start_export(opened, settings, announce, overwrite=True),
        )
        box.rejected.connect(self._forget_sample)
        box.rejected.connect(
            lambda: self.status_message.emit("Export not started; the earlier export is kept")
        )

    def _start_export(
        self, opened: OpenDataset, settings: ExportSettings, announce: bool, overwrite: bool
    ) -> JobHandle | None:
        job = self._slot.start(
            partial(split_and_export, opened.dataset, opened.report, settings, overwrite),
            f"Exporting RecordIO to {settings.out_dir}",
        )
        if job is not None:
            job.succeeded.connect(partial(self._on_exported, opened, announce))
            job.failed.connect(partial(self._on_failed, "Export failed; nothing was written"))
            job.cancelled.connect(self._forget_sample)
            job.cancelled.connect(
                lambda: self.status_message.emit("Export cancelled; nothing was written")
            )
        return job

    def _on_exported(self, opened: OpenDataset, announce: bool, outcome: Packed) -> None:
        result = outcome.result
        counts = ", ".join(f"{count:,} {split}" for split, count in result.counts.items() if count)
        skipped = [f"{Path(s.path).name}: {s.reason}" for s in result.skipped]
        message = (
            f"Wrote {result.written:,} images ({counts}) to {result.out_dir} in "
            f"{result.seconds:.1f} s ({result.images_per_second:,.0f} images/s)."
        )
        if skipped:
            message += f"\n{len(skipped)} images could not be used and were skipped."
        if outcome.leaks:
            message += (
                f"\n{len(outcome.leaks)} groups of identical images ended up in different "
                "splits (see Problems)."
            )
            if self._state.dataset is opened:
                self._show_findings(opened, outcome.leaks)
        details = "Files written:\n" + "\n".join(path.name for path in result.files)
        if skipped:
            details += "\n\nSkipped:\n" + "\n".join(skipped)
        if announce:
            show_info(self, "Export finished", message, details)
        rec_files = {path.name: str(path) for path in result.files if path.suffix == ".rec"}
        self.status_message.emit(f"Exported {result.written:,} images to {result.out_dir}")
        self._hand_on(
            rec_files.get(f"{result.name}-train.rec"), rec_files.get(f"{result.name}-val.rec", "")
        )

    def _hand_on(self, train: str | None, validation: str) -> None:
        """Say that training data is ready (and, for the sample, that the sample is)."""
        if train:
            self.dataset_exported.emit(train, validation)
        if self._preparing_sample:
            self._preparing_sample = False
            self.sample_ready.emit()

    # Looking at images ---------------------------------------------------------------------

    @Slot(str, str)
    def show_file(self, path: str, caption: str) -> None:
        """Show one file of the problems list."""
        try:
            data = Path(path).read_bytes()
        except OSError:
            data = None
        self.preview.show_image(Path(path).name, data, f"{path}\n{caption}")

    @Slot(int)
    def show_sample(self, index: int) -> None:
        """Show one image of the data set, with its class."""
        if self._state.dataset is None:
            return
        dataset = self._state.dataset.dataset
        sample = dataset.samples[index]
        try:
            with ImageReader(dataset) as reader:
                data = reader.read(sample)
        except OSError as error:
            data, caption = None, f"{sample.path}\n{error}"
        else:
            names = ", ".join(dataset.class_names[label] for label in sample.labels)
            caption = f"{sample.path}\nClass: {names or '(none)'}"
        self.preview.show_image(Path(sample.path).name, data, caption)

    # Jobs ----------------------------------------------------------------------------------

    def _on_failed(self, title: str, message: str, details: str) -> None:
        self._forget_sample()
        show_error(self, title, message, details)
        self.status_message.emit(f"{title}: {message}")

    def _set_busy(self, busy: bool) -> None:
        for widget in (
            self.rescan_button,
            self.export_panel.export_button,
            self.empty_state.sample_button,
        ):
            widget.setEnabled(not busy)

    def shutdown(self) -> None:
        """Stop background work of the tab (the window is closing)."""
        self.thumbnails.shutdown()
