"""Shared test helpers: small generated images in temporary folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from imgcls_desktop.core.dataset.folder import import_folder
from imgcls_desktop.core.dataset.recordio_export import ExportOptions, export_recordio
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.dataset.split import SplitAssignment
from imgcls_desktop.core.runtime import mxnet

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication
    from pytestqt.qtbot import QtBot

    from imgcls_desktop.gui.main_window import MainWindow

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# CI shares 2 cores with other work: Hypothesis judges nothing by how fast examples come.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")

CLASS_COLOURS = {"cat": (40, 40, 200), "dog": (40, 200, 40), "owl": (200, 40, 40)}


def write_image(
    path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (32, 32), seed: int = 0
) -> Path:
    """Write a small noisy image of one dominant BGR colour; the encoder follows the suffix."""
    rng = np.random.default_rng(seed)
    height, width = size
    image = np.clip(
        np.array(colour, dtype=np.float32) + rng.normal(0, 20, (height, width, 3)), 0, 255
    ).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    """A folder-per-class data set: cat, dog, owl with 6 JPEGs of 32 x 32 each."""
    root = tmp_path / "images"
    for class_index, (name, colour) in enumerate(sorted(CLASS_COLOURS.items())):
        for i in range(6):
            write_image(root / name / f"{name}_{i}.jpg", colour, seed=class_index * 100 + i)
    return root


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point every app folder (settings, data, cache) at a fresh temporary folder."""
    home = tmp_path_factory.mktemp("imgcls_home")
    monkeypatch.setenv("IMGCLS_HOME", str(home))
    return home


@pytest.fixture
def records(class_folder: Path, tmp_path: Path) -> Dataset:
    """The class folder (cat, dog, owl, 6 images each) packed as it is into one ``.rec``."""
    folder_set = import_folder(class_folder)
    everything = tuple(range(len(folder_set.samples)))
    export_recordio(
        folder_set,
        tmp_path / "packed",
        assignment=SplitAssignment(everything, (), (), 0.0, 0.0, 0),
        options=ExportOptions(pass_through=True, workers=1),
    )
    return load_dataset(tmp_path / "packed" / "dataset-train.rec")


@pytest.fixture(scope="session")
def qapp(qapp: QApplication) -> QApplication:
    """pytest-qt's application, with MXNet imported first, in the main thread.

    The window imports MXNet in a background worker at nice 10 (``gui/workers.py``), as
    would the first job needing it: on a loaded 2-core machine that import alone took over a
    minute, longer than a job in these tests should wait. They test the jobs, not the
    import; the start-up tests run the app in fresh processes.
    """
    mxnet()
    return qapp


@pytest.fixture
def window(qtbot: QtBot) -> Iterator[MainWindow]:
    """The main window, shown; closed (its jobs stopped) after the test."""
    from imgcls_desktop.gui.main_window import MainWindow

    main_window = MainWindow()
    qtbot.addWidget(main_window)
    main_window.show()
    yield main_window
    main_window.close()
