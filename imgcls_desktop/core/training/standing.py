"""Where a run folder stands, in words, and whether it can be resumed (and why not).

The window's run list, its Resume button and the command line's ``--resume`` read the same
answer: a run can continue unless it finished all its epochs, another process trains it,
or its folder is damaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgcls_desktop.core.training.lock import busy_reason, lock_owner
from imgcls_desktop.core.training.run import FoundRun, RunError, RunInfo, RunStatus, read_run


@dataclass(frozen=True)
class RunStanding:
    """A run folder's state: ``status`` in words (e.g. "stopped at epoch 9 of 60"), and
    ``resume_blocker``, why Resume cannot continue it (None: it can)."""

    path: Path
    info: RunInfo | None
    status: str
    resume_blocker: str | None

    @property
    def can_resume(self) -> bool:
        """True when Resume can continue this run."""
        return self.resume_blocker is None


def run_standing(run_dir: Path) -> RunStanding:
    """How the run in ``run_dir`` stands now (its ``run.json`` and its lock)."""
    try:
        return standing_of(FoundRun(Path(run_dir), read_run(run_dir)))
    except RunError as error:
        return standing_of(FoundRun(Path(run_dir), None, str(error)))


def standing_of(run: FoundRun) -> RunStanding:
    """How a listed run stands now."""
    info = run.info
    if info is None:
        reason = run.damaged or "its run.json cannot be read"
        return RunStanding(run.path, None, "damaged", f"This run folder is damaged: {reason}")
    owner = lock_owner(run.path)
    if owner is not None:
        status = f"training: process {owner.pid} on {owner.host}"
        return RunStanding(run.path, info, status, busy_reason(run.path) or status)
    done, target = info.last_completed_epoch, info.epochs
    state = RunStatus(info.status)
    if not info.can_continue():
        blocker = f"This run finished all its {target} epochs; Start Training makes a new run."
        return RunStanding(run.path, info, f"finished ({target} epochs)", blocker)
    where = f"at epoch {done} of {target}" if done else f"before epoch 1 of {target} ended"
    words = {
        RunStatus.RUNNING: f"interrupted {where}",
        RunStatus.STOPPED: f"stopped {where}",
        RunStatus.EARLY_STOPPED: f"stopped early {where}",
        RunStatus.FAILED: f"failed {where}",
        RunStatus.FINISHED: f"finished {where}",
    }
    return RunStanding(run.path, info, words[state], None)
