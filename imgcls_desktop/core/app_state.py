"""What the app has open, in one place: the data set and where its export goes, the training
data, the run, the model and its evaluation.

The window's tabs show this state and change it only through its methods. Each change is
announced to the subscribers of the part that changed (:class:`Part`), so every view of a
thing updates when the thing changes, and no tab keeps a copy of another tab's state. What
the user opens is also remembered in the project (the recent lists, ``project.json``).

No Qt here: the state is plain Python, changed and observed in one thread (the GUI thread).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from imgcls_desktop.core.paths import data_dir
from imgcls_desktop.core.project import ItemKind, Project, save_project

if TYPE_CHECKING:
    from imgcls_desktop.core.dataset.samples import Dataset
    from imgcls_desktop.core.dataset.scan import ScanReport
    from imgcls_desktop.core.evaluation import EvaluationReport
    from imgcls_desktop.core.inference import Predictor
    from imgcls_desktop.core.training.loop import TrainingResult
    from imgcls_desktop.core.training.suggest import DataSummary


class Part(Enum):
    """The parts of the state a view can follow."""

    DATASET = "data set"
    TRAINING_DATA = "training data"
    RUN = "run"
    MODEL = "model"
    EVALUATION = "evaluation"


@dataclass(frozen=True)
class OpenDataset:
    """The open data set, its health scan, and where its RecordIO export goes."""

    path: Path
    dataset: Dataset
    report: ScanReport
    export_dir: Path


@dataclass(frozen=True)
class TrainingSources:
    """The training (and validation) channels, and what reading them found once read."""

    train: Path
    validation: Path | None = None
    summary: DataSummary | None = None


@dataclass(frozen=True)
class RunInFocus:
    """The run the Training tab shows and Resume acts on: the one being trained, the one
    just trained, or one the user selected or reopened. ``result`` is set once a run
    trained in this session has ended."""

    path: Path
    training: bool = False
    result: TrainingResult | None = None


@dataclass(frozen=True)
class OpenModel:
    """The model open for inference, and the labelled images its run held out for
    validation (None when it is not a run's model or they are gone)."""

    path: Path
    predictor: Predictor
    validation: Path | None = None


@dataclass(frozen=True)
class Evaluation:
    """An evaluation of the open model on a labelled set."""

    model: Path
    data: Path
    report: EvaluationReport


Listener = Callable[[], None]


def default_export_dir(source: Path) -> Path:
    """A data set's own export folder beside it: ``<folder>-recordio`` for a folder,
    ``<file name without suffix>-recordio`` for a file."""
    return source.with_name(f"{source.name if source.is_dir() else source.stem}-recordio")


def default_runs_folder() -> Path:
    """Where new runs go unless the user picks a folder."""
    return data_dir() / "runs"


class AppState:
    """The one model of what is open; views subscribe to its parts and change it through
    its methods.

    ``save`` writes the project after each change of the recent lists (None: never
    written, for tests); a failure to write it is handed to ``on_save_error``.
    """

    def __init__(
        self,
        project: Project | None = None,
        *,
        save: Callable[[Project], None] | None = save_project,
        on_save_error: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.project = project or Project()
        self._save = save
        self._on_save_error = on_save_error
        self._listeners: dict[Part, list[Listener]] = defaultdict(list)
        self._export_dirs: dict[Path, Path] = {}
        self.dataset: OpenDataset | None = None
        self.training_data: TrainingSources | None = None
        self.run: RunInFocus | None = None
        self.model: OpenModel | None = None
        self.evaluation: Evaluation | None = None

    def subscribe(self, part: Part, listener: Listener) -> None:
        """Call ``listener()`` after each change of ``part``."""
        self._listeners[part].append(listener)

    def _changed(self, *parts: Part) -> None:
        for part in parts:
            for listener in list(self._listeners[part]):
                listener()

    # Data set -------------------------------------------------------------------------------

    def open_dataset(self, path: Path, dataset: Dataset, report: ScanReport) -> None:
        """The data set at ``path`` is open (scanned); its export goes where it went before
        in this session, else into its own folder beside it."""
        export_dir = self._export_dirs.get(path) or default_export_dir(path)
        self.dataset = OpenDataset(path, dataset, report, export_dir)
        self._remember(ItemKind.DATASET, path)
        self._changed(Part.DATASET)

    def set_export_dir(self, folder: Path) -> None:
        """Export the open data set into ``folder`` (this data set only)."""
        if self.dataset is None or self.dataset.export_dir == folder:
            return
        self._export_dirs[self.dataset.path] = folder
        self.dataset = replace(self.dataset, export_dir=folder)
        self._changed(Part.DATASET)

    # Training data and runs ----------------------------------------------------------------

    def set_training_data(self, train: Path, validation: Path | None = None) -> None:
        """Train on these channels; they are read again (``summary`` None until then), even
        when they are the same paths (new contents, e.g. just exported again)."""
        self.training_data = TrainingSources(train, validation)
        self._changed(Part.TRAINING_DATA)

    def set_training_summary(self, summary: DataSummary) -> None:
        """What reading the training data found; ignored when the channels changed since."""
        if self.training_data is None or self.training_data.train != summary.path:
            return
        self.training_data = replace(self.training_data, summary=summary)
        self._changed(Part.TRAINING_DATA)

    def new_run_folder(self, runs_folder: Path | None = None) -> Path:
        """A folder for a new run, named after the time, that does not exist yet."""
        parent = runs_folder or default_runs_folder()
        name = datetime.now().strftime("run-%Y%m%d-%H%M%S")
        folder, number = parent / name, 2
        while folder.exists():
            folder, number = parent / f"{name}-{number}", number + 1
        return folder

    @property
    def is_training(self) -> bool:
        """True while this app trains a run."""
        return self.run is not None and self.run.training

    def run_started(self, run_dir: Path, train: Path, validation: Path | None = None) -> None:
        """Training of ``run_dir`` started (new or resumed) on these channels."""
        self.run = RunInFocus(run_dir, training=True)
        self.project.remember_run(run_dir, train, validation)
        self._save_project()
        self._changed(Part.RUN)

    def run_ended(self, result: TrainingResult | None = None) -> None:
        """The run being trained ended: with its ``result``, or None when it failed."""
        if self.run is None:
            return
        self.run = replace(self.run, training=False, result=result)
        self._changed(Part.RUN)

    def select_run(self, run_dir: Path) -> None:
        """Show ``run_dir`` (and resume it on Resume); ignored while a run is being trained."""
        if self.is_training or (self.run is not None and self.run.path == run_dir):
            return
        self.run = RunInFocus(run_dir)
        self._changed(Part.RUN)

    # Model and evaluation ------------------------------------------------------------------

    def open_model(self, path: Path, predictor: Predictor, validation: Path | None = None) -> None:
        """The model at ``path`` is open; the evaluation of the previous model goes."""
        self.model = OpenModel(path, predictor, validation)
        self.evaluation = None
        self._remember(ItemKind.MODEL, path)
        self._changed(Part.MODEL, Part.EVALUATION)

    def set_evaluation(self, model: Path, data: Path, report: EvaluationReport) -> None:
        """``model`` was evaluated on ``data``; ignored when another model was opened since."""
        if self.model is None or self.model.path != model:
            return
        self.evaluation = Evaluation(model, data, report)
        self._changed(Part.EVALUATION)

    # The project's recent lists -------------------------------------------------------------

    def recent(self, kind: ItemKind) -> list[str]:
        """The remembered paths of ``kind`` that still exist, newest first."""
        return self.project.recent(kind)

    def _remember(self, kind: ItemKind, path: Path | str) -> None:
        self.project.remember(kind, path)
        self._save_project()

    def _save_project(self) -> None:
        if self._save is None:
            return
        try:
            self._save(self.project)
        except OSError as error:
            self._on_save_error(f"Could not save the list of recent items: {error}")
