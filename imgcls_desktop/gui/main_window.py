"""The main window: the tabs, the menus, the status bar with the running job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core import about
from imgcls_desktop.core.app_state import AppState
from imgcls_desktop.core.dataset.folder import holds_only_loose_images
from imgcls_desktop.core.dataset.images import IMAGE_EXTENSIONS
from imgcls_desktop.core.models import looks_like_model
from imgcls_desktop.core.project import (
    ItemKind,
    load_project,
    split_training_pair,
)
from imgcls_desktop.core.resources import icon_path
from imgcls_desktop.core.training.run import HYPERPARAMETERS_FILE
from imgcls_desktop.gui.dataset import DatasetTab
from imgcls_desktop.gui.dialogs import ask
from imgcls_desktop.gui.help import AboutBox
from imgcls_desktop.gui.inference import InferenceTab
from imgcls_desktop.gui.job_status import JobStatus
from imgcls_desktop.gui.journeys import Journeys
from imgcls_desktop.gui.menus import build_menus
from imgcls_desktop.gui.next_step import NextStepBanner
from imgcls_desktop.gui.settings import AppSettings
from imgcls_desktop.gui.training import TrainingTab
from imgcls_desktop.gui.training.sagemaker_job_dialog import SageMakerJobDialog
from imgcls_desktop.gui.widgets import DropPathMixin
from imgcls_desktop.gui.workers import JobRunner

_CLOSE_TIMEOUT_MS = 10_000
_DEFAULT_WIDTH, _DEFAULT_HEIGHT = 1280, 820


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
        self.state = AppState(load_project(), on_save_error=self.statusBar().showMessage)
        self.jobs = JobRunner(self)
        self.job_status = JobStatus(self)
        self.statusBar().addPermanentWidget(self.job_status)
        self.jobs.job_started.connect(self.job_status.track)

        self.banner = NextStepBanner()
        self.dataset_tab = DatasetTab(self.jobs, self.state, self)
        self.training_tab = TrainingTab(self.jobs, self.state, self)
        self.inference_tab = InferenceTab(self.jobs, self.state, self)
        for tab in (self.dataset_tab, self.training_tab, self.inference_tab):
            tab.status_message.connect(self.statusBar().showMessage)
        # The suggestion's message would stay beside the training job's progress, cut off.
        self.training_tab.training_started.connect(lambda _run: self.statusBar().clearMessage())
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
        self.journeys = Journeys(
            self.banner,
            self.tabs,
            self.state,
            self.dataset_tab,
            self.training_tab,
            self.inference_tab,
        )

        self._close_confirmed = False
        self.devices: about.Devices | None = None
        self._devices_error = ""
        self.about_box: AboutBox | None = None
        build_menus(self)
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

    @Slot()
    def _load_mxnet(self) -> None:
        """Import MXNet in the background once the window is up, and find the devices.

        Loading its library holds Python's GIL for about 0.1 s: better now, while the user
        looks at the window, than when a job starts and the curves should move.
        """
        job = self.jobs.start(lambda _job: about.find_devices(), "Loading MXNet")
        job.succeeded.connect(self._on_devices_found)
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

    @Slot()
    def fill_recent_datasets_menu(self) -> None:
        """List the recent data sets in File › Open Recent."""
        self._fill_menu(self.recent_menu, ItemKind.DATASET, self.open_dataset, "data sets")

    @Slot()
    def fill_recent_models_menu(self) -> None:
        """List the recent models in Inference › Open Recent Model."""
        self._fill_menu(self.recent_models_menu, ItemKind.MODEL, self.open_model, "models")

    def _fill_menu(
        self, menu: QMenu, kind: ItemKind, open_item: Callable[[str], object], noun: str
    ) -> None:
        menu.clear()
        paths = self.state.recent(kind)
        for path in paths:
            action = QAction(path, menu)
            action.triggered.connect(lambda _checked=False, p=path: open_item(p))
            menu.addAction(action)
        if not paths:
            menu.addAction(f"No recent {noun}").setEnabled(False)

    # What the menus and drops open -----------------------------------------------------------

    def open_dataset(self, path: str) -> None:
        """Show the Dataset tab and open ``path`` in it."""
        self.tabs.setCurrentWidget(self.dataset_tab)
        self.dataset_tab.open_path(path)

    def open_model(self, path: str) -> None:
        """Show the Inference tab and open the model at ``path`` in it."""
        self.tabs.setCurrentWidget(self.inference_tab)
        self.inference_tab.open_model(path)

    @Slot()
    def choose_model(self) -> None:
        """Ask for a model (a run folder or a model file) and open it."""
        self.tabs.setCurrentWidget(self.inference_tab)
        self.inference_tab.choose_model()

    @Slot()
    def choose_folder_to_label(self) -> None:
        """Ask for a folder of images and label it with the open model."""
        self.tabs.setCurrentWidget(self.inference_tab)
        self.inference_tab.choose_folder_to_label()

    def label_folder(self, folder: str) -> None:
        """Label the images of ``folder`` in the Inference tab."""
        self.tabs.setCurrentWidget(self.inference_tab)
        self.inference_tab.label_folder(folder)

    @Slot()
    def evaluate_model(self) -> None:
        """Evaluate the open model on its run's validation images; with no model open, the
        model of the run in focus (or the last run)."""
        if self.state.model is not None:
            self.journeys.evaluate_model()
            return
        run = self.state.run.path if self.state.run else None
        last = run or self.state.project.last(ItemKind.RUN)
        if last is None:
            self.statusBar().showMessage("Train a model first: its validation images are used.")
            return
        self.journeys.evaluate_model(Path(last))

    @Slot()
    def export_sagemaker_job(self) -> SageMakerJobDialog | None:
        """Offer the run in focus as a SageMaker training job file."""
        self.tabs.setCurrentWidget(self.training_tab)
        if self.state.run is None:
            self.statusBar().showMessage(
                "Train or select a run first: the job is written for the run in focus."
            )
            return None
        dialog = SageMakerJobDialog(self.state.run.path, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    @Slot()
    def reopen_last_session(self) -> None:
        """Reopen the last data set, training data, run and model the user worked with."""
        project = self.state.project
        dataset = project.last(ItemKind.DATASET)
        training_data = project.last(ItemKind.TRAINING_DATA)
        model = project.last(ItemKind.MODEL)
        run = project.last(ItemKind.RUN)
        if run:
            self.state.select_run(Path(run))
        if training_data:
            settings = Path(run) / HYPERPARAMETERS_FILE if run else None
            if settings is not None and settings.is_file():  # the last run's settings again
                self.training_tab.load_hyperparameters_from(settings)
            train, validation = split_training_pair(training_data)
            self.state.set_training_data(Path(train), Path(validation) if validation else None)
        if dataset:
            self.journeys.expect_reopened_dataset(Path(dataset))
            self.dataset_tab.open_path(dataset)
        if model:
            self.inference_tab.open_model(model)
        reopened = [
            name
            for name, path in (
                ("data set", dataset),
                ("training data", training_data),
                ("model", model),
            )
            if path
        ]
        if reopened or run:
            self.journeys.welcome_back(reopened, Path(run) if run else None)

    @Slot()
    def show_about(self) -> None:
        """Versions, folders and devices; the devices once MXNet is loaded (never waited for)."""
        if self.about_box is None:
            self.about_box = AboutBox(self)
        self._refresh_about()
        self.about_box.open()

    def _refresh_about(self) -> None:
        if self.about_box is not None:
            self.about_box.show_devices(self.devices, self._devices_error)

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
        if self.state.is_training and not self._close_confirmed:
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
