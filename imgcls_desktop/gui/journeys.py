"""The banner's journey logic: after each step, say what happened and offer the next one.

It follows the app state (each part the tabs change) and the tabs' signals, and uses only
the tabs' public methods. Every message belongs to a step and goes when the state moves on
(another data set, another model, a run started or ended), so the banner never speaks of
something no longer open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QTabWidget

from imgcls_desktop.core.app_state import AppState, Part
from imgcls_desktop.core.evaluation import EvaluationReport
from imgcls_desktop.core.training.run import RunStatus
from imgcls_desktop.core.training.standing import run_standing
from imgcls_desktop.gui.next_step import Action, NextStepBanner

if TYPE_CHECKING:
    from imgcls_desktop.core.training.loop import TrainingResult
    from imgcls_desktop.gui.dataset import DatasetTab
    from imgcls_desktop.gui.inference import InferenceTab
    from imgcls_desktop.gui.training import TrainingTab

_TRAINED = (RunStatus.FINISHED, RunStatus.EARLY_STOPPED)


def describe_run(run_dir: Path) -> tuple[str, bool]:
    """How a run stands in a few words (``run-1 stopped at epoch 9 of 60``), and whether
    Resume can continue it; ("", False) when it cannot be read."""
    standing = run_standing(run_dir)
    if standing.info is None:
        return "", False
    return f"{run_dir.name} {standing.status}", standing.can_resume


class Journeys(QObject):
    """Says on ``banner`` what comes next, following ``state`` and the three tabs."""

    def __init__(
        self,
        banner: NextStepBanner,
        tabs: QTabWidget,
        state: AppState,
        dataset: DatasetTab,
        training: TrainingTab,
        inference: InferenceTab,
    ) -> None:
        super().__init__(tabs)
        self.banner = banner
        self._tabs = tabs
        self._state = state
        self._dataset, self._training, self._inference = dataset, training, inference
        self._stale: Callable[[], bool] = _never
        self._dataset_shown: object = None
        self._welcome_dataset: Path | None = None
        for part in Part:
            state.subscribe(part, self._drop_stale)
        state.subscribe(Part.DATASET, self._on_dataset_changed)
        dataset.dataset_exported.connect(self._on_exported)
        dataset.sample_ready.connect(self.show_training)
        training.settings_suggested.connect(self._on_settings_suggested)
        training.training_started.connect(self._on_training_started)
        training.run_finished.connect(self._on_run_finished)
        inference.folder_labelled.connect(self._on_folder_labelled)
        inference.evaluated.connect(self._on_evaluated)

    def _show(
        self, text: str, actions: list[Action] = (), stale: Callable[[], bool] | None = None
    ) -> None:
        """Show a step; it goes when ``stale()`` becomes true after a change of the state."""
        self._stale = stale or _never
        self.banner.show_step(text, actions)

    def _drop_stale(self) -> None:
        if self._stale():
            self._stale = _never
            self.banner.hide()

    # Actions the banner offers ---------------------------------------------------------------

    def show_training(self) -> None:
        """Show the Training tab."""
        self._tabs.setCurrentWidget(self._training)

    def _start(self) -> None:
        self.show_training()
        self._training.start()

    def _resume(self) -> None:
        self.show_training()
        self._training.resume()

    def evaluate_model(self, model: Path | None = None) -> None:
        """Evaluate the open model (after opening ``model`` when another is open) on the
        validation images of its run."""
        self._tabs.setCurrentWidget(self._inference)
        opened = self._state.model
        if model is None or (opened is not None and opened.path == model):
            self._inference.evaluate()
            return
        job = self._inference.open_model(str(model))
        if job is not None:
            job.succeeded.connect(lambda _predictor: self._inference.evaluate())

    def _label_folder(self) -> None:
        self._tabs.setCurrentWidget(self._inference)
        self._inference.choose_folder_to_label()

    # Steps ------------------------------------------------------------------------------------

    def welcome_back(self, reopened: list[str], run_dir: Path | None) -> None:
        """Say what was reopened and how the last run stands (Resume offered if it can go on)."""
        text = "<b>Welcome back</b>."
        if reopened:
            verb = "is" if len(reopened) == 1 else "are"
            text = f"<b>Welcome back</b>: your last {_listing(reopened)} {verb} open again."
        actions: list[Action] = []
        described, can_continue = describe_run(run_dir) if run_dir else ("", False)
        if described:
            text += f" Your last run, {described}" + (
                ": Resume continues it." if can_continue else "."
            )
            actions.append(("Go to Training", "Show the run (Ctrl+2)", self.show_training))
        if can_continue:
            actions.insert(0, ("Resume Training", "Continue the run (Ctrl+R)", self._resume))
        self._show(text, actions, stale=lambda: self._state.is_training)

    def expect_reopened_dataset(self, path: Path) -> None:
        """The data set at ``path`` is being reopened: its opening keeps the welcome."""
        self._welcome_dataset = path

    def _on_dataset_changed(self) -> None:
        opened = self._state.dataset
        if opened is None or opened.dataset is self._dataset_shown:
            return
        self._dataset_shown = opened.dataset
        shown = opened.dataset

        def stale() -> bool:  # another data set (or the same read again) is open
            return self._state.dataset is None or self._state.dataset.dataset is not shown

        usable = len(opened.report.usable_indices)
        if opened.path == self._welcome_dataset:
            self._welcome_dataset = None
            return
        if self._dataset.is_preparing_sample():
            self._show(
                f"<b>Sample data set ready</b>: {usable:,} images of drawn shapes, checked. "
                "Now packing them into RecordIO for training…",
                stale=stale,
            )
            return
        self._show(
            f"<b>Opened {opened.path.name}</b>: {usable:,} usable images. Next: look over the "
            "classes and Problems, choose the split below, then export RecordIO to train on it.",
            [("Export RecordIO", "Split and export for training (Ctrl+E)", self._dataset.export)],
            stale,
        )

    @Slot(str, str)
    def _on_exported(self, train: str, validation: str) -> None:
        """Hand freshly exported RecordIO to training unless a run is being trained."""
        if self._state.is_training:
            return
        next_step = (
            "train on them in the Training tab: your settings there are kept (Suggest "
            "Settings proposes new ones)."
            if self._training.form_edited()
            else "the Training tab reads them and suggests settings."
        )
        self._show(
            f"<b>Exported</b> {Path(train).name}"
            + (f" and {Path(validation).name}" if validation else "")
            + f". Next: {next_step}",
            [("Go to Training", "Show the Training tab (Ctrl+2)", self.show_training)],
            stale=lambda: self._state.is_training,
        )
        self._state.set_training_data(Path(train), Path(validation) if validation else None)

    @Slot(str)
    def _on_settings_suggested(self, gist: str) -> None:
        sources = self._state.training_data
        summary = sources.summary if sources else None
        data = f" for {summary.describe()}" if summary else ""
        self._show(
            f"<b>Suggested{data}</b>: {gist}. Next: press Start Training and watch the curves.",
            [("Start Training", "Train a new run with these settings (Ctrl+T)", self._start)],
            stale=lambda: self._state.is_training or self._state.training_data is not sources,
        )

    @Slot(object)
    def _on_training_started(self, run_dir: Path) -> None:
        self._show(
            f"<b>Training {run_dir.name}</b>: loss and accuracy update as it learns. Stop keeps "
            "the last finished epoch; Resume continues from it.",
            stale=lambda: not self._state.is_training,
        )

    @Slot(object)
    def _on_run_finished(self, result: TrainingResult) -> None:
        run_dir = result.run_dir
        run = self._state.run

        def moved_on() -> bool:  # another run selected, or this one started again
            return self._state.run is not run

        if result.status not in _TRAINED:
            described, can_continue = describe_run(run_dir)
            self._show(
                f"<b>Run {described or run_dir.name}</b>. "
                + ("Resume continues it from there." if can_continue else ""),
                [("Resume Training", "Continue the run (Ctrl+R)", self._resume)]
                if can_continue
                else [],
                moved_on,
            )
            return
        self._inference.open_model(str(run_dir))
        best = (
            f": best validation accuracy {result.best_val_accuracy:.1%} at epoch "
            f"{result.best_epoch}"
            if result.best_val_accuracy is not None
            else ""
        )
        before = self._state.model

        def other_model() -> bool:  # the user opened another model than the run's
            model = self._state.model
            return model is not before and model is not None and model.path != run_dir

        self._show(
            f"<b>Model trained</b>{best}. It opens in the Inference tab. Next: label a folder of "
            "new images with it, or see how it does on its validation images.",
            [
                (
                    "Label a Folder…",
                    "Choose a folder of images to label (Ctrl+L)",
                    self._label_folder,
                ),
                (
                    "Evaluate",
                    "Confusion matrix and per-class metrics on the validation images",
                    lambda: self.evaluate_model(run_dir),
                ),
            ],
            lambda: moved_on() or other_model(),
        )

    @Slot(str, int)
    def _on_folder_labelled(self, folder: str, count: int) -> None:
        model = self._state.model
        actions: list[Action] = []
        if model is not None and model.validation is not None:
            actions.append(
                (
                    "Evaluate",
                    "Confusion matrix and per-class metrics on the model's validation images",
                    self.evaluate_model,
                )
            )
        self._show(
            f"<b>Labelled {count:,} images</b> of {Path(folder).name}. Next: sort or filter the "
            "table, fix wrong labels with Correct Label… and add them to your data set, then "
            "export CSV or JSON Lines, or sort the images into class folders.",
            actions,
            lambda: self._state.model is not model,
        )

    @Slot(object)
    def _on_evaluated(self, report: EvaluationReport) -> None:
        evaluation = self._state.evaluation

        def stale() -> bool:  # evaluated again, or another model opened
            return self._state.evaluation is not evaluation

        failing = [metrics.name for metrics in report.failing_classes]
        summary = f"Accuracy {report.accuracy:.1%} on {report.count:,} images"
        if failing:
            self._show(
                f"<b>{summary}, but the model gets most images of {_listing(failing)} wrong"
                "</b>. Next: add more (and more varied) images of "
                f"{'it' if len(failing) == 1 else 'them'} to the data set, export and train "
                "again.",
                [("Go to Dataset", "Show the data set (Ctrl+1)", self._show_dataset)],
                stale,
            )
            return
        mistakes = len(report.misclassified)
        next_step = (
            "click a cell of the confusion matrix to see its images, surest first, and correct "
            "any wrong labels."
            if mistakes and not report.multi_label
            else "label a folder of new images with it."
        )
        self._show(
            f"<b>{summary}</b>, {mistakes:,} wrong. Next: {next_step}",
            [
                (
                    "Label a Folder…",
                    "Choose a folder of images to label (Ctrl+L)",
                    self._label_folder,
                )
            ],
            stale,
        )

    def _show_dataset(self) -> None:
        self._tabs.setCurrentWidget(self._dataset)


def _never() -> bool:
    return False


def _listing(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
