"""The Training tab: the set-up on the left, the run in focus on the right.

The tab keeps no copy of what is open: the training data and the run in focus are the app
state's (:class:`~imgcls_desktop.core.app_state.AppState`); the tab shows them, and changes
them through the state's methods. Starting, resuming and summarising a run are the core's
(:class:`~imgcls_desktop.core.training.loop.TrainingJob`, ``TrainingResult.summary``).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from imgcls_desktop.core.app_state import AppState, Part, TrainingSources
from imgcls_desktop.core.distributed.plan import LaunchPlan, LaunchSpecError
from imgcls_desktop.core.hyperparams import HyperparameterError
from imgcls_desktop.core.jobs import JobContext
from imgcls_desktop.core.project import ItemKind
from imgcls_desktop.core.training.callbacks import EventForwarder, TrainingBegan, TrainingEvent
from imgcls_desktop.core.training.loop import TrainingJob, TrainingResult, train
from imgcls_desktop.core.training.run import RunError
from imgcls_desktop.core.training.standing import run_standing
from imgcls_desktop.core.training.suggest import (
    describe_hyperparameters,
    settings_for_data,
    start_warnings,
    suggested_settings,
    summarize_training_data,
    transfer_advice,
)
from imgcls_desktop.core.weights import installed_depths
from imgcls_desktop.gui.dialogs import ask, show_error
from imgcls_desktop.gui.training.augmentation_preview import AugmentationPreviewDialog
from imgcls_desktop.gui.training.processes import ProcessTable, run_distributed_training
from imgcls_desktop.gui.training.run_history import RunHistory
from imgcls_desktop.gui.training.run_monitor import RunMonitor, duration
from imgcls_desktop.gui.training.setup_panel import SetupPanel
from imgcls_desktop.gui.workers import JobHandle, JobRunner, JobSlot, SlotPolicy

_NO_RUN = "No run in focus: select one under Runs to resume it"


def run_training(training: TrainingJob, job: JobContext) -> TrainingResult:
    """Train in a worker, handing every training event to ``job.emit`` (the handle's
    ``event`` signal)."""
    forwarder = EventForwarder(job.emit, job.progress)
    return train(training, callbacks=[forwarder], cancel=job.cancel, progress=job.progress)


class TrainingTab(QWidget):
    """Pick data, set SageMaker's hyperparameters, train, watch, stop, resume."""

    status_message = Signal(str)
    settings_suggested = Signal(str)
    """The gist of the settings just suggested."""
    training_started = Signal(object)
    """The run folder (a Path) of the run that started or resumed."""
    run_finished = Signal(object)
    """The :class:`TrainingResult` of a run that ended (finished or stopped)."""

    def __init__(self, jobs: JobRunner, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._jobs, self._state = jobs, state
        self._training = JobSlot(jobs, self, policy=SlotPolicy.REFUSE)
        self._reading = JobSlot(jobs, self, policy=SlotPolicy.REPLACE)  # the latest data wins
        self._shown_run: Path | None = None
        self._resume_blocker: str | None = _NO_RUN
        self._preview: AugmentationPreviewDialog | None = None
        self._devices_filled = False
        self._launched_at = 0.0
        self.setup, self.monitor, self.history = SetupPanel(), RunMonitor(), RunHistory()
        self.monitor.add_page(self.history, "Runs")
        self.processes = ProcessTable(self.monitor.append_log)
        self.monitor.add_page(self.processes, "Processes")
        self._applied_values = self.setup.form.raw_values()
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.setup)
        body.addWidget(self.monitor)
        body.setStretchFactor(1, 1)
        body.setSizes([470, 810])
        QVBoxLayout(self).addWidget(body)
        self._connect()
        state.subscribe(Part.TRAINING_DATA, self._on_training_data)
        state.subscribe(Part.RUN, self._on_run)
        self._on_training_data()
        self._on_run()

    def _connect(self) -> None:
        setup = self.setup
        for button, slot, name in (
            (setup.suggest_button, self.suggest_settings, "suggestSettings"),
            (setup.start_button, self.start, "startTraining"),
            (setup.stop_button, self.stop, "stopTraining"),
            (setup.resume_button, self.resume, "resumeTraining"),
            (setup.preview_button, self.preview_augmentation, "previewAugmentation"),
        ):
            button.setObjectName(name)
            button.clicked.connect(slot)
        setup.form.validity_changed.connect(self._update_buttons)
        setup.data_chosen.connect(self._on_data_chosen)
        setup.runs_folder.changed.connect(self._list_runs)
        self.history.run_chosen.connect(self._state.select_run)
        self._training.busy_changed.connect(self._update_buttons)

    def showEvent(self, event: QShowEvent) -> None:
        """Look at the runs again (another process may have started or ended one) and, the
        first time, list the devices (it imports MXNet: after the window is up)."""
        super().showEvent(event)
        self._on_run()
        if not self._devices_filled:
            self._devices_filled = True
            QTimer.singleShot(0, self._fill_devices)

    def _fill_devices(self) -> None:
        from imgcls_desktop.core.devices import gpu_count

        self.setup.fill_devices(gpu_count())

    # The training data ----------------------------------------------------------------------

    def _on_data_chosen(self, train: str, validation: str) -> None:
        if train:
            self._state.set_training_data(Path(train), Path(validation) if validation else None)

    def _on_training_data(self) -> None:
        """Show the training data; read it once, then suggest settings if the form is the
        app's (untouched by the user)."""
        sources = self._state.training_data
        self.setup.show_data(sources)
        if sources is not None and sources.summary is None:
            self._read_training_data()
        elif sources is not None and sources.summary is not None:
            if self.form_edited():
                self._fit_settings_to(sources)
            else:
                self.suggest_settings()
        self._update_buttons()

    def _fit_settings_to(self, sources: TrainingSources) -> None:
        """Keep the user's settings, with the new data's class and image counts in place."""
        form = self.setup.form
        before = form.raw_values()
        fitted = settings_for_data(
            before, sources.summary, all_for_training=sources.validation is not None
        )
        form.set_hyperparameters(fitted)
        changed = sorted(name for name, value in form.raw_values().items() if before[name] != value)
        if changed:
            self.status_message.emit(
                f"Your settings are kept; {', '.join(changed)} now follow the new training data."
            )

    def _read_training_data(self) -> None:
        sources = self._state.training_data
        if sources is None or sources.summary is not None:
            return
        train = sources.train
        handle = self._reading.start(
            lambda _job: summarize_training_data(train), "Reading the training data"
        )
        if handle is not None:
            handle.succeeded.connect(self._state.set_training_summary)
            handle.failed.connect(partial(self._on_read_failed, train))

    def _on_read_failed(self, train: Path, message: str, _details: str) -> None:
        sources = self._state.training_data
        if sources is not None and sources.train == train and sources.summary is None:
            self.setup.show_data_error(message)

    # The form -------------------------------------------------------------------------------

    def form_edited(self) -> bool:
        """True when the user changed the form (or loaded settings) since the app filled it."""
        return self.setup.form.raw_values() != self._applied_values

    @Slot()
    def suggest_settings(self) -> None:
        """Fill the form with settings suited to the training data and the device."""
        sources = self._state.training_data
        if sources is None or sources.summary is None:
            return
        backbones = installed_depths()
        hp = suggested_settings(
            self.setup.form.raw_values(),
            sources.summary,
            gpu=str(self.setup.devices() or "").startswith("gpu"),
            all_for_training=sources.validation is not None,
            backbone_depths=backbones,
        )
        self.setup.form.set_hyperparameters(hp)
        self._applied_values = self.setup.form.raw_values()
        advice = transfer_advice(sources.summary, backbones)
        gist = describe_hyperparameters(hp) + (f" ({advice})" if advice else "")
        self.status_message.emit(f"Suggested for this data: {gist}. Review them, then Start.")
        self.settings_suggested.emit(gist)

    def load_hyperparameters_from(self, path: Path) -> None:
        """Load ``path`` (SageMaker's string form or native JSON) into the form; the user's
        choice, so suggestions no longer replace it."""
        self.setup.load_hyperparameters_from(path)

    @Slot()
    def preview_augmentation(self) -> JobHandle | None:
        """Open the augmentation preview for the training data and the form's settings."""
        try:
            hp = self.setup.form.hyperparameters()
        except HyperparameterError as error:
            show_error(self, "Cannot preview the augmentation", str(error))
            return None
        if self._preview is None:
            self._preview = AugmentationPreviewDialog(self._jobs, self)
        sources = self._state.training_data
        return self._preview.show_preview("" if sources is None else str(sources.train), hp)

    # Training -------------------------------------------------------------------------------

    @Slot()
    def start(self) -> JobHandle | None:
        """Start a new run, in a new folder, with the form's settings.

        Settings that may train badly are listed in a question first; the run starts only
        if the user confirms (and None is returned).
        """
        sources = self._state.training_data
        try:
            hp = self.setup.form.hyperparameters()
            launched = self.setup.processes.plan() is not None
            summary = None if sources is None else sources.summary
            warnings = [] if summary is None else start_warnings(summary, hp, launched=launched)
        except (HyperparameterError, LaunchSpecError) as error:
            show_error(self, "Cannot start training", str(error))
            return None
        if not warnings:
            return self.start_anyway()
        ask(
            self,
            "confirmStartDialog",
            "These settings may not train well",
            "\n\n".join(warnings) + "\n\nStart training anyway?",
            yes="Start Anyway",
            no="Change Settings",
            on_yes=self.start_anyway,
        )
        return None

    @Slot()
    def start_anyway(self) -> JobHandle | None:
        """Start a new run with the form's settings, without asking about warnings."""
        sources = self._state.training_data
        if self._training.is_busy():
            return None
        if sources is None:
            show_error(self, "Cannot start training", "Choose the training data first.")
            return None
        setup = self.setup
        try:
            plan = setup.processes.plan()
            job = TrainingJob.new(
                setup.form.hyperparameters(),
                sources.train,
                self._state.new_run_folder(setup.runs_folder_path()),
                validation=sources.validation,
                devices=setup.devices(),
                base_model=setup.optional_path(setup.base_model),
                pretrained=setup.optional_path(setup.pretrained),
                data_facts=None if sources.summary is None else sources.summary.facts(),
            )
        except (HyperparameterError, RunError, LaunchSpecError) as error:
            show_error(self, "Cannot start training", str(error))
            return None
        self.monitor.clear()
        return self._launch(job, f"Training {job.output.name}", plan)

    @Slot()
    def resume(self) -> JobHandle | None:
        """Continue the run in focus, with its own settings (the form is for the next Start)."""
        run = self._state.run
        if self._training.is_busy() or self._state.is_training:
            return None
        blocker = _NO_RUN if run is None else run_standing(run.path).resume_blocker
        if run is None or blocker is not None:
            show_error(self, "Cannot resume", blocker or _NO_RUN)
            self._on_run()
            return None
        try:
            job, plan = TrainingJob.resume_of(run.path), self.setup.processes.plan()
        except (HyperparameterError, RunError, LaunchSpecError) as error:
            show_error(self, "Cannot resume this run", str(error))
            return None
        self.monitor.clear()
        self.monitor.append_log(
            f"Resuming {run.path.name} with its own settings (the form is for the next Start): "
            f"{describe_hyperparameters(job.hyperparameters)}"
        )
        return self._launch(job, f"Resuming {run.path.name}", plan)

    @Slot()
    def stop(self) -> None:
        """Stop the run after the current batch (resumable)."""
        if self._training.is_busy():
            self._training.cancel()
            self.setup.stop_button.setEnabled(False)
            self.monitor.append_log("Stopping after this batch…")

    def shutdown(self) -> None:
        """Stop a run in progress (the window is closing); it stays resumable."""
        self.stop()

    def _launch(self, job: TrainingJob, title: str, plan: LaunchPlan | None) -> JobHandle | None:
        """Train ``job`` here, or on the processes of ``plan``."""
        if plan is None:
            handle = self._training.start(partial(run_training, job), title)
        else:
            handle = self._training.start(partial(run_distributed_training, job, plan), title)
        if handle is None:
            return None
        self._launched_at = time.monotonic()
        self.processes.clear_processes()
        handle.event.connect(self.monitor.show_event)
        handle.event.connect(self.processes.show_event)
        handle.event.connect(self._show_start_notes)
        handle.succeeded.connect(self._on_succeeded)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(self._on_cancelled)
        handle.finished.connect(self._on_finished)
        self._shown_run = job.output
        self.monitor.details.setCurrentWidget(self.monitor.log)
        self.monitor.append_log(f"{title}: preparing the data…")
        self._state.run_started(job.output, job.train, job.validation)
        self.training_started.emit(job.output)
        return handle

    def _show_start_notes(self, event: TrainingEvent) -> None:
        """Where the weights came from (which layers were loaded), in the status bar too."""
        if isinstance(event, TrainingBegan) and event.notes:
            self.status_message.emit(" ".join(event.notes))

    def _on_succeeded(self, result: TrainingResult) -> None:
        ended = "Finished" if result.completed else "Stopped"
        self.monitor.speed.setText(f"{ended} in {duration(time.monotonic() - self._launched_at)}")
        self.monitor.append_log(result.summary())
        self._state.run_ended(result)
        self.status_message.emit(result.summary())
        self.run_finished.emit(result)

    def _on_failed(self, message: str, details: str) -> None:
        self.monitor.append_log(f"Failed: {message}")
        self._state.run_ended(None)
        show_error(self, "Training failed", message, details)

    def _on_cancelled(self) -> None:
        self.monitor.append_log("Cancelled while preparing the data.")
        self._state.run_ended(None)

    def _on_finished(self) -> None:
        self.monitor.plots.redraw()
        self._on_run()

    # The run in focus -----------------------------------------------------------------------

    def _on_run(self) -> None:
        """Show the run in focus: its curves when another run was shown, where it stands,
        and whether Resume can continue it."""
        run = self._state.run
        if run is None:
            self._resume_blocker = _NO_RUN
        elif not run.training:
            standing = run_standing(run.path)
            if run.path != self._shown_run:
                self.monitor.show_run(standing)
            else:
                self.monitor.show_standing(standing)
            self._resume_blocker = standing.resume_blocker
        self._shown_run = None if run is None else run.path
        self._list_runs()
        self._update_buttons()

    def _list_runs(self) -> None:
        """The runs folder's runs, the runs trained before, and the run in focus."""
        focus = None if self._state.run is None else self._state.run.path
        known = [Path(path) for path in self._state.recent(ItemKind.RUN)]
        self.history.refresh(
            self.setup.runs_folder_path(), [*known, *([focus] if focus else [])], focus
        )

    def _update_buttons(self, *_args: object) -> None:
        training = self._state.is_training or self._training.is_busy()
        self.setup.show_buttons(training=training, resume_blocker=self._resume_blocker)
