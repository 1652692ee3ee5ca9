"""Shared set-up of the window tests."""

from __future__ import annotations

import pytest

from imgcls_desktop.core.runtime import mxnet


@pytest.fixture(scope="session", autouse=True)
def mxnet_imported() -> None:
    """Import MXNet once, in the main thread, before the first window test.

    The app imports it in a background worker at nice 10 (``gui/workers.py``), as the
    first job that needs it would otherwise: on a loaded 2-core machine that import alone
    took over a minute, longer than any job of these tests should wait. What they test
    is the jobs, not the import; the start-up tests run the app in fresh processes.
    """
    mxnet()
