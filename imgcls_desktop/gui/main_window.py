"""The main window: the tabs, the menus, the status bar with the running job."""

from __future__ import annotations

from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QTimer, Slot, qVersion
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QTabWidget

from imgcls_desktop import __version__
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.gui.dataset_tab import DatasetTab
from imgcls_desktop.gui.inference_tab import InferenceTab
from imgcls_desktop.gui.job_status import JobStatus
from imgcls_desktop.gui.settings import AppSettings
from imgcls_desktop.gui.training_tab import TrainingTab
from imgcls_desktop.gui.widgets import DropPathMixin
from imgcls_desktop.gui.workers import JobRunner

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
_CLOSE_TIMEOUT_MS = 10_000


def _import_mxnet(progress: ProgressFn, cancel: CancelFlag) -> None:
    mxnet()


def app_icon() -> QIcon:
    """The application icon (scalable)."""
    return QIcon(str(RESOURCES / "icons" / "imgcls-desktop.svg"))


class MainWindow(DropPathMixin, QMainWindow):
    """Dataset, Training and Inference tabs over one job runner and one status bar."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("imgcls-desktop")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.settings = AppSettings()
        self.jobs = JobRunner(self)
        self.job_status = JobStatus(self)
        self.statusBar().addPermanentWidget(self.job_status)
        self.jobs.job_started.connect(self.job_status.track)

        self.dataset_tab = DatasetTab(self.jobs, self)
        self.dataset_tab.dataset_opened.connect(self._remember_dataset)
        self.dataset_tab.status_message.connect(self.statusBar().showMessage)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.dataset_tab, "Dataset")
        self.training_tab = TrainingTab(self.jobs, self)
        self.training_tab.status_message.connect(self.statusBar().showMessage)
        self.dataset_tab.dataset_exported.connect(self._offer_training_data)
        self.tabs.addTab(self.training_tab, "Training")
        self.inference_tab = InferenceTab(self.jobs, self)
        self.inference_tab.status_message.connect(self.statusBar().showMessage)
        self.training_tab.run_finished.connect(self.inference_tab.set_model_path)
        self.tabs.addTab(self.inference_tab, "Inference")
        self.setCentralWidget(self.tabs)

        self._close_confirmed = False
        self._build_menus()
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 820)
        QTimer.singleShot(0, self._load_mxnet)

    @Slot()
    def _load_mxnet(self) -> None:
        """Import MXNet in the background once the window is up.

        Loading its library holds Python's GIL for about 0.1 s: better now, while the user
        looks at the window, than when a job starts and the curves should move.
        """
        self.jobs.start(_import_mxnet, "Loading MXNet")

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_folder = file_menu.addAction("Open Data Set &Folder…", self.dataset_tab.choose_folder)
        open_folder.setShortcut(QKeySequence("Ctrl+O"))
        open_folder.setToolTip("A folder with one sub-folder of images per class")
        open_file = file_menu.addAction("Open Data Set F&ile…", self.dataset_tab.choose_file)
        open_file.setShortcut(QKeySequence("Ctrl+Shift+O"))
        open_file.setToolTip("An im2rec .lst, a SageMaker augmented manifest or a .rec file")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        sample = file_menu.addAction("&Generate Sample Data Set", self.dataset_tab.generate_sample)
        sample.setToolTip("Make a small data set of drawn shapes to try the app with")
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&About imgcls-desktop", self.show_about)

    @Slot()
    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.settings.recent_paths()
        for path in paths:
            action = QAction(path, self.recent_menu)
            action.triggered.connect(lambda _checked=False, p=path: self.open_dataset(p))
            self.recent_menu.addAction(action)
        if not paths:
            self.recent_menu.addAction("No recent data sets").setEnabled(False)

    def open_dataset(self, path: str) -> None:
        """Show the Dataset tab and open ``path`` in it."""
        self.tabs.setCurrentWidget(self.dataset_tab)
        self.dataset_tab.open_path(path)

    @Slot(str, str)
    def _offer_training_data(self, train: str, validation: str) -> None:
        """Hand freshly exported RecordIO to the Training tab unless it already has data."""
        if not self.training_tab.is_training():
            self.training_tab.set_data(train, validation or None)

    @Slot(str)
    def _remember_dataset(self, path: str) -> None:
        self.settings.add_recent_path(path)

    @Slot()
    def show_about(self) -> None:
        """Versions of the app, MXNet and Qt, and the devices MXNet sees."""
        from imgcls_desktop.core.devices import describe_devices

        devices = "<br>".join(describe_devices())
        QMessageBox.about(
            self,
            "About imgcls-desktop",
            f"<h3>imgcls-desktop {__version__}</h3>"
            "<p>Train and use image classifiers offline, in the formats of SageMaker's "
            "Image Classification algorithm.</p>"
            f"<p>MXNet {mxnet().__version__}<br>Qt {qVersion()} (PySide6 {pyside_version})</p>"
            f"<p><b>Devices</b><br>{devices}</p>",
        )

    def _ask_to_stop_training(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Training is running",
            "Stop training and quit? The last finished epoch is kept, and the run can be "
            "resumed from the Training tab.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("confirmCloseDialog")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.Yes).setText("Stop and Quit")
        box.button(QMessageBox.StandardButton.No).setText("Keep Training")
        box.accepted.connect(self._stop_training_and_close)
        box.open()

    @Slot()
    def _stop_training_and_close(self) -> None:
        self._close_confirmed = True
        self.close()

    def path_dropped(self, path: str) -> None:
        """Open a folder or file dropped on the window as a data set."""
        self.open_dataset(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask before stopping a training run; cancel jobs, wait for them, save geometry."""
        if self.training_tab.is_training() and not self._close_confirmed:
            event.ignore()
            self._ask_to_stop_training()
            return
        self.training_tab.shutdown()
        self.dataset_tab.shutdown()
        self.jobs.shutdown(_CLOSE_TIMEOUT_MS)
        self.settings.set_geometry(self.saveGeometry())
        self.settings.sync()
        super().closeEvent(event)
