"""*Training > Pretrained Weights…*: the list, an import, a download from a model zoo on
127.0.0.1 with progress, and errors shown in the dialog."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMessageBox
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.weights import catalog, store_folder
from imgcls_desktop.gui.training.weights_dialog import PretrainedWeightsDialog, show_weights_dialog
from imgcls_desktop.gui.workers import JobHandle, JobRunner
from tests.weights_fixtures import Route, model_zoo, resnet18_file, sha1_of, zoo_zip

__all__ = ["model_zoo", "resnet18_file"]  # fixtures

TIMEOUT_MS = 120_000
CONTENT = b"generated weights " * 40_000  # 720 kB: several progress reports


@pytest.fixture(autouse=True)
def empty_mxnet_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet"))


@pytest.fixture
def jobs() -> JobRunner:
    runner = JobRunner()
    yield runner
    assert runner.shutdown(TIMEOUT_MS)


@pytest.fixture
def dialog(qtbot: QtBot, jobs: JobRunner) -> PretrainedWeightsDialog:
    window = PretrainedWeightsDialog(jobs)
    qtbot.addWidget(window)
    window.refresh()
    window.show()
    return window


def rows(dialog: PretrainedWeightsDialog) -> dict[str, list[str]]:
    table = dialog.table
    return {
        table.item(row, 0).text(): [table.item(row, c).text() for c in range(1, 4)]
        for row in range(table.rowCount())
    }


def test_lists_the_backbones_and_imports_a_file(
    qtbot: QtBot, dialog: PretrainedWeightsDialog, resnet18_file: Path
) -> None:
    listed = rows(dialog)
    assert list(listed) == [f"resnet{d}_v1" for d in (18, 34, 50, 101, 152)]
    assert all(state == ["not on disk", "", ""] for state in listed.values())
    assert not dialog.cancel_button.isEnabled()
    with qtbot.waitSignal(dialog.weights_changed, timeout=TIMEOUT_MS) as placed:
        dialog.import_path(resnet18_file)
        assert dialog.cancel_button.isEnabled() and not dialog.import_button.isEnabled()
    assert placed.args[0].backbone.name == "resnet18_v1"
    qtbot.waitUntil(lambda: rows(dialog)["resnet18_v1"][0] == "on disk", timeout=TIMEOUT_MS)
    assert rows(dialog)["resnet18_v1"] == [
        "on disk",
        "46.8 MB",
        f"imported from {resnet18_file}",
    ]
    assert "resnet18_v1 is on this computer" in dialog.status.text()


def test_downloads_after_asking_with_progress(
    qtbot: QtBot,
    dialog: PretrainedWeightsDialog,
    jobs: JobRunner,
    model_zoo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = {"resnet34_v1": sha1_of(CONTENT)}
    monkeypatch.setattr(catalog, "mxnet_checksums", lambda: table)
    file_name = f"resnet34_v1-{table['resnet34_v1'][:8]}"
    url = model_zoo.serve(file_name, Route(zoo_zip(f"{file_name}.params", CONTENT)))
    reports: list[tuple[int, int]] = []
    jobs.job_started.connect(lambda handle: handle.progress.connect(lambda *r: reports.append(r)))
    dialog.select("resnet34_v1")
    box = dialog.ask_download()
    assert isinstance(box, QMessageBox)
    assert url in box.text() and "about 87 MB" in box.text() and str(store_folder()) in box.text()
    with qtbot.waitSignal(dialog.weights_changed, timeout=TIMEOUT_MS):
        box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: rows(dialog)["resnet34_v1"][0] == "on disk", timeout=TIMEOUT_MS)
    assert rows(dialog)["resnet34_v1"][2] == f"downloaded from {url}"
    assert reports and reports[-1][0] == reports[-1][1] > len(CONTENT)
    assert dialog.ask_download() is None  # on disk: nothing to download
    assert not dialog.download_button.isEnabled()


def test_a_failed_download_is_explained_in_the_dialog(
    qtbot: QtBot, dialog: PretrainedWeightsDialog, model_zoo
) -> None:
    dialog.select("resnet50_v1")
    handle = dialog.download(catalog.backbone_named("resnet50_v1"))
    assert isinstance(handle, JobHandle)
    qtbot.waitSignal(handle.finished, timeout=TIMEOUT_MS).wait()
    assert dialog.status.text().startswith("Cannot download: ")
    assert "answered 404" in dialog.status.text()
    assert rows(dialog)["resnet50_v1"][0] == "not on disk"


def test_the_training_menu_shows_the_dialog(window) -> None:
    window.tabs.setCurrentWidget(window.inference_tab)
    action = next(
        action
        for menu in window.menuBar().findChildren(QMenu)
        for action in menu.actions()
        if action.text().replace("&", "") == "Pretrained Weights…"
    )
    assert isinstance(action, QAction)
    action.trigger()
    assert window.tabs.currentWidget() is window.training_tab
    dialog = window.findChild(PretrainedWeightsDialog, "pretrainedWeights")
    assert dialog.isVisible() and dialog.table.rowCount() == 5
    assert show_weights_dialog(window.jobs, window.training_tab) is dialog
    dialog.close()
