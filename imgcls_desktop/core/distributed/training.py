"""A distributed training run, started from this process: what the CLI and the window call.

:func:`train_distributed` prepares the run folder and its packed data here
(:func:`~imgcls_desktop.core.training.loop.prepare_run`), so the workers only read ``.rec``
files, then launches the plan's workers, each running ``python -m imgcls_desktop.cli train
--resume RUN`` (:func:`worker_command`), forwards their lines and states, and returns the
run's result from its ``run.json``. A process that dies ends the run with
:class:`~.supervisor.LaunchFailed` and a Stop with a stopped run: either way every process is
gone first and the folder resumes from rank 0's last committed epoch.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from ..jobs import CancelFlag, Cancelled, ProgressFn, no_progress
from ..training.callbacks import Callback, Logs, TrainingBegan, TrainingEvent
from ..training.lock import RunLock
from ..training.loop import (
    RESUMABLE_CHANGES,
    TrainingJob,
    TrainingResult,
    prepare_run,
    result_of_run,
)
from ..training.run import RunStatus, read_run, write_run
from .commands import describe
from .events import parse_event, run_progress
from .launcher import launch
from .plan import LaunchPlan
from .supervisor import LaunchFailed, LineFn, StateFn

CLI_MODULE = "imgcls_desktop.cli"
_SPEED = re.compile(r"^epoch (\d+): ([0-9.]+) images/s$")


def worker_command(job: TrainingJob, run_dir: Path, python: str = sys.executable) -> list[str]:
    """``python -m imgcls_desktop.cli train --resume RUN`` with the job's resumable settings
    and devices: what every worker runs."""
    command = [python, "-m", CLI_MODULE, "train", "--resume", str(Path(run_dir).resolve())]
    settings = job.hyperparameters.to_strings()
    for name in sorted(RESUMABLE_CHANGES & settings.keys()):
        command += ["--set", f"{name}={settings[name]}"]
    if job.devices:
        command += ["--device", job.devices]
    return command


def describe_run(
    job: TrainingJob, plan: LaunchPlan, *, progress: ProgressFn = no_progress
) -> tuple[Path, str]:
    """Prepare the run, then the commands of ``plan`` (a ``print`` plan) that train it."""
    run_dir = prepare_run(job, progress=progress)
    return run_dir, describe(plan, worker_command(job, run_dir, "python"))


def train_distributed(
    job: TrainingJob,
    plan: LaunchPlan,
    *,
    on_line: LineFn | None = None,
    on_state: StateFn | None = None,
    on_event: Callable[[TrainingEvent], None] | None = None,
    cancel: CancelFlag | None = None,
    progress: ProgressFn = no_progress,
    training_progress: ProgressFn | None = None,
) -> TrainingResult:
    """Prepare ``job`` here, train it on the workers of ``plan``, return how it ended.

    ``progress`` counts the data prepared, then (unless ``training_progress`` is given) the
    batches trained; ``on_event`` hears rank 0's training events (:mod:`.events`) as a run
    in this process would emit them, and ``on_line`` every other line.

    Raises before any work as :func:`~imgcls_desktop.core.training.loop.train` does (and
    :class:`~imgcls_desktop.core.training.run.RunError` or ``HyperparameterError`` for what
    a distributed run cannot do), :class:`~imgcls_desktop.core.jobs.Cancelled` when
    cancelled while the data is prepared, and :class:`LaunchFailed` (the run marked failed,
    resumable) when a process dies. A cancel once the workers run stops them all and returns
    a stopped run.
    """
    run_dir = prepare_run(job, progress=progress, cancel=cancel)
    start_epoch = read_run(run_dir).last_completed_epoch + 1
    try:
        launch(
            plan,
            worker_command(job, run_dir),
            on_line=_EventReader(on_line, on_event, training_progress or progress),
            on_state=on_state,
            cancel=cancel,
            required_paths=[str(run_dir)],
            workdir=os.getcwd() if plan.kind == "ssh" else None,
        )
    except LaunchFailed as error:
        _record_end(run_dir, RunStatus.FAILED, None, str(error))
        raise
    except (Cancelled, KeyboardInterrupt):
        _record_end(run_dir, RunStatus.STOPPED, "stopped by the user", None)
    return result_of_run(run_dir, start_epoch)


class _EventReader:
    """Splits the workers' lines: rank 0's events to ``on_event`` and ``progress``, the
    rest to ``on_line``."""

    def __init__(
        self,
        on_line: LineFn | None,
        on_event: Callable[[TrainingEvent], None] | None,
        progress: ProgressFn,
    ) -> None:
        self._on_line = on_line
        self._on_event = on_event
        self._progress = progress
        self._began: TrainingBegan | None = None

    def __call__(self, name: str, text: str) -> None:
        event = parse_event(text)
        if event is None:
            if self._on_line is not None:
                self._on_line(name, text)
            return
        if isinstance(event, TrainingBegan):
            self._began = event
        done = run_progress(event, self._began)
        if done is not None:
            self._progress(*done)
        if self._on_event is not None:
            self._on_event(event)


def _record_end(run_dir: Path, status: RunStatus, reason: str | None, error: str | None) -> None:
    """Mark the run as the launcher saw it end (every worker is gone: nothing else writes)."""
    lock = RunLock(run_dir)
    lock.acquire()  # a killed rank 0 leaves a stale lock, taken over here
    try:
        info = read_run(run_dir)
        info.status, info.stop_reason, info.error = status, reason, error
        write_run(run_dir, info)
    finally:
        lock.release()


def speed_line(epoch: int, images_per_sec: float) -> str:
    """What each worker prints after an epoch's batches: its own speed."""
    return f"epoch {epoch}: {images_per_sec:.1f} images/s"


def parse_speed(text: str) -> tuple[int, float] | None:
    """``(epoch, images/s)`` of a :func:`speed_line`, or None for any other line."""
    match = _SPEED.match(text.strip())
    return None if match is None else (int(match.group(1)), float(match.group(2)))


class WorkerSpeed(Callback):
    """In a worker: say its own speed after the last batch of every epoch."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say

    def on_batch_end(self, step: int, logs: Logs) -> None:
        if logs.get("batch") == self.state.batches_per_epoch and "images_per_sec" in logs:
            self._say(speed_line(int(logs["epoch"]), float(logs["images_per_sec"])))
