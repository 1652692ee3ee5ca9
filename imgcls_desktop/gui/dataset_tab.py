"""The Dataset tab: open a data set, see what the scan found, split and export RecordIO.

The output folder follows the opened data set (``<name>-recordio`` beside it), and an export
that would replace an earlier one asks first. The sample data set lives in its own folder
of the app's data folder and is exported beside it; asked for again, its earlier export is
used as it is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
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

from imgcls_desktop.core.dataset.export import (
    ExportResult,
    existing_export_files,
    export_recordio,
)
from imgcls_desktop.core.dataset.model import Dataset
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.dataset.scan import (
    CrossSplitDuplicate,
    ScanReport,
    cross_split_duplicates,
    scan_dataset,
)
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.dataset.split import split_dataset
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn
from imgcls_desktop.core.paths import data_dir
from imgcls_desktop.gui.dataset_widgets import (
    ClassSummary,
    EmptyState,
    ExportPanel,
    ExportSettings,
    ImagePreview,
    Problem,
    ProblemsView,
)
from imgcls_desktop.gui.dialogs import ask, show_error, show_info
from imgcls_desktop.gui.thumbnails import ThumbnailGrid
from imgcls_desktop.gui.workers import JobHandle, JobRunner, JobSlot

DATASET_FILE_FILTER = (
    "Data sets (*.lst *.jsonl *.manifest *.json *.rec);;"
    "im2rec lists (*.lst);;Augmented manifests (*.jsonl *.manifest *.json);;RecordIO (*.rec)"
)
SAMPLE_FOLDER_NAME = "sample-shapes"


@dataclass(frozen=True)
class OpenedDataset:
    """A data set and its health scan, as the open job hands them to the tab."""

    path: str
    dataset: Dataset
    report: ScanReport


@dataclass(frozen=True)
class ExportOutcome:
    """What the export job wrote, and duplicates that ended up in different splits."""

    result: ExportResult
    leaks: list[CrossSplitDuplicate]


def open_and_scan(path: str, progress: ProgressFn, cancel: CancelFlag) -> OpenedDataset:
    """Import the data set at ``path`` and scan it (runs in a worker)."""
    dataset = load_dataset(Path(path))
    report = scan_dataset(dataset, progress=progress, cancel=cancel)
    return OpenedDataset(path, dataset, report)


def split_and_export(
    opened: OpenedDataset,
    settings: ExportSettings,
    overwrite: bool,
    progress: ProgressFn,
    cancel: CancelFlag,
) -> ExportOutcome:
    """Split the usable images and export them to RecordIO (runs in a worker); ``overwrite``
    allows replacing an earlier export."""
    assignment = split_dataset(
        opened.dataset,
        val_ratio=settings.val_ratio,
        test_ratio=settings.test_ratio,
        seed=settings.seed,
        indices=opened.report.usable_indices,
    )
    result = export_recordio(
        opened.dataset,
        settings.out_dir,
        name=settings.name,
        assignment=assignment,
        options=settings.options,
        progress=progress,
        cancel=cancel,
        overwrite=overwrite,
    )
    splits = [assignment.split_of(i) or "" for i in range(len(opened.dataset.samples))]
    return ExportOutcome(result, cross_split_duplicates(opened.report, splits))


def generate_sample(target: Path, progress: ProgressFn, cancel: CancelFlag) -> str:
    """Generate the sample data set into ``target`` unless it is there (runs in a worker).

    It is generated beside the target and renamed at the end, so a cancelled generation
    never leaves a half-made sample set to be opened later.
    """
    if target.is_dir() and any(target.iterdir()):
        return str(target)
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        generate_sample_dataset(staging, progress=progress, cancel=cancel)
        staging.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def describe_problems(report: ScanReport, leaks: list[CrossSplitDuplicate] = ()) -> list[Problem]:
    """The scan's findings as lines of the problems list."""
    problems = [
        Problem("Unusable files (skipped)", f"{Path(f.path).name}: {f.reason}", f.path)
        for f in report.bad_files
    ]
    if report.min_size:
        height, width = report.min_size
        problems += [
            Problem(
                f"Smaller than {width} wide x {height} high",
                f"{Path(f.path).name}: {f.width} x {f.height}",
                f.path,
            )
            for f in report.small_images
        ]
    problems += [
        Problem(
            "Converted to 8-bit colour on export", f"{Path(f.path).name}: {f.conversion}", f.path
        )
        for f in report.converted
    ]
    for group in report.duplicate_groups:
        note = " (with different labels)" if group.labels_differ else ""
        names = ", ".join(Path(p).name for p in group.paths)
        problems.append(Problem("Exact duplicates", f"{names}{note}", group.paths[0]))
    problems += [
        Problem(
            "Duplicates across splits",
            ", ".join(f"{Path(p).name} in {s}" for p, s in zip(leak.paths, leak.splits)),
            leak.paths[0],
        )
        for leak in leaks
    ]
    problems += [
        Problem(
            "Classes with few images", f"{c.name}: {c.count} (fewer than {report.min_per_class})"
        )
        for c in report.few_images_classes
    ]
    if report.imbalance:
        imbalance = report.imbalance
        problems.append(
            Problem(
                "Class imbalance",
                f"{imbalance.largest.name} has {imbalance.ratio:.1f}x the images of "
                f"{imbalance.smallest.name} "
                f"({imbalance.largest.count} vs {imbalance.smallest.count})",
            )
        )
    return problems


class DatasetTab(QWidget):
    """Open a data set, see its classes and problems, browse it, export RecordIO."""

    dataset_opened = Signal(str)
    dataset_exported = Signal(str, str)
    sample_ready = Signal()
    status_message = Signal(str)

    def __init__(self, jobs: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._slot = JobSlot(jobs, self)
        self._slot.busy_changed.connect(self._set_busy)
        self._slot.refused.connect(self.status_message)
        self.opened: OpenedDataset | None = None
        self.last_export: ExportOutcome | None = None
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
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(self.thumbnails)
        body.setStretchFactor(1, 1)
        body.setSizes([420, 860])

        self.export_panel = ExportPanel()
        self.export_panel.export_requested.connect(self.export)

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

    # Opening -------------------------------------------------------------------------------

    @Slot()
    def choose_folder(self) -> None:
        """Ask for a folder-per-class data set and open it."""
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of class folders")
        if folder:
            self.open_path(folder)

    @Slot()
    def choose_file(self) -> None:
        """Ask for a .lst, manifest or .rec file and open it."""
        path, _ = QFileDialog.getOpenFileName(self, "Open a data set file", "", DATASET_FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> JobHandle | None:
        """Import and scan ``path`` in a worker; the tab fills in when it is done."""
        job = self._start(partial(open_and_scan, str(path)), f"Scanning {Path(path).name}")
        if job is not None:
            job.finished.connect(self._on_opened)
            job.failed.connect(partial(self._on_failed, "Cannot open the data set"))
            job.cancelled.connect(self._forget_sample)
        return job

    @Slot()
    def rescan(self) -> None:
        """Import and scan the open data set again."""
        if self.opened is not None:
            self.open_path(self.opened.path)

    @Slot()
    def generate_sample(self) -> JobHandle | None:
        """Generate the sample data set in the app's data folder, open it and export it for
        training (:attr:`sample_ready` says when it is ready)."""
        target = data_dir() / SAMPLE_FOLDER_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        job = self._start(partial(generate_sample, target), "Generating the sample data set")
        if job is not None:
            self._preparing_sample = True
            job.finished.connect(self.open_path)
            job.failed.connect(partial(self._on_failed, "Cannot generate the sample data set"))
            job.cancelled.connect(self._forget_sample)
        return job

    def _forget_sample(self) -> None:
        self._preparing_sample = False

    def is_preparing_sample(self) -> bool:
        """True from a click on Generate Sample until the sample is exported for training."""
        return self._preparing_sample

    def _on_opened(self, opened: OpenedDataset) -> None:
        if self.opened is None or self.opened.path != opened.path:
            self.export_panel.out_dir.setText(str(_default_export_dir(opened.path)))
        self.opened = opened
        dataset, report = opened.dataset, opened.report
        kind = {
            "folder": "folder per class",
            "lst": "im2rec .lst",
            "manifest": "augmented manifest",
            "recordio": "RecordIO",
        }[dataset.kind.value]
        usable = len(report.usable_indices)
        labels = "multi-label, " if dataset.multi_label else ""
        self.source_label.setText(
            f"<b>{opened.path}</b><br>{kind} · {labels}{dataset.num_classes} classes · "
            f"{usable:,} usable of {len(dataset.samples):,} images"
        )
        self.classes.show_counts(dataset.class_names, report.class_counts)
        self.problems.show_problems(describe_problems(report))
        self.thumbnails.set_dataset(dataset)
        self.stack.setCurrentIndex(1)
        self.dataset_opened.emit(opened.path)
        bad = len(report.bad_files)
        self.status_message.emit(
            f"Opened {Path(opened.path).name}: {usable:,} usable images"
            + (f", {bad} unusable (see Problems)" if bad else "")
        )
        if self._preparing_sample:
            self._export_sample()

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
        """Split and export the open data set with the panel's settings, in a worker; with
        ``announce``, a summary opens when it is done.

        When the output folder holds an earlier export of that name, a question asks whether
        to replace it; the export starts if the user agrees (and None is returned)."""
        if self.opened is None:
            return None
        try:
            settings = self.export_panel.settings()
        except ValueError as error:
            show_error(self, "Cannot export", str(error))
            self._forget_sample()
            return None
        existing = existing_export_files(settings.out_dir, settings.name)
        if existing:
            self._ask_to_replace(settings, existing, announce)
            return None
        return self._start_export(self.opened, settings, announce, overwrite=False)

    def _ask_to_replace(
        self, settings: ExportSettings, existing: list[Path], announce: bool
    ) -> None:
        opened = self.opened
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
        self, opened: OpenedDataset, settings: ExportSettings, announce: bool, overwrite: bool
    ) -> JobHandle | None:
        job = self._start(
            partial(split_and_export, opened, settings, overwrite),
            f"Exporting RecordIO to {settings.out_dir}",
        )
        if job is not None:
            job.finished.connect(partial(self._on_exported, announce=announce))
            job.failed.connect(partial(self._on_failed, "Export failed; nothing was written"))
            job.cancelled.connect(self._forget_sample)
            job.cancelled.connect(
                lambda: self.status_message.emit("Export cancelled; nothing was written")
            )
        return job

    def _on_exported(self, outcome: ExportOutcome, announce: bool = True) -> None:
        self.last_export = outcome
        result = outcome.result
        counts = ", ".join(f"{count:,} {split}" for split, count in result.counts.items() if count)
        lines = [f"{Path(path).name}" for path in result.files]
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
            self.problems.show_problems(describe_problems(self.opened.report, outcome.leaks))
        details = "Files written:\n" + "\n".join(lines)
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
        if self.opened is None:
            return
        dataset = self.opened.dataset
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

    def _start(self, job_function: object, title: str) -> JobHandle | None:
        return self._slot.start(job_function, title)

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


def _default_export_dir(source: str) -> Path:
    """The data set's own export folder beside it: ``<folder>-recordio`` for a folder,
    ``<file name without suffix>-recordio`` for a file."""
    path = Path(source)
    return path.with_name(f"{path.name if path.is_dir() else path.stem}-recordio")
