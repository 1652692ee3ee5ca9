"""The Training tab: pick data, set SageMaker's hyperparameters, train, watch, stop, resume."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.app_state import AppState, Part
from imgcls_desktop.core.hyperparams import (
    HyperparameterError,
    HyperParameters,
    load_hyperparameters,
    save_hyperparameters,
)
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn
from imgcls_desktop.core.paths import data_dir
from imgcls_desktop.core.project import ItemKind
from imgcls_desktop.core.training.callbacks import format_epoch_line
from imgcls_desktop.core.training.lock import LockOwner, busy_reason, lock_owner
from imgcls_desktop.core.training.loop import TrainingJob, TrainingResult, train
from imgcls_desktop.core.training.run import (
    HYPERPARAMETERS_FILE,
    FoundRun,
    RunError,
    find_runs,
    is_run_folder,
    read_metrics,
    read_run,
)
from imgcls_desktop.core.training.suggest import (
    DataSummary,
    describe_hyperparameters,
    start_warnings,
    suggest_hyperparameters,
    summarize_training_data,
)
from imgcls_desktop.gui.augmentation_preview import AugmentationPreviewDialog
from imgcls_desktop.gui.dialogs import ask, show_error
from imgcls_desktop.gui.hyperparam_form import HyperparameterForm
from imgcls_desktop.gui.path_field import PathField, PathKind
from imgcls_desktop.gui.training_bridge import MetricsBridge
from imgcls_desktop.gui.training_plots import TrainingPlots
from imgcls_desktop.gui.widgets import read_only_table
from imgcls_desktop.gui.workers import JobHandle, JobRunner

DATA_FILTER = "Data sets (*.rec *.lst *.jsonl *.manifest *.json);;All files (*)"
JSON_FILTER = "Hyperparameters (*.json)"
_INSPECT_DELAY_MS = 400


def run_training(
    job: TrainingJob, progress: ProgressFn, cancel: CancelFlag, emit: Any
) -> TrainingResult:
    """Train in a worker, forwarding every event through ``emit`` (a metrics signal)."""
    bridge = MetricsBridge(emit, progress)
    return train(job, callbacks=[bridge], cancel=cancel, progress=progress)


def inspect_data(path: str, progress: ProgressFn, cancel: CancelFlag) -> DataSummary:
    """Read the classes, count and image size of a training source (in a worker)."""
    return summarize_training_data(Path(path))


# Where a runs-table item keeps why its run is damaged (None for a readable run).
_DAMAGE_ROLE = Qt.ItemDataRole.UserRole + 1


def default_runs_folder() -> Path:
    """Where new runs go unless the user picks a folder."""
    return data_dir() / "runs"


class TrainingTab(QWidget):
    """Data, run settings and hyperparameters on the left; progress and curves on the right."""

    run_finished = Signal(object)
    training_started = Signal(object)
    settings_suggested = Signal(str)
    data_read = Signal(object)
    """The :class:`DataSummary` of the training data, each time it has been read."""
    status_message = Signal(str)

    def __init__(
        self, jobs: JobRunner, state: AppState | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._state = state or AppState(save=None)
        known_runs = self._state.recent(ItemKind.RUN)
        self._jobs = jobs
        self._training: JobHandle | None = None
        self._inspecting: JobHandle | None = None
        self._devices_filled = False
        self.summary: DataSummary | None = None
        self.last_result: TrainingResult | None = None
        self._epochs = 0
        self._batches_per_epoch = 0
        self._class_names: list[str] = []
        self._eta = ""
        self._launched_at = 0.0
        self._known_runs = [Path(run) for run in known_runs]
        self._suggest_when_inspected = False

        self.train_path = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Training data",
            placeholder="A .rec, a .lst, a manifest or a class folder",
            file_filter=DATA_FILTER,
            tooltip="The training channel: a RecordIO .rec (as the "
            "Dataset tab exports), a .lst, a manifest or a folder",
        )
        self.val_path = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Validation data",
            placeholder="Optional: 20% of the training data otherwise",
            file_filter=DATA_FILTER,
            tooltip="The validation channel; left empty, 20% of the "
            "training data is held out (stratified)",
        )
        self.data_summary = QLabel("No training data chosen.")
        self.data_summary.setWordWrap(True)
        self.suggest_button = QPushButton("Suggest Settings")
        self.suggest_button.setToolTip(
            "Fill the form with settings that suit this data and this computer"
        )
        self.suggest_button.setEnabled(False)
        self.suggest_button.clicked.connect(self.suggest_settings)
        self.run_folder = PathField(
            PathKind.FOLDER,
            caption="Run folder",
            placeholder="A new folder under the app's runs folder",
            tooltip="Where the model, checkpoints and metrics go (SageMaker's model layout)",
        )
        self.device = QComboBox()
        self.device.setToolTip("Where to train: the CPU, or a GPU MXNet can see")
        self.device.addItem("Automatic (a GPU if there is one)", None)
        self.pretrained = PathField(
            PathKind.OPEN_FILE,
            caption="Pretrained weights",
            placeholder="For use_pretrained_model=1: MXNet's model cache",
            file_filter="MXNet parameters (*.params)",
            tooltip="ImageNet weights (gluon model-zoo resnetNN_v1 "
            ".params) used when use_pretrained_model is 1; the app "
            "never downloads",
        )
        self.base_model = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Start from model",
            placeholder="Optional: an earlier run or model.tar.gz",
            file_filter="Models (*.tar.gz);;All files (*)",
            tooltip="Incremental training: start from this model's "
            "weights (same depth, image shape and classes)",
        )
        self.form = HyperparameterForm()
        self.form.validity_changed.connect(self._update_buttons)
        self._applied_values = self.form.raw_values()
        load_button = QPushButton("Load…")
        load_button.setToolTip("Load a hyperparameters JSON (SageMaker's string form works)")
        load_button.clicked.connect(self.load_hyperparameters_file)
        save_button = QPushButton("Save…")
        save_button.setToolTip("Save the hyperparameters in SageMaker's string form")
        save_button.clicked.connect(self.save_hyperparameters_file)
        preview_button = QPushButton("Preview Augmentation…")
        preview_button.setToolTip(
            "See what training's augmentation makes of a few training images (Ctrl+Shift+A)"
        )
        preview_button.clicked.connect(self.preview_augmentation)
        self._augmentation_preview: AugmentationPreviewDialog | None = None
        self.start_button = QPushButton("Start Training")
        self.start_button.setToolTip("Prepare the data and train a new run (Ctrl+T)")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            "Stop after this batch; the last finished epoch is kept and the run can be resumed"
        )
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip(_RESUME_TIP)
        self.resume_button.clicked.connect(self.resume)

        data_box = QGroupBox("Data")
        data_form = QFormLayout(data_box)
        data_form.addRow("Training", self.train_path)
        data_form.addRow("Validation", self.val_path)
        summary_row = QHBoxLayout()
        summary_row.addWidget(self.data_summary, 1)
        summary_row.addWidget(self.suggest_button)
        data_form.addRow(summary_row)
        run_box = QGroupBox("Run")
        run_form = QFormLayout(run_box)
        run_form.addRow("Run folder", self.run_folder)
        run_form.addRow("Device", self.device)
        run_form.addRow("Pretrained", self.pretrained)
        run_form.addRow("Start from", self.base_model)
        hp_box = QGroupBox("Hyperparameters")
        hp_layout = QVBoxLayout(hp_box)
        hp_layout.addWidget(self.form, 1)
        file_row = QHBoxLayout()
        file_row.addWidget(preview_button)
        file_row.addStretch(1)
        file_row.addWidget(load_button)
        file_row.addWidget(save_button)
        hp_layout.addLayout(file_row)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button):
            button.setMinimumHeight(32)
            buttons.addWidget(button)
        setup = QWidget()
        setup_layout = QVBoxLayout(setup)
        setup_layout.setContentsMargins(0, 0, 0, 0)
        setup_layout.addWidget(data_box)
        setup_layout.addWidget(run_box)
        setup_layout.addWidget(hp_box, 1)
        setup_layout.addLayout(buttons)

        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("Epoch: not started")
        self.epoch_bar.setValue(0)
        self.epoch_bar.setToolTip("Progress within the current epoch")
        self.run_bar = QProgressBar()
        self.run_bar.setFormat("Run: not started")
        self.run_bar.setValue(0)
        self.run_bar.setToolTip("Epochs finished out of the run's epochs")
        self.speed = QLabel()
        self.speed.setToolTip("Training speed and the estimated time left")
        self.plots = TrainingPlots()
        self.per_class = read_only_table(
            ["Class", "Precision", "Recall"],
            "Validation precision and recall of each class, last epoch",
        )
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setToolTip("One line per epoch, in SageMaker's style")
        self.runs = read_only_table(
            ["Run", "Status", "Best val. accuracy", "Epochs", "Started"],
            "Runs in the runs folder; select one to see its curves or resume it",
            selectable=True,
        )
        self.runs.itemSelectionChanged.connect(self._show_selected_run)
        self.runs.itemSelectionChanged.connect(self._update_buttons)
        details = QTabWidget()
        details.addTab(self.per_class, "Per class")
        details.addTab(self.log, "Log")
        details.addTab(self.runs, "Runs")
        self.details = details
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.epoch_bar, 1)
        progress_row.addWidget(self.run_bar, 1)
        progress_row.addWidget(self.speed)
        monitor_split = QSplitter(Qt.Orientation.Vertical)
        monitor_split.addWidget(self.plots)
        monitor_split.addWidget(details)
        monitor_split.setSizes([520, 220])
        monitor = QWidget()
        monitor_layout = QVBoxLayout(monitor)
        monitor_layout.setContentsMargins(0, 0, 0, 0)
        monitor_layout.addLayout(progress_row)
        monitor_layout.addWidget(monitor_split, 1)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(setup)
        body.addWidget(monitor)
        body.setStretchFactor(1, 1)
        body.setSizes([470, 810])
        layout = QVBoxLayout(self)
        layout.addWidget(body)

        self._inspect_timer = QTimer(self)
        self._inspect_timer.setSingleShot(True)
        self._inspect_timer.setInterval(_INSPECT_DELAY_MS)
        self._inspect_timer.timeout.connect(self.inspect_training_data)
        self.train_path.changed.connect(self._inspect_timer.start)
        self.run_folder.changed.connect(self._update_buttons)
        self._update_buttons()
        self.refresh_runs()
        self._state.subscribe(Part.TRAINING_DATA, self._follow_training_data)
        self._state.subscribe(Part.RUN, self._follow_run)

    def _follow_training_data(self) -> None:
        sources = self._state.training_data
        if sources is not None and sources.summary is None:
            validation = str(sources.validation) if sources.validation else None
            self.set_data(str(sources.train), validation, suggest=True)

    def _follow_run(self) -> None:
        run = self._state.run
        if run is None or run.training:
            return
        self.set_known_runs(self._state.recent(ItemKind.RUN))
        for row in range(self.runs.rowCount()):
            if self.runs.item(row, 0).data(Qt.ItemDataRole.UserRole) == str(run.path):
                self.runs.selectRow(row)

    # Set-up -------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        """List the runs again (another process may have started or ended one) and, the first
        time the tab is shown, the devices (it imports MXNet)."""
        super().showEvent(event)
        self.refresh_runs()
        if not self._devices_filled:
            self._devices_filled = True
            QTimer.singleShot(0, self._fill_devices)

    def _fill_devices(self) -> None:
        from imgcls_desktop.core.devices import gpu_count

        self.device.addItem("CPU", "cpu")
        gpus = gpu_count()
        for index in range(gpus):
            self.device.addItem(f"GPU {index}", f"gpu:{index}")
        if gpus > 1:
            self.device.addItem(f"All {gpus} GPUs", "gpu")

    def set_data(self, train: str, validation: str | None = None, *, suggest: bool = False) -> None:
        """Use these training (and validation) sources, e.g. just exported by the Dataset tab.

        With ``suggest``, settings suited to the data fill the form once it has been read,
        unless the user has edited the form.
        """
        self._suggest_when_inspected = suggest
        self.val_path.setText(validation or "")
        if self.train_path.text() == train:
            self._inspect_timer.start()  # the same path, new contents: read it again
        self.train_path.setText(train)

    @Slot()
    def inspect_training_data(self) -> JobHandle | None:
        """Read the training source's classes and sizes in a worker, to check the settings."""
        path = self.train_path.text()
        if not path or self._inspecting is not None:
            return None
        self.data_summary.setText("Reading the data set…")
        job = self._jobs.start(partial(inspect_data, path), "Reading the training data")
        self._inspecting = job
        job.finished.connect(self._on_inspected)
        job.failed.connect(lambda message, _details: self._on_inspect_failed(message))
        job.done.connect(self._inspect_done)
        return job

    def _on_inspected(self, summary: DataSummary) -> None:
        if str(summary.path) != self.train_path.text():
            self._inspect_timer.start()  # the path changed meanwhile: read the new one
            return
        self.summary = summary
        self._state.set_training_summary(summary)
        self.data_summary.setText(summary.describe())
        self.form.set_data_facts(summary.facts())
        self.suggest_button.setEnabled(True)
        self._suggest_if_wanted()
        self.data_read.emit(summary)

    def _suggest_if_wanted(self) -> None:
        if self._suggest_when_inspected and not self.form_edited():
            self.suggest_settings()
        self._suggest_when_inspected = False

    def form_edited(self) -> bool:
        """True when the user changed the form since the app last filled it."""
        return self.form.raw_values() != self._applied_values

    def _fill_form(self, hp: HyperParameters) -> None:
        self.form.set_hyperparameters(hp)
        self._applied_values = self.form.raw_values()

    def _on_inspect_failed(self, message: str) -> None:
        self.summary = None
        self.data_summary.setText(f"<span style='color:#b00020'>{message}</span>")
        self.form.set_data_facts(None)
        self.suggest_button.setEnabled(False)

    def _inspect_done(self) -> None:
        self._inspecting = None

    @Slot()
    def suggest_settings(self) -> None:
        """Fill the form with settings suited to the data and the device."""
        if self.summary is None:
            return
        gpu = str(self.device.currentData() or "").startswith("gpu")
        current = self.form.raw_values()
        advice = suggest_hyperparameters(
            self.summary, gpu=gpu, all_for_training=bool(self.val_path.text())
        )
        suggested = HyperParameters.from_mapping({**current, **advice})
        self._fill_form(suggested)
        gist = describe_hyperparameters(suggested)
        self.status_message.emit(f"Suggested for this data: {gist}. Review them, then Start.")
        self.settings_suggested.emit(gist)

    @Slot()
    def preview_augmentation(self) -> JobHandle | None:
        """Open the augmentation preview for the training data and the form's settings."""
        try:
            hp = self.form.hyperparameters()
        except HyperparameterError as error:
            show_error(self, "Cannot preview the augmentation", str(error))
            return None
        if self._augmentation_preview is None:
            self._augmentation_preview = AugmentationPreviewDialog(self._jobs, self)
        return self._augmentation_preview.show_preview(self.train_path.text(), hp)

    @Slot()
    def load_hyperparameters_file(self) -> None:
        """Load a hyperparameters JSON into the form."""
        path, _ = QFileDialog.getOpenFileName(self, "Load hyperparameters", "", JSON_FILTER)
        if path:
            self.load_hyperparameters_from(Path(path))

    def load_hyperparameters_from(self, path: Path) -> None:
        """Load ``path`` (SageMaker's string form or native JSON) into the form."""
        try:
            self.form.set_hyperparameters(load_hyperparameters(path))
        except HyperparameterError as error:
            show_error(self, "Cannot load the hyperparameters", str(error))

    @Slot()
    def save_hyperparameters_file(self) -> None:
        """Save the form in SageMaker's string form."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Save hyperparameters", "hyperparameters.json", JSON_FILTER
        )
        if path:
            try:
                save_hyperparameters(Path(path), self.form.hyperparameters())
            except (HyperparameterError, OSError) as error:
                show_error(self, "Cannot save the hyperparameters", str(error))

    # Training -----------------------------------------------------------------------------

    def is_training(self) -> bool:
        """True while a run is in progress."""
        return self._training is not None

    @Slot()
    def start(self) -> JobHandle | None:
        """Start a new run with the form's settings.

        Settings that may train badly (e.g. images smaller than image_shape) are listed in a
        question first; the run starts only if the user confirms (then None is returned).
        """
        try:
            warnings = self._start_warnings()
        except (HyperparameterError, ValueError) as error:
            show_error(self, "Cannot start training", str(error))
            return None
        if warnings:
            self._confirm_start(warnings)
            return None
        return self.start_anyway()

    @Slot()
    def start_anyway(self) -> JobHandle | None:
        """Start a new run with the form's settings, without asking about warnings."""
        try:
            job = self._new_job()
        except (HyperparameterError, ValueError) as error:
            show_error(self, "Cannot start training", str(error))
            return None
        self.plots.clear()
        self.log.clear()
        return self._launch(job, f"Training {job.output.name}")

    def _start_warnings(self) -> list[str]:
        hp = self.form.hyperparameters()
        return [] if self.summary is None else start_warnings(self.summary, hp)

    def _confirm_start(self, warnings: list[str]) -> None:
        ask(
            self,
            "confirmStartDialog",
            "These settings may not train well",
            "\n\n".join(warnings) + "\n\nStart training anyway?",
            yes="Start Anyway",
            no="Change Settings",
            on_yes=self.start_anyway,
        )

    @Slot()
    def resume(self) -> JobHandle | None:
        """Resume the selected run, or the one in the run folder field."""
        run_dir = self._run_to_resume()
        if run_dir is None or not is_run_folder(run_dir):
            show_error(
                self,
                "Nothing to resume",
                "Choose a run folder (or select a run under Runs) that holds a run.",
            )
            return None
        busy = busy_reason(run_dir)
        if busy is not None:
            show_error(self, "This run is being trained", busy)
            self._update_buttons()
            return None
        try:
            info = read_run(run_dir)
            saved = load_hyperparameters(run_dir / HYPERPARAMETERS_FILE)
            wanted = self.form.hyperparameters().epochs if self.form.is_valid() else 0
            hp = saved.replace(epochs=max(saved.epochs, wanted))
        except (RunError, HyperparameterError) as error:
            show_error(self, "Cannot resume this run", str(error))
            return None
        job = TrainingJob(
            hyperparameters=hp,
            train=Path(info.train),
            output=run_dir,
            validation=Path(info.validation) if info.validation else None,
            devices=info.devices,
            resume=True,
            seed=info.seed,
        )
        self.run_folder.setText(str(run_dir))
        self._fill_form(hp)
        return self._launch(job, f"Resuming {run_dir.name}")

    @Slot()
    def stop(self) -> None:
        """Stop the run after the current batch (resumable)."""
        if self._training is not None:
            self._training.cancel()
            self.stop_button.setEnabled(False)
            self._append_log("Stopping after this batch…")

    def _new_job(self) -> TrainingJob:
        if not self.train_path.text():
            raise ValueError("Choose the training data first (a .rec, .lst, manifest or folder).")
        hp = self.form.hyperparameters()
        if self.summary is not None:
            hp.validate(self.summary.facts())
        folder = self.run_folder.text()
        output = (
            Path(folder)
            if folder
            else (default_runs_folder() / datetime.now().strftime("run-%Y%m%d-%H%M%S"))
        )
        if is_run_folder(output):
            raise ValueError(f"{output} already holds a run: Resume it, or choose a new folder.")
        self.run_folder.setText(str(output))
        return TrainingJob(
            hyperparameters=hp,
            train=Path(self.train_path.text()),
            validation=Path(self.val_path.text()) if self.val_path.text() else None,
            output=output,
            devices=self.device.currentData(),
            base_model=Path(self.base_model.text()) if self.base_model.text() else None,
            pretrained=Path(self.pretrained.text()) if self.pretrained.text() else None,
        )

    def _launch(self, job: TrainingJob, title: str) -> JobHandle | None:
        if self._training is not None:
            return None
        handle = self._jobs.start(partial(run_training, job), title, with_metrics=True)
        self._training = handle
        self._launched_at = time.monotonic()
        handle.metrics.connect(self._on_metrics)
        handle.finished.connect(self._on_finished)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(lambda: self._append_log("Cancelled while preparing the data."))
        handle.done.connect(self._on_done)
        self._update_buttons()
        self.details.setCurrentWidget(self.log)
        self._append_log(f"{title}: preparing the data…")
        self._state.run_started(Path(job.output))
        self.training_started.emit(Path(job.output))
        return handle

    def _on_metrics(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "begin":
            self._on_begin(event)
        elif kind == "batch":
            self._on_batch(event)
        elif kind == "epoch":
            self._on_epoch(event)
        elif kind == "checkpoint":
            self._append_log(f"Saved {Path(event['path']).name}")

    def _on_begin(self, event: dict[str, Any]) -> None:
        self._epochs = int(event["epochs"])
        self._batches_per_epoch = max(1, int(event["batches_per_epoch"]))
        self._class_names = list(event["class_names"])
        self.plots.show_history(event["history"])
        self.plots.set_epoch_range(self._epochs)
        self.run_bar.setRange(0, self._epochs)
        self.run_bar.setValue(int(event["start_epoch"]) - 1)
        self.run_bar.setFormat(f"Epoch %v of {self._epochs}")
        for warning in event["warnings"]:
            self._append_log(f"Warning: {warning}")
        self._append_log(
            f"Training {len(self._class_names)} classes, "
            f"{self._batches_per_epoch} batches per epoch, in {event['run_dir']}"
        )

    def _on_batch(self, event: dict[str, Any]) -> None:
        epoch, batch = int(event["epoch"]), int(event["batch"])
        self.plots.add_batch(epoch - 1 + batch / self._batches_per_epoch, event)
        self.epoch_bar.setRange(0, self._batches_per_epoch)
        self.epoch_bar.setValue(batch)
        self.epoch_bar.setFormat(f"Epoch {epoch}: batch %v of %m")
        if "images_per_sec" in event:
            self._show_speed(float(event["images_per_sec"]))

    def _on_epoch(self, event: dict[str, Any]) -> None:
        epoch = int(event["epoch"])
        self.plots.add_epoch(epoch, event)
        self.run_bar.setValue(epoch)
        self._append_log(format_epoch_line(epoch, event))
        eta = event.get("eta_seconds")
        self._eta = _duration(eta) if isinstance(eta, (int, float)) and eta > 0 else ""
        self._show_speed(float(event.get("images_per_sec", 0.0)))
        self._show_per_class(
            event.get("val_precision_per_class") or [], event.get("val_recall_per_class") or []
        )

    def _show_speed(self, images_per_second: float) -> None:
        left = f" · {self._eta} left" if self._eta else ""
        self.speed.setText(f"{images_per_second:,.0f} images/s{left}")

    def _show_per_class(self, precision: list[float], recall: list[float]) -> None:
        self.per_class.setRowCount(len(self._class_names))
        for row, name in enumerate(self._class_names):
            values = (
                name,
                f"{precision[row]:.3f}" if row < len(precision) else "",
                f"{recall[row]:.3f}" if row < len(recall) else "",
            )
            for column, text in enumerate(values):
                self.per_class.setItem(row, column, QTableWidgetItem(text))

    def _on_finished(self, result: TrainingResult) -> None:
        self.last_result = result
        best = (
            ""
            if result.best_val_accuracy is None
            else f"; best validation accuracy {result.best_val_accuracy:.3f} "
            f"at epoch {result.best_epoch}"
        )
        status = getattr(result.status, "value", result.status)
        message = f"Run {status} after epoch {result.last_epoch}{best}."
        self.speed.setText(
            f"{status.replace('_', ' ').capitalize()} in "
            f"{_duration(time.monotonic() - self._launched_at)}"
        )
        if result.stop_reason:
            message += f" ({result.stop_reason})"
        self._append_log(message)
        self.status_message.emit(message)
        self.refresh_runs()
        self._state.run_ended(result)
        self.run_finished.emit(result)

    def _on_failed(self, message: str, details: str) -> None:
        self._append_log(f"Failed: {message}")
        show_error(self, "Training failed", message, details)
        self.refresh_runs()

    def _on_done(self) -> None:
        self._training = None
        if self._state.is_training:  # failed or cancelled: no result
            self._state.run_ended(None)
        self.plots.redraw()
        self._update_buttons()

    def _append_log(self, line: str) -> None:
        self.log.appendPlainText(line)

    def _run_to_resume(self) -> Path | None:
        """The selected run, else the one in the run folder field."""
        folder = self.run_folder.text()
        return self._selected_run() or (Path(folder) if folder else None)

    def _update_buttons(self, *_args: object) -> None:
        training = self._training is not None
        self.start_button.setEnabled(not training and self.form.is_valid())
        self.stop_button.setEnabled(training)
        run_dir = self._run_to_resume()
        busy = None if training or run_dir is None else busy_reason(run_dir)
        damaged = self._selected_run_is_damaged()
        self.resume_button.setEnabled(not training and busy is None and not damaged)
        self.resume_button.setToolTip(busy or _RESUME_TIP)

    # Run history -------------------------------------------------------------------------

    def runs_folder(self) -> Path:
        """The folder whose runs are listed: the run folder's parent, or the default one."""
        folder = self.run_folder.text()
        return Path(folder).parent if folder else default_runs_folder()

    def set_known_runs(self, runs: Sequence[str]) -> None:
        """List these runs too (runs the user trained elsewhere, e.g. with ``imgcls``)."""
        self._known_runs = [Path(run) for run in runs]
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """List the runs in :meth:`runs_folder` and the known runs, newest first; the selected
        run stays selected."""
        selected = self._selected_run()
        runs = find_runs(self.runs_folder(), also=self._known_runs)
        self.runs.clearSelection()
        self.runs.setRowCount(len(runs))
        for row, run in enumerate(runs):
            tip = str(run.path) if run.damaged is None else f"{run.path}\n{run.damaged}"
            for column, text in enumerate(_run_cells(run, lock_owner(run.path))):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(run.path))
                item.setData(_DAMAGE_ROLE, run.damaged)
                item.setToolTip(tip)
                self.runs.setItem(row, column, item)
            if run.path == selected:
                self.runs.selectRow(row)
        for column in range(1, self.runs.columnCount()):  # a few rows: fit their values
            self.runs.resizeColumnToContents(column)

    def _selected_run(self) -> Path | None:
        items = self.runs.selectedItems()
        return Path(items[0].data(Qt.ItemDataRole.UserRole)) if items else None

    def _selected_run_is_damaged(self) -> bool:
        items = self.runs.selectedItems()
        return bool(items) and items[0].data(_DAMAGE_ROLE) is not None

    def _show_selected_run(self) -> None:
        run_dir = self._selected_run()
        if run_dir is None or self._training is not None:
            return
        self.plots.show_history(read_metrics(run_dir))

    def shutdown(self) -> None:
        """Stop a run in progress (the window is closing); it stays resumable."""
        self.stop()


_RESUME_TIP = (
    "Continue the run in the run folder (or the one selected under Runs) from its last "
    "finished epoch"
)


def _run_cells(run: FoundRun, owner: LockOwner | None) -> tuple[str, ...]:
    """A run's row in the history table; a damaged run shows only its name and state, a run
    another process trains says which."""
    info = run.info
    if info is None:
        return (run.path.name, "damaged", "", "", "")
    best = "" if info.best_val_accuracy is None else f"{info.best_val_accuracy:.3f}"
    return (
        run.path.name,
        info.status if owner is None else f"training: process {owner.pid} on {owner.host}",
        best,
        f"{info.last_completed_epoch} of {info.epochs}",
        info.created[:16].replace("T", " "),
    )


def _duration(total_seconds: float) -> str:
    seconds = round(total_seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
