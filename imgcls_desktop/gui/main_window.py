"""The main window: the tabs, the menus, the status bar with the running job."""

from __future__ import annotations

import html
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, QTimer, Slot, qVersion
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core import about
from imgcls_desktop.core.dataset.folder import holds_only_loose_images
from imgcls_desktop.core.dataset.images import IMAGE_EXTENSIONS
from imgcls_desktop.core.evaluation import EvaluationReport
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn
from imgcls_desktop.core.models import looks_like_model
from imgcls_desktop.core.project import (
    ItemKind,
    load_project,
    save_project,
    split_training_pair,
    training_pair,
)
from imgcls_desktop.core.resources import icon_path
from imgcls_desktop.core.training.run import HYPERPARAMETERS_FILE, validation_records
from imgcls_desktop.gui.dataset_tab import DatasetTab
from imgcls_desktop.gui.dialogs import ask
from imgcls_desktop.gui.inference_tab import InferenceTab
from imgcls_desktop.gui.job_status import JobStatus
from imgcls_desktop.gui.next_step import NextStepBanner
from imgcls_desktop.gui.settings import AppSettings
from imgcls_desktop.gui.training_tab import TrainingTab
from imgcls_desktop.gui.widgets import DropPathMixin
from imgcls_desktop.gui.workers import JobRunner

_CLOSE_TIMEOUT_MS = 10_000
_DEFAULT_WIDTH, _DEFAULT_HEIGHT = 1280, 820


def _find_devices(progress: ProgressFn, cancel: CancelFlag) -> about.Devices:
    return about.find_devices()


def app_icon() -> QIcon:
    """The application icon (scalable)."""
    return QIcon(str(icon_path()))


class MainWindow(DropPathMixin, QMainWindow):
    """Dataset, Training and Inference tabs over one job runner and one status bar."""

    def __init__(self, *, reopen_last_session: bool = False) -> None:
        super().__init__()
        self.setWindowTitle("imgcls-desktop")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.settings = AppSettings()
        self.project = load_project()
        self.jobs = JobRunner(self)
        self.job_status = JobStatus(self)
        self.statusBar().addPermanentWidget(self.job_status)
        self.jobs.job_started.connect(self.job_status.track)

        self.banner = NextStepBanner()
        self.dataset_tab = DatasetTab(self.jobs, self)
        self.dataset_tab.status_message.connect(self.statusBar().showMessage)
        self.training_tab = TrainingTab(
            self.jobs, self, known_runs=self.project.recent(ItemKind.RUN)
        )
        self.training_tab.status_message.connect(self.statusBar().showMessage)
        self.inference_tab = InferenceTab(self.jobs, self)
        self.inference_tab.status_message.connect(self.statusBar().showMessage)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.dataset_tab, "Dataset")
        self.tabs.addTab(self.training_tab, "Training")
        self.tabs.addTab(self.inference_tab, "Inference")
        self.tabs.setTabToolTip(0, "Open, check, browse and export a data set (Ctrl+1)")
        self.tabs.setTabToolTip(1, "Train a classifier and watch it learn (Ctrl+2)")
        self.tabs.setTabToolTip(2, "Label images, evaluate and export a model (Ctrl+3)")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._connect_journeys()

        self._close_confirmed = False
        self._welcome = ""
        self.devices: about.Devices | None = None
        self._devices_error = ""
        self.about_box: QMessageBox | None = None
        self._build_menus()
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(_DEFAULT_WIDTH, _DEFAULT_HEIGHT)
        self._fit_on_screen()
        QTimer.singleShot(0, self._load_mxnet)
        if reopen_last_session:
            QTimer.singleShot(0, self.reopen_last_session)

    def _fit_on_screen(self) -> None:
        """Keep the window within its screen (a smaller screen than last time, a laptop)."""
        available = self.screen().availableGeometry()
        width = min(self.width(), available.width())
        height = min(self.height(), available.height())
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
            self.move(available.topLeft())

    def _connect_journeys(self) -> None:
        """Hand each tab's result to the next tab, remember it, and say what comes next."""
        self.dataset_tab.dataset_opened.connect(self._on_dataset_opened)
        self.dataset_tab.dataset_exported.connect(self._on_dataset_exported)
        self.dataset_tab.sample_ready.connect(self._on_sample_ready)
        self.training_tab.settings_suggested.connect(self._on_settings_suggested)
        self.training_tab.training_started.connect(self._on_training_started)
        self.training_tab.run_finished.connect(self._on_run_finished)
        self.inference_tab.model_opened.connect(partial(self._remember, ItemKind.MODEL))
        self.inference_tab.folder_labelled.connect(self._on_folder_labelled)
        self.inference_tab.evaluated.connect(self._on_evaluated)

    @Slot()
    def _load_mxnet(self) -> None:
        """Import MXNet in the background once the window is up, and find the devices.

        Loading its library holds Python's GIL for about 0.1 s: better now, while the user
        looks at the window, than when a job starts and the curves should move.
        """
        job = self.jobs.start(_find_devices, "Loading MXNet")
        job.finished.connect(self._on_devices_found)
        job.failed.connect(self._on_mxnet_failed)

    @Slot(object)
    def _on_devices_found(self, devices: about.Devices) -> None:
        self.devices = devices
        if devices.unused_gpu_note:
            self.statusBar().showMessage(devices.unused_gpu_note)
        self._refresh_about()

    @Slot(str, str)
    def _on_mxnet_failed(self, message: str, _details: str) -> None:
        self._devices_error = f"MXNet could not be loaded: {message}"
        self.statusBar().showMessage(self._devices_error)
        self._refresh_about()

    def _build_menus(self) -> None:
        dataset, training = self.dataset_tab, self.training_tab
        file_menu = self.menuBar().addMenu("&File")
        _action(
            file_menu,
            "Open Data Set &Folder…",
            dataset.choose_folder,
            "Ctrl+O",
            "A folder with one sub-folder of images per class",
        )
        _action(
            file_menu,
            "Open Data Set F&ile…",
            dataset.choose_file,
            "Ctrl+Shift+O",
            "An im2rec .lst, a SageMaker augmented manifest or a .rec file",
        )
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        _action(
            file_menu,
            "&Try the Sample Data Set",
            dataset.generate_sample,
            tooltip="Make a small data set of drawn shapes, ready to train on",
        )
        _action(
            file_menu,
            "&Export RecordIO",
            dataset.export,
            "Ctrl+E",
            "Split the open data set and write .lst, .rec and .idx files for training",
        )
        file_menu.addSeparator()
        _action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        training_menu = self.menuBar().addMenu("&Training")
        _action(
            training_menu,
            "Su&ggest Settings",
            training.suggest_settings,
            "Ctrl+G",
            "Fill the hyperparameters with settings suited to the training data",
        )
        _action(training_menu, "&Start Training", training.start, "Ctrl+T", "Train a new run")
        _action(
            training_menu,
            "S&top Training",
            training.stop,
            "Ctrl+.",
            "Stop after this batch; the run stays resumable",
        )
        _action(
            training_menu,
            "&Resume Training",
            training.resume,
            "Ctrl+R",
            "Continue the selected run from its last finished epoch",
        )
        training_menu.addSeparator()
        _action(
            training_menu,
            "&Preview Augmentation…",
            training.preview_augmentation,
            "Ctrl+Shift+A",
            "What training's augmentation makes of a few training images",
        )

        inference_menu = self.menuBar().addMenu("&Inference")
        _action(
            inference_menu,
            "Open &Model…",
            self.choose_model,
            "Ctrl+M",
            "A run folder, a SageMaker model.tar.gz or an MXNet checkpoint",
        )
        self.recent_models_menu = inference_menu.addMenu("Open Recent Mo&del")
        self.recent_models_menu.aboutToShow.connect(self._fill_recent_models_menu)
        _action(
            inference_menu,
            "&Label a Folder…",
            self.choose_folder_to_label,
            "Ctrl+L",
            "Label every image of a folder with the open model",
        )
        _action(
            inference_menu,
            "&Evaluate on the Run's Validation Images",
            self.evaluate_last_run,
            "Ctrl+Shift+E",
            "Accuracy, confusion matrix and per-class metrics of the model on the images "
            "its run held out",
        )

        view_menu = self.menuBar().addMenu("&View")
        for index, name in enumerate(("&Dataset", "&Training", "&Inference")):
            _action(
                view_menu,
                f"{name} Tab",
                lambda _checked=False, i=index: self.tabs.setCurrentIndex(i),
                f"Ctrl+{index + 1}",
            )
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&About imgcls-desktop", self.show_about)

    @Slot()
    def _fill_recent_menu(self) -> None:
        self._fill_menu(self.recent_menu, ItemKind.DATASET, self.open_dataset, "data sets")

    @Slot()
    def _fill_recent_models_menu(self) -> None:
        self._fill_menu(self.recent_models_menu, ItemKind.MODEL, self.open_model, "models")

    def _fill_menu(
        self, menu: QMenu, kind: ItemKind, open_item: Callable[[str], object], noun: str
    ) -> None:
        menu.clear()
        paths = self.project.recent(kind)
        for path in paths:
            action = QAction(path, menu)
            action.triggered.connect(lambda _checked=False, p=path: open_item(p))
            menu.addAction(action)
        if not paths:
            menu.addAction(f"No recent {noun}").setEnabled(False)

    def _remember(self, kind: ItemKind, path: str) -> None:
        self.project.remember(kind, path)
        if kind is ItemKind.RUN:
            self.training_tab.set_known_runs(self.project.recent(ItemKind.RUN))
        try:
            save_project(self.project)
        except OSError as error:
            self.statusBar().showMessage(f"Could not save the project list: {error}")

    # Journeys ------------------------------------------------------------------------------

    def open_dataset(self, path: str) -> None:
        """Show the Dataset tab and open ``path`` in it."""
        self.tabs.setCurrentWidget(self.dataset_tab)
        self.dataset_tab.open_path(path)

    def open_model(self, path: str) -> None:
        """Show the Inference tab and open the model at ``path`` in it."""
        self.tabs.setCurrentWidget(self.inference_tab)
        self.inference_tab.set_model_path(path)

    @Slot()
    def choose_model(self) -> None:
        """Ask for a model (a run folder or a model file) and open it."""
        self.tabs.setCurrentWidget(self.inference_tab)
        self.inference_tab.model_path.browse()
        if self.inference_tab.model_path.text():
            self.inference_tab.open()

    @Slot()
    def choose_folder_to_label(self) -> None:
        """Ask for a folder of images and label it with the open model."""
        self.tabs.setCurrentWidget(self.inference_tab)
        folder = QFileDialog.getExistingDirectory(
            self,
            "Label the images of the folder",
            self.inference_tab.folder_path.text() or str(Path.home()),
        )
        if folder:
            self.label_folder(folder)

    def label_folder(self, folder: str) -> None:
        """Label the images of ``folder`` in the Inference tab."""
        self.tabs.setCurrentWidget(self.inference_tab)
        self.inference_tab.pages.setCurrentIndex(0)
        self.inference_tab.folder_path.setText(folder)
        self.inference_tab.label()

    @Slot()
    def evaluate_last_run(self) -> None:
        """Evaluate the model of the last run on the images that run held out for validation."""
        run_dir = self.project.last(ItemKind.RUN)
        validation = _validation_records(Path(run_dir)) if run_dir else None
        if run_dir is None or validation is None:
            self.statusBar().showMessage("Train a model first: its validation images are used.")
            return
        self.tabs.setCurrentWidget(self.inference_tab)
        self.inference_tab.pages.setCurrentIndex(2)
        self.inference_tab.eval_path.setText(validation)
        if self.inference_tab.model_path.text() == run_dir and self.inference_tab.predictor:
            self.inference_tab.evaluate()
            return
        job = self.inference_tab.set_model_path(run_dir)
        if job is not None:
            job.finished.connect(lambda _predictor: self.inference_tab.evaluate())

    @Slot()
    def reopen_last_session(self) -> None:
        """Reopen the last data set, training data and model the user worked with."""
        dataset = self.project.last(ItemKind.DATASET)
        if dataset:
            self.dataset_tab.open_path(dataset)
        training_data = self.project.last(ItemKind.TRAINING_DATA)
        if training_data:
            self._reopen_training(*split_training_pair(training_data))
        model = self.project.last(ItemKind.MODEL)
        if model:
            self.inference_tab.set_model_path(model)
        reopened = [
            name
            for name, path in (
                ("data set", dataset),
                ("training data", training_data),
                ("model", model),
            )
            if path
        ]
        if reopened:
            self._welcome = f"Welcome back: your last {_listing(reopened)} are open again. "
            if not dataset:
                self.banner.show_step(self._welcome)

    def _reopen_training(self, train: str, validation: str | None) -> None:
        """The training data again, with the settings of the last run (or suggested ones)."""
        last_run = self.project.last(ItemKind.RUN)
        settings = Path(last_run) / HYPERPARAMETERS_FILE if last_run else None
        reuse = settings is not None and settings.is_file()
        if reuse:
            self.training_tab.load_hyperparameters_from(settings)
        self.training_tab.set_data(train, validation, suggest=not reuse)

    @Slot(str)
    def _on_dataset_opened(self, path: str) -> None:
        self._remember(ItemKind.DATASET, path)
        opened = self.dataset_tab.opened
        usable = len(opened.report.usable_indices) if opened else 0
        welcome, self._welcome = self._welcome, ""
        if self.dataset_tab.is_preparing_sample():
            self.banner.show_step(
                f"<b>Sample data set ready</b>: {usable:,} images of drawn shapes, checked. "
                "Now packing them into RecordIO for training…"
            )
            return
        if welcome:
            self.banner.show_step(f"{welcome}({Path(path).name}: {usable:,} usable images.)")
            return
        self.banner.show_step(
            f"<b>Opened {Path(path).name}</b>: {usable:,} usable images. Next: look "
            "over the classes and Problems, choose the split below, then export RecordIO to "
            "train on it.",
            [
                (
                    "Export RecordIO",
                    "Split and export for training (Ctrl+E)",
                    self.dataset_tab.export,
                )
            ],
        )

    @Slot(str, str)
    def _on_dataset_exported(self, train: str, validation: str) -> None:
        """Hand freshly exported RecordIO to the Training tab unless it is training."""
        if self.training_tab.is_training():
            return
        next_step = (
            "train on them in the Training tab: your settings there are kept (Suggest "
            "Settings proposes new ones)."
            if self.training_tab.form_edited()
            else "the Training tab reads them and suggests settings."
        )
        self.banner.show_step(
            f"<b>Exported</b> {Path(train).name}"
            + (f" and {Path(validation).name}" if validation else "")
            + f". Next: {next_step}",
            [("Go to Training", "Show the Training tab (Ctrl+2)", self._show_training)],
        )
        self.training_tab.set_data(train, validation or None, suggest=True)

    @Slot()
    def _on_sample_ready(self) -> None:
        self._show_training()

    def _show_training(self) -> None:
        self.tabs.setCurrentWidget(self.training_tab)

    @Slot(str)
    def _on_settings_suggested(self, gist: str) -> None:
        summary = self.training_tab.summary
        data = f" for {summary.describe()}" if summary else ""
        self.banner.show_step(
            f"<b>Suggested{data}</b>: {gist}. Next: press Start Training and watch the curves.",
            [("Start Training", "Train a new run with these settings (Ctrl+T)", self._start)],
        )

    def _start(self) -> None:
        self._show_training()
        self.training_tab.start()

    @Slot(str)
    def _on_training_started(self, run_dir: str) -> None:
        self._remember(ItemKind.RUN, run_dir)
        train, validation = self.training_tab.train_path.text(), self.training_tab.val_path.text()
        self._remember(ItemKind.TRAINING_DATA, training_pair(train, validation or None))
        self.statusBar().clearMessage()
        self.banner.show_step(
            f"<b>Training {Path(run_dir).name}</b>: loss and accuracy update as it learns. "
            "Stop keeps the last finished epoch; Resume continues from it."
        )

    @Slot(str)
    def _on_run_finished(self, run_dir: str) -> None:
        self.inference_tab.set_model_path(run_dir)
        result = self.training_tab.last_result
        best = (
            f": best validation accuracy {result.best_val_accuracy:.1%} at epoch "
            f"{result.best_epoch}"
            if result is not None and result.best_val_accuracy is not None
            else ""
        )
        self.banner.show_step(
            f"<b>Model trained</b>{best}. It is open in the Inference tab. Next: label a folder "
            "of new images with it, or see how it does on its validation images.",
            [
                (
                    "Label a Folder…",
                    "Choose a folder of images to label (Ctrl+L)",
                    self.choose_folder_to_label,
                ),
                (
                    "Evaluate",
                    "Confusion matrix and per-class metrics on the validation images",
                    self.evaluate_last_run,
                ),
            ],
        )

    @Slot(object)
    def _on_evaluated(self, report: EvaluationReport) -> None:
        mistakes = len(report.misclassified)
        next_step = (
            "click a cell of the confusion matrix to see its images, surest first, and correct "
            "any wrong labels."
            if mistakes and not report.multi_label
            else "label a folder of new images with it."
        )
        self.banner.show_step(
            f"<b>Accuracy {report.accuracy:.1%}</b> on {report.count:,} images, "
            f"{mistakes:,} wrong. Next: {next_step}"
        )

    @Slot(str, int)
    def _on_folder_labelled(self, folder: str, count: int) -> None:
        self.banner.show_step(
            f"<b>Labelled {count:,} images</b> of {Path(folder).name}. Next: sort or filter the "
            "table, fix wrong labels with Correct Label… and add them to your data set, then "
            "export CSV or JSON Lines, or sort the images into class folders."
        )

    @Slot()
    def show_about(self) -> None:
        """Versions, folders and devices; the devices once MXNet is loaded (never waited for)."""
        if self.about_box is None:
            self.about_box = QMessageBox(self)
            self.about_box.setWindowTitle("About imgcls-desktop")
            self.about_box.setIconPixmap(self.windowIcon().pixmap(64, 64))
            self.about_box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._refresh_about()
        self.about_box.open()

    def _refresh_about(self) -> None:
        if self.about_box is None:
            return
        listed = {**about.versions(), "PySide6": f"{pyside_version} (Qt {qVersion()})"}
        app_version = listed.pop("imgcls-desktop")
        versions = "<br>".join(f"{name} {text}" for name, text in listed.items())
        folders = "<br>".join(
            f"{name}: {html.escape(str(path))}" for name, path in about.folders().items()
        )
        if self.devices is not None:
            devices = "<br>".join(self.devices.names)
            if self.devices.unused_gpu_note:
                devices += f"<br><b>{html.escape(self.devices.unused_gpu_note)}</b>"
        else:
            devices = html.escape(self._devices_error) or "Looking for them while MXNet loads…"
        self.about_box.setText(
            f"<h3>imgcls-desktop {app_version}</h3>"
            "<p>Train and use image classifiers offline, in the formats of SageMaker's "
            "Image Classification algorithm.</p>"
            f"<p>{versions}</p><p><b>Folders</b><br>{folders}</p>"
            f"<p><b>Devices</b><br>{devices}</p>"
        )

    def _ask_to_stop_training(self) -> None:
        ask(
            self,
            "confirmCloseDialog",
            "Training is running",
            "Stop training and quit? The last finished epoch is kept, and the run can be "
            "resumed from the Training tab.",
            yes="Stop and Quit",
            no="Keep Training",
            on_yes=self._stop_training_and_close,
            icon=QMessageBox.Icon.Question,
        )

    @Slot()
    def _stop_training_and_close(self) -> None:
        self._close_confirmed = True
        self.close()

    def path_dropped(self, path: str) -> None:
        """Open what was dropped on the window where it belongs: a model in the Inference
        tab, an image on its One Image page, a folder of images (no class folders) to label
        there, anything else as a data set."""
        if looks_like_model(Path(path)):
            self.open_model(path)
        elif Path(path).suffix.lower() in IMAGE_EXTENSIONS:
            self.tabs.setCurrentWidget(self.inference_tab)
            self.inference_tab.show_image(path)
        elif holds_only_loose_images(Path(path)):
            self.label_folder(path)
        else:
            self.open_dataset(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask before stopping a training run; cancel jobs, wait for them, save geometry."""
        if self.training_tab.is_training() and not self._close_confirmed:
            event.ignore()
            self._ask_to_stop_training()
            return
        self.training_tab.shutdown()
        self.dataset_tab.shutdown()
        self.inference_tab.shutdown()
        self.jobs.shutdown(_CLOSE_TIMEOUT_MS)
        self.settings.set_geometry(self.saveGeometry())
        self.settings.sync()
        super().closeEvent(event)


def _action(
    menu: QMenu,
    text: str,
    slot: Callable[..., object],
    shortcut: str | QKeySequence.StandardKey | None = None,
    tooltip: str = "",
) -> QAction:
    """Add an action (its shortcut shows in the menu) to ``menu``."""
    action = menu.addAction(text)
    action.triggered.connect(lambda _checked=False: slot())
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tooltip:
        action.setToolTip(tooltip)
        action.setStatusTip(tooltip)
    return action


def _validation_records(run_dir: Path) -> str | None:
    """The validation .rec a run trained with, if it still exists."""
    records = validation_records(run_dir)
    return None if records is None else str(records)


def _listing(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
