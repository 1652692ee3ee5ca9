"""Distributed training in the Training tab: the Processes field and the processes' table.

An empty field trains in this process; ``local:2`` (with ``kv_store=dist_sync`` or
``dist_async``) prepares the run here and trains it on two worker processes, as ``imgcls
train --launch local:2`` does (:func:`~imgcls_desktop.core.distributed.training.
train_distributed`). The table shows each process's state and each worker's last speed;
their lines go to the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import QLineEdit, QTableWidget, QTableWidgetItem, QWidget

from imgcls_desktop.core.distributed.plan import LaunchPlan, LaunchSpecError, parse_launch
from imgcls_desktop.core.distributed.supervisor import ProcessState, format_line
from imgcls_desktop.core.distributed.training import parse_speed, train_distributed
from imgcls_desktop.core.jobs import JobContext
from imgcls_desktop.core.training.loop import TrainingJob, TrainingResult

_COLUMNS = ("Process", "State", "Speed")


@dataclass(frozen=True)
class ProcessLine:
    """One output line of a launched process (an event of the training job)."""

    name: str
    text: str

    def __str__(self) -> str:
        return format_line(self.name, self.text)


def run_distributed_training(
    training: TrainingJob, plan: LaunchPlan, job: JobContext
) -> TrainingResult:
    """Train on the processes of ``plan``; their lines, their states and rank 0's training
    events (the curves) go to ``job.emit``."""
    return train_distributed(
        training,
        plan,
        on_line=lambda name, text: job.emit(ProcessLine(name, text)),
        on_state=job.emit,
        on_event=job.emit,
        cancel=job.cancel,
        progress=job.progress,
    )


class ProcessesField(QLineEdit):
    """Where to train: empty for this process, ``local:N[,servers=M]`` or ``ssh:HOSTS_FILE``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("processes")
        self.setPlaceholderText("One process; local:2 trains on 2 workers")
        self.setToolTip(
            "With kv_store=dist_sync or dist_async (Advanced): local:N[,servers=M] trains on N "
            "worker processes of this computer, ssh:HOSTS_FILE on the hosts listed (one a "
            "line). The effective batch is mini_batch_size x workers, as on SageMaker. Empty: "
            "one process."
        )

    def plan(self) -> LaunchPlan | None:
        """The launch plan asked for; None for one process. Raises :class:`LaunchSpecError`."""
        spec = self.text().strip()
        if not spec:
            return None
        plan = parse_launch(spec)
        if plan.kind == "print":
            raise LaunchSpecError(
                "print only describes the processes: use imgcls train --launch print"
            )
        return plan


class ProcessTable(QTableWidget):
    """One row a process: its name, its state (with its PID) and a worker's last speed;
    every line a process prints goes to ``log``."""

    def __init__(self, log: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(0, len(_COLUMNS), parent)
        self._log = log
        self.setObjectName("processTable")
        self.setToolTip(
            "The processes of a run on several workers (Processes field): the scheduler, the "
            "servers and each worker, its state and its last speed; their output is in the Log"
        )
        self.setHorizontalHeaderLabels(_COLUMNS)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self._rows: dict[str, int] = {}

    def clear_processes(self) -> None:
        """Forget the processes of the previous run."""
        self.setRowCount(0)
        self._rows.clear()

    def show_event(self, event: object) -> None:
        """Show a process's new state, or a line it printed (a worker's speed in the table)."""
        if isinstance(event, ProcessState):
            state = event.state if event.pid is None else f"{event.state} (PID {event.pid})"
            if event.returncode is not None:
                state += f", exit {event.returncode}"
            self._set(event.name, 1, state)
        elif isinstance(event, ProcessLine):
            self._log(str(event))
            speed = parse_speed(event.text)
            if speed is not None:
                self._set(event.name, 2, f"epoch {speed[0]}: {speed[1]:.0f} images/s")

    def cell(self, name: str, column: int) -> str:
        """The text in ``name``'s row and ``column`` ("" if none)."""
        item = self.item(self._rows[name], column) if name in self._rows else None
        return "" if item is None else item.text()

    def _set(self, name: str, column: int, text: str) -> None:
        if name not in self._rows:
            self._rows[name] = self.rowCount()
            self.insertRow(self.rowCount())
            self.setItem(self._rows[name], 0, QTableWidgetItem(name))
        self.setItem(self._rows[name], column, QTableWidgetItem(text))
