"""Fixtures of the fault-injection suite, and the summary line it prints at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, write_image

from tests.core.inference_fixtures import shared_run

from .harness import SESSION_HOME, TALLY, stop_server


@pytest.fixture(scope="session")
def probe_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One image to predict with every model the checks open."""
    return write_image(tmp_path_factory.mktemp("probe") / "probe.png", CLASS_COLOURS["owl"])


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small trained run folder (shared with the inference tests): never write into it."""
    return shared_run(tmp_path_factory)[0]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many fault points the suite tried and how many invariants it checked."""
    if TALLY.faults or TALLY.invariants:
        terminalreporter.write_line(TALLY.summary())


@pytest.fixture(scope="session", autouse=True)
def launcher_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give jobs run by module fixtures an app folder of their own; stop the launcher's
    server (started by the first job) at the end of the session."""
    SESSION_HOME.append(tmp_path_factory.mktemp("faults_home"))
    yield
    stop_server()
    SESSION_HOME.clear()
