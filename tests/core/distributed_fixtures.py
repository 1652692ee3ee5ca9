"""Shared by the launcher tests: the test worker, a PID check, and what a launch reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgcls_desktop.core.distributed.supervisor import ProcessState

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("distributed_worker.py")


@pytest.fixture
def package_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler and server run ``python -m imgcls_desktop...``: from this checkout."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie left to init counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Watch:
    """Collects what the launcher reports: lines, states, PIDs, and JSON the workers say."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.states: list[ProcessState] = []
        self.said: list[dict] = []
        self.pids: set[int] = set()

    def on_line(self, name: str, text: str) -> None:
        self.lines.append((name, text))
        if text.startswith("{"):
            said = json.loads(text)
            self.said.append(said)
            if "child" in said:
                self.pids.add(said["child"])

    def on_state(self, state: ProcessState) -> None:
        self.states.append(state)
        if state.pid is not None:
            self.pids.add(state.pid)

    def assert_nothing_left(self) -> None:
        assert self.pids, "no process was started"
        assert not [pid for pid in self.pids if running(pid)]
