"""The Training tab's *Start from* field: fine-tuning a SageMaker model.tar.gz with another
number of classes, and the log and status bar saying which layers were loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPlainTextEdit
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.app_state import AppState
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.models import open_model
from imgcls_desktop.gui.training import TrainingTab
from imgcls_desktop.gui.workers import JobRunner
from tests.core.sagemaker_fixtures import train_sagemaker_model

TIMEOUT_MS = 300_000  # training at nice 19 on a loaded 2-core machine: minutes
pytestmark = pytest.mark.timeout(900)


def test_start_from_a_sagemaker_model_with_another_class_count(
    qtbot: QtBot, tmp_path: Path
) -> None:
    shapes = generate_sample_dataset(tmp_path / "shapes", classes=3, per_class=24, size=32)
    archive, _accuracy = train_sagemaker_model(shapes, 5, tmp_path / "model.tar.gz", epochs=2)
    jobs = JobRunner()
    state = AppState(save=None)
    tab = TrainingTab(jobs, state)
    qtbot.addWidget(tab)
    tab.show()
    try:
        state.set_training_data(shapes)
        qtbot.waitUntil(lambda: state.training_data.summary is not None, timeout=TIMEOUT_MS)
        settings = tmp_path / "hyperparameters.json"
        settings.write_text(
            json.dumps({"image_shape": "3,32,32", "mini_batch_size": "16", "epochs": "1"})
        )
        tab.load_hyperparameters_from(settings)
        assert (
            "model.tar.gz"
            in tab.setup.base_model.toolTip() + tab.setup.base_model.edit.placeholderText()
        )
        tab.setup.base_model.setText(str(archive))
        said: list[str] = []
        tab.status_message.connect(said.append)
        with qtbot.waitSignal(tab.run_finished, timeout=TIMEOUT_MS) as finished:
            assert tab.start_anyway() is not None
        qtbot.waitUntil(lambda: not jobs.running(), timeout=TIMEOUT_MS)
    finally:
        tab.stop()
        assert jobs.shutdown(TIMEOUT_MS)
    line = (
        "Started from model.tar.gz: 18 layers loaded, new head fc1 for 3 classes (the model had 5)"
    )
    log = tab.findChild(QPlainTextEdit, "trainingLog").toPlainText()
    assert line in log.splitlines()
    assert line in said
    run = finished.args[0].run_dir
    assert open_model(run).class_names == ["circle", "square", "triangle"]
