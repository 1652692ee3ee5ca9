"""*Training > Export as SageMaker Job…*: the run in focus as a job file, by clicking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.gui.main_window import MainWindow
from imgcls_desktop.gui.training.sagemaker_job_dialog import SageMakerJobDialog


def _trigger(window: MainWindow, text: str) -> None:
    for menu in window.menuBar().findChildren(QMenu):
        for action in menu.actions():
            if action.text().replace("&", "") == text:
                action.trigger()
                return
    raise KeyError(text)


@pytest.fixture
def run_dir(class_folder: Path, tmp_path: Path) -> Path:
    settings = {"num_layers": 20, "image_shape": "3,32,32", "mini_batch_size": 8, "epochs": 1}
    hp = HyperParameters.from_mapping(settings)
    return train(TrainingJob(hp, class_folder, tmp_path / "runs" / "run 1")).run_dir


def test_the_run_in_focus_is_saved_as_a_job_with_the_values_typed(
    qtbot: QtBot, window: MainWindow, run_dir: Path, tmp_path: Path
) -> None:
    window.state.select_run(run_dir)
    _trigger(window, "Export as SageMaker Job…")
    dialog = window.findChild(SageMakerJobDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.job_name.text() == "imgcls-run-1"
    qtbot.keyClicks(dialog.bucket, "my-bucket")
    qtbot.keyClicks(dialog.region.lineEdit(), "eu-west-1")
    dialog.output.setText(str(tmp_path / "job.json"))

    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    request = json.loads((tmp_path / "job.json").read_text())
    assert request["TrainingJobName"] == "imgcls-run-1"
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://my-bucket/imgcls/output/"
    assert dialog.instructions.isVisible()
    assert "<ROLE_ARN>" in dialog.instructions.toPlainText()

    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)  # again: not replaced
    assert "already exists" in dialog.message.text()


def test_without_a_run_the_window_says_what_to_do_first(window: MainWindow) -> None:
    _trigger(window, "Export as SageMaker Job…")
    assert window.findChild(SageMakerJobDialog) is None
    assert "Train or select a run first" in window.statusBar().currentMessage()
