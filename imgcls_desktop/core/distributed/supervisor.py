"""Start a set of processes, forward their output, and stop them all when one fails.

Each process runs in its own session (its own process group), so stopping it also stops
whatever it started: SIGTERM to the group, then SIGKILL after a grace period. Whatever ends
:func:`run_processes` (the workers finishing, a process failing, the cancel flag, Ctrl-C),
no process it started is left running when it returns or raises. Each process's stdin is a
pipe the supervisor never writes to: :mod:`.lifeline` lets it notice the launcher is gone.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Callable

from ..jobs import CancelFlag, check_cancel
from .commands import ProcessSpec

POLL_SECONDS = 0.1
"""How often the cancel flag and the processes' exits are checked."""


@dataclass(frozen=True)
class ProcessState:
    """One process as the run view shows it: ``starting``, ``running``, ``exited`` (with its
    ``returncode``; negative: killed by that signal) or ``stopped`` (by the launcher)."""

    name: str
    role: str
    rank: int
    state: str
    pid: int | None = None
    returncode: int | None = None


LineFn = Callable[[str, str], None]
"""``on_line(name, text)``: one line of a process's output (stdout and stderr merged)."""
StateFn = Callable[[ProcessState], None]


class LaunchFailed(RuntimeError):
    """A process ended with an error, or too early; everything else was stopped.

    ``str()`` is one line naming the process; ``last_lines`` holds its last output lines.
    """

    def __init__(self, message: str, last_lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.last_lines = list(last_lines)


def format_line(name: str, text: str) -> str:
    """``[worker 1] text``: how the CLI prints a forwarded line."""
    return f"[{name}] {text}"


def _exit_text(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class _Process:
    """A started process, its reader thread and its last lines."""

    def __init__(self, spec: ProcessSpec, popen: subprocess.Popen[bytes], keep: int) -> None:
        self.spec = spec
        self.popen = popen
        self.last = deque[str](maxlen=keep)
        self.reader: threading.Thread | None = None
        self.returncode: int | None = None
        self.last_state = "running"

    def state(self, state: str) -> ProcessState:
        """Its state now (``state`` is remembered as the last one reported)."""
        self.last_state = state
        spec = self.spec
        return ProcessState(spec.name, spec.role, spec.rank, state, self.popen.pid, self.returncode)


def _read_lines(index: int, stream: IO[bytes], lines: queue.Queue[tuple[int, str]]) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            lines.put((index, raw.decode("utf-8", "replace").rstrip("\r\n")))


class _Supervisor:
    def __init__(self, on_line: LineFn, on_state: StateFn, keep: int) -> None:
        self.on_line = on_line
        self.on_state = on_state
        self.keep = keep
        self.lines: queue.Queue[tuple[int, str]] = queue.Queue()
        self.processes: list[_Process] = []

    def start(self, spec: ProcessSpec) -> None:
        self.on_state(ProcessState(spec.name, spec.role, spec.rank, "starting"))
        try:
            popen = subprocess.Popen(
                spec.argv,
                env={**os.environ, **spec.env},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            message = f"cannot start {spec.name} ({spec.argv[0]}): {error.strerror}"
            raise LaunchFailed(message) from None
        process = _Process(spec, popen, self.keep)
        assert popen.stdout is not None
        process.reader = threading.Thread(
            target=_read_lines,
            args=(len(self.processes), popen.stdout, self.lines),
            name=f"output of {spec.name}",
            daemon=True,
        )
        self.processes.append(process)
        process.reader.start()
        self.on_state(process.state("running"))

    def forward(self, timeout: float) -> None:
        """Pass on the lines read so far, waiting up to ``timeout`` for the first."""
        try:
            index, text = self.lines.get(timeout=timeout)
            while True:
                process = self.processes[index]
                process.last.append(text)
                self.on_line(process.spec.name, text)
                index, text = self.lines.get_nowait()
        except queue.Empty:
            return

    def reap(self) -> list[_Process]:
        """The processes that exited since the last call (their output read to the end)."""
        ended = []
        for process in self.processes:
            if process.returncode is None and process.popen.poll() is not None:
                process.returncode = process.popen.returncode
                assert process.reader is not None
                process.reader.join(timeout=5)
                self.forward(0)
                self.on_state(process.state("exited"))
                ended.append(process)
        return ended

    def running(self, role: str | None = None) -> list[_Process]:
        return [
            process
            for process in self.processes
            if process.returncode is None and role in (None, process.spec.role)
        ]

    def stop(self, grace: float) -> None:
        """SIGTERM to every running process group, SIGKILL to those left after ``grace``."""
        running = self.running()
        _signal_groups(running, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        _signal_groups(running, signal.SIGKILL)
        for process in running:
            process.popen.wait()
        for process in self.processes:
            assert process.popen.stdin is not None
            process.popen.stdin.close()  # the lifeline of a process that outlived us
        for process in running:
            process.returncode = process.popen.returncode
            if process.reader is not None:
                process.reader.join(timeout=5)
        self.forward(0)
        for process in running:
            self.on_state(process.state("stopped"))


def _signal_groups(processes: list[_Process], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group of each of ``processes`` still running."""
    for process in processes:
        if process.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, sig)


def _failure(process: _Process) -> LaunchFailed:
    last = list(process.last)
    said = next((f" (last line: {line.strip()!r})" for line in reversed(last) if line.strip()), "")
    message = f"{process.spec.name} {_exit_text(process.popen.returncode)}{said}"
    return LaunchFailed(f"{message}; every other process was stopped", last)


def run_processes(
    specs: Sequence[ProcessSpec],
    *,
    on_line: LineFn | None = None,
    on_state: StateFn | None = None,
    cancel: CancelFlag | None = None,
    grace: float = 5.0,
    finish_timeout: float = 60.0,
    last_lines: int = 20,
) -> list[ProcessState]:
    """Run ``specs`` until every worker has exited with 0; return the final states.

    Callbacks run in the calling thread. Raises :class:`LaunchFailed` when any process
    exits with an error or a signal (a scheduler or server exits with 0 only once every
    worker has left: ps-lite's finalize waits for all nodes), and
    :class:`~imgcls_desktop.core.jobs.Cancelled` when ``cancel`` is set; in every case
    (Ctrl-C too) all processes are stopped first. Once the workers are done, the scheduler
    and servers get ``finish_timeout`` seconds to exit by themselves before being stopped.
    """
    supervisor = _Supervisor(on_line or _drop_line, on_state or _drop_state, last_lines)
    try:
        for spec in specs:
            supervisor.start(spec)
        deadline = math.inf
        while supervisor.running() and time.monotonic() < deadline:
            supervisor.forward(POLL_SECONDS)
            check_cancel(cancel)
            for process in supervisor.reap():
                if process.returncode:
                    raise _failure(process)
            if deadline == math.inf and not supervisor.running("worker"):
                deadline = time.monotonic() + finish_timeout
    finally:
        supervisor.stop(grace)
    return [process.state(process.last_state) for process in supervisor.processes]


def _drop_line(_name: str, _text: str) -> None:
    """An ``on_line`` that drops the lines."""


def _drop_state(_state: ProcessState) -> None:
    """An ``on_state`` that drops the states."""
