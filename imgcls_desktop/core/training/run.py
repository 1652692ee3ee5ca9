"""The run folder: what a training run leaves, and what resuming it needs.

Beside the SageMaker artifacts (``image-classification-symbol.json``,
``image-classification-NNNN.params``, ``model-shapes.json``; see
:mod:`imgcls_desktop.core.artifacts`) a run folder holds:

- ``run.json``: status, times, epochs, best epoch and accuracy, last completed epoch, data
  and device choices (:class:`RunInfo`). It is the commit point of every epoch;
- ``classes.json`` (JSON list of class names), ``hyperparameters.json`` (SageMaker's
  string form), ``preprocessing.json`` (what inference must do to an image);
- ``metrics.jsonl``: one JSON line per epoch;
- ``resume/epoch-NNNN.params``, ``epoch-NNNN.optimizer.params`` and
  ``epoch-NNNN.optimizer.json``: the network and the optimizer state (momenta, update
  counts, learning-rate schedule position) at the end of the last completed epoch, as named
  arrays and JSON (:mod:`.optimizer_state`): a run folder is data, never code;
- ``data/``: the training data packed as RecordIO, when it had to be packed.

Every file is replaced atomically. An epoch's resume files are written under their own
names first, then ``run.json`` names that epoch, then the previous epoch's files go: a kill
at any moment leaves ``run.json`` naming a complete, loadable set.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from imgcls_desktop.core.artifacts import first_line, save_with_mxnet
from imgcls_desktop.core.atomic import atomic_write_json
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.data import TrainingData
from imgcls_desktop.core.training.optimizer_state import (
    OptimizerStateError,
    fresh_optimizer_state,
    load_optimizer_state,
    save_optimizer_state,
)

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock, Trainer

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CLASSES_FILE = "classes.json"
HYPERPARAMETERS_FILE = "hyperparameters.json"
PREPROCESSING_FILE = "preprocessing.json"
RESUME_FOLDER = "resume"
# Pickled optimizer state of earlier versions: never read (it could run code).
LEGACY_STATES_SUFFIX = ".states"


class RunStatus(str, enum.Enum):
    """Where a run stands (``run.json``'s ``status``, its value)."""

    RUNNING = "running"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"
    EARLY_STOPPED = "early_stopped"

    def __str__(self) -> str:
        return self.value


class RunError(Exception):
    """A run folder cannot be used as asked; the message says why and what to do."""


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass
class RunInfo:
    """The contents of ``run.json``.

    ``epochs`` is the target; ``last_completed_epoch`` the last epoch whose resume state is
    saved (0 before the first); ``num_updates`` the optimizer updates up to it. ``train`` and
    ``validation`` are the sources as given, ``data`` the prepared
    :class:`~imgcls_desktop.core.training.data.TrainingData` (None until it is; ``{}`` in
    the file). ``network`` names the record of a network built from a base model's symbol
    (see :mod:`.starting_point`; None: our ``ImageClassifier``). ``running`` in a folder no
    process trains in means the process was killed: resume it. A ``status`` given as its
    text is taken as the :class:`RunStatus`.
    """

    status: RunStatus
    epochs: int
    train: str
    validation: str | None = None
    devices: str | None = None
    seed: int = 0
    base_model: str | None = None
    pretrained: str | None = None
    network: str | None = None
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    last_completed_epoch: int = 0
    num_updates: int = 0
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    stop_reason: str | None = None
    error: str | None = None
    data: TrainingData | None = None

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)

    def can_continue(self, epochs: int | None = None) -> bool:
        """Whether resuming to ``epochs`` (default: the run's own target) would do anything:
        epochs remain, or the run was killed or stopped after its last epoch was recorded
        but before its end was (resuming then only records the end)."""
        target = self.epochs if epochs is None else epochs
        last = self.last_completed_epoch
        return last < target or (last == target and self.status is not RunStatus.FINISHED)

    def to_dict(self, folder: Path | None = None) -> dict[str, Any]:
        """Plain JSON values; the data's record paths inside ``folder`` (the run folder) are
        stored relative to it (see :meth:`TrainingData.to_dict`)."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values["status"] = RunStatus(self.status).value
        values["data"] = {} if self.data is None else self.data.to_dict(folder)
        return values

    @classmethod
    def from_dict(cls, values: Any, folder: Path | None = None) -> RunInfo:
        """Read ``to_dict``'s values, checking each one; unknown keys (from a newer version)
        are ignored; relative data paths are taken from ``folder``. :class:`RunError` says
        what is wrong: not an object, a required key missing, a value of the wrong type or
        out of range, an unknown status, a damaged data record."""
        if not isinstance(values, dict):
            raise RunError(f"it holds {_json_kind(values)}, not an object of run values")
        missing = [f.name for f in fields(cls) if f.name not in values and _required(f)]
        if missing:
            raise RunError(f"it lacks {', '.join(map(repr, missing))}")
        known = {f.name: f for f in fields(cls) if f.name in values}
        for name, value in ((name, values[name]) for name in known):
            _check_value(name, known[name].type, value)
        if values["status"] not in {status.value for status in RunStatus}:
            raise RunError(f"its status {values['status']!r} is none of {_STATUSES}")
        checked = {name: values[name] for name in known}
        checked["data"] = _training_data(checked.get("data"), folder)
        return cls(**checked)


def _training_data(values: dict[str, Any] | None, folder: Path | None) -> TrainingData | None:
    """The data record of ``run.json`` (``{}`` or null: none yet); RunError if damaged."""
    if not values:
        return None
    try:
        return TrainingData.from_dict(values, folder)
    except ValueError as error:
        raise RunError(f"its 'data' record: {error}") from None


_STATUSES = ", ".join(status.value for status in RunStatus)
# The JSON values each part of a RunInfo annotation accepts, and their names in a message
# (bool is never a number here).
_JSON_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a text"),
    "int": ((int,), "a whole number"),
    "float": ((int, float), "a number"),
    "None": ((type(None),), "null"),
    "RunStatus": ((str,), "a text"),
    "TrainingData": ((dict,), "an object"),
}
# Fields whose numbers have a lower bound.
_MINIMUMS = {"epochs": 1, "last_completed_epoch": 0, "num_updates": 0, "best_epoch": 1}


def _required(field_: Any) -> bool:
    return field_.default is MISSING and field_.default_factory is MISSING


def _check_value(name: str, annotation: str, value: Any) -> None:
    parts = [_JSON_TYPES[part] for part in annotation.split(" | ")]
    allowed = tuple(kind for kinds, _wanted in parts for kind in kinds)
    if isinstance(value, bool) or not isinstance(value, allowed):
        wanted = " or ".join(wanted for _kinds, wanted in parts)
        raise RunError(f"its {name!r} is {_json_kind(value)}, not {wanted}")
    if isinstance(value, (int, float)) and not math.isfinite(value):
        raise RunError(f"its {name!r} is {value}, not a number")
    if name in _MINIMUMS and value is not None and value < _MINIMUMS[name]:
        raise RunError(f"its {name!r} is {value}, less than {_MINIMUMS[name]}")
    if name == "best_val_accuracy" and value is not None and not 0 <= value <= 1:
        raise RunError(f"its 'best_val_accuracy' is {value}, not between 0 and 1")


def _json_kind(value: Any) -> str:
    """How a JSON value reads in a message: ``null``, ``a list``, ``the number 3``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return "a list" if isinstance(value, list) else "an object"


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a training run (a ``run.json``)."""
    return (Path(folder) / RUN_FILE).is_file()


def read_run(run_dir: Path) -> RunInfo:
    """The ``run.json`` of a run folder; :class:`RunError` when there is none or it is
    unreadable or damaged (the message names the file and what is wrong)."""
    path = Path(run_dir) / RUN_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{run_dir} is not a training run folder (it has no {RUN_FILE})") from None
    except (OSError, ValueError) as error:
        raise RunError(f"cannot read {path}: {error}") from None
    try:
        return RunInfo.from_dict(values, Path(run_dir))
    except RunError as error:
        raise RunError(f"{path} is damaged: {error}") from None


def validation_records(run_dir: Path) -> Path | None:
    """The validation ``.rec`` a run trained with, if it is still there; None for a path
    that is not a readable run folder (a ``model.tar.gz``, a damaged run) or no record."""
    try:
        data = read_run(run_dir).data
    except RunError:
        return None
    return data.val_rec if data is not None and data.val_rec.is_file() else None


def write_run(run_dir: Path, info: RunInfo) -> None:
    """Replace ``run.json`` atomically, stamping ``updated``."""
    info.updated = _now()
    atomic_write_json(Path(run_dir) / RUN_FILE, info.to_dict(Path(run_dir)))


@dataclass(frozen=True)
class FoundRun:
    """A run folder as :func:`find_runs` lists it: its record, or why it cannot be read.

    A damaged run (``info`` None, ``damaged`` the reason) is listed, never resumed or opened.
    """

    path: Path
    info: RunInfo | None
    damaged: str | None = None


def find_runs(folder: Path, also: Sequence[Path] = ()) -> list[FoundRun]:
    """The runs in ``folder`` (itself, or its sub-folders) and the run folders among
    ``also``, each once, newest first; a damaged ``run.json`` is listed as damaged."""
    folder = Path(folder)
    candidates = [folder] if is_run_folder(folder) else []
    if folder.is_dir():
        with contextlib.suppress(OSError):
            candidates += sorted(path for path in folder.iterdir() if is_run_folder(path))
    candidates += [Path(path) for path in also if is_run_folder(Path(path))]
    runs, seen = [], set()
    for path in candidates:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            runs.append(FoundRun(path, read_run(path)))
        except RunError as error:
            runs.append(FoundRun(path, None, str(error)))
    runs.sort(key=_started, reverse=True)
    return runs


def _started(run: FoundRun) -> float:
    """When a run began (its ``created``), else when its ``run.json`` last changed."""
    if run.info is not None:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(run.info.created).timestamp()
    try:
        return (run.path / RUN_FILE).stat().st_mtime
    except OSError:
        return 0.0


def read_metrics(run_dir: Path, last_epoch: int | None = None) -> list[dict[str, Any]]:
    """The epoch lines of ``metrics.jsonl``, in epoch order, up to ``last_epoch``.

    A line cut short by a crash, a repeated epoch and anything after a gap are left out.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    by_epoch: dict[int, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            logs = json.loads(line)
            epoch = int(logs["epoch"])
        except (ValueError, TypeError, KeyError):
            continue
        if last_epoch is None or epoch <= last_epoch:
            by_epoch[epoch] = logs
    history = []
    for epoch in range(1, len(by_epoch) + 1):
        if epoch not in by_epoch:
            break
        history.append(by_epoch[epoch])
    return history


class ResumeFiles(NamedTuple):
    """The files of an epoch's resume state: the network, the optimizer state's arrays and
    its JSON record (:mod:`.optimizer_state`)."""

    params: Path
    optimizer_arrays: Path
    optimizer_record: Path


def resume_files(run_dir: Path, epoch: int) -> ResumeFiles:
    """The files of an epoch's resume state."""
    stem = Path(run_dir) / RESUME_FOLDER / f"epoch-{epoch:04d}"
    return ResumeFiles(
        stem.with_suffix(".params"),
        stem.with_suffix(".optimizer.params"),
        stem.with_suffix(".optimizer.json"),
    )


def save_resume_state(run_dir: Path, net: HybridBlock, trainer: Trainer, epoch: int) -> None:
    """Write the network and the optimizer state after ``epoch``, each file atomically.

    Not yet the state a resume uses: ``run.json`` must name the epoch (see
    :func:`prune_resume_state` for the files of earlier epochs).
    """
    files = resume_files(run_dir, epoch)
    files.params.parent.mkdir(parents=True, exist_ok=True)
    weights = sum(param.data().size * 4 for param in net.collect_params().values())
    save_with_mxnet(files.params, net.save_parameters, weights)
    save_optimizer_state(trainer, files.optimizer_arrays, files.optimizer_record)


def load_resume_state(
    run_dir: Path, net: HybridBlock, trainer: Trainer, epoch: int, contexts: list[Any]
) -> list[str]:
    """Load the network and the optimizer state saved after ``epoch``; warnings for the user.

    The pickled optimizer state an earlier version saved (``epoch-NNNN.states``) is never
    read: the network resumes with fresh optimizer state at the run's update count.
    """
    files = resume_files(run_dir, epoch)
    legacy = files.params.with_suffix(LEGACY_STATES_SUFFIX)
    has_state = files.optimizer_arrays.is_file() and files.optimizer_record.is_file()
    if not files.params.is_file() or not (has_state or legacy.is_file()):
        raise RunError(
            f"{run_dir} cannot be resumed: the saved state of epoch {epoch} "
            f"({files.params.parent}) is missing"
        )
    mx = mxnet()
    try:
        net.load_parameters(str(files.params), ctx=contexts)
    except (AssertionError, mx.base.MXNetError) as error:  # Gluon asserts names and shapes
        raise RunError(
            f"{run_dir} cannot be resumed: {files.params.name} does not fit this run: "
            f"{first_line(error)}"
        ) from None
    if has_state:
        try:
            load_optimizer_state(trainer, files.optimizer_arrays, files.optimizer_record)
        except OptimizerStateError as error:
            raise RunError(
                f"{run_dir} cannot be resumed: its optimizer state of epoch {epoch} does not "
                f"fit this run: {error}"
            ) from None
        return []
    fresh_optimizer_state(trainer, read_run(run_dir).num_updates)
    return [
        f"{legacy.name} was saved by an earlier version in a format that can run code "
        "(pickle), so it was not read: training goes on from epoch "
        f"{epoch}'s weights with fresh optimizer state (momenta restart)"
    ]


def prune_resume_state(run_dir: Path, keep_epoch: int) -> None:
    """Delete the resume files of every epoch but ``keep_epoch``."""
    folder = Path(run_dir) / RESUME_FOLDER
    if not folder.is_dir():
        return
    kept = resume_files(run_dir, keep_epoch)
    keep = {path.name for path in (*kept, kept.params.with_suffix(LEGACY_STATES_SUFFIX))}
    for path in folder.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)
