"""The augmentation preview window, driven as the Training tab and a user drive it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QMessageBox
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.training.preview import AugmentationPreview
from imgcls_desktop.gui.training.augmentation_preview import (
    IMAGES,
    TILE_SIDE,
    VERSIONS,
    AugmentationPreviewDialog,
)
from imgcls_desktop.gui.workers import JobRunner

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_sample_dataset(
        tmp_path_factory.mktemp("data") / "shapes", classes=3, per_class=6, size=40
    )


@pytest.fixture
def dialog(qtbot: QtBot) -> AugmentationPreviewDialog:
    jobs = JobRunner()
    window = AugmentationPreviewDialog(jobs)
    qtbot.addWidget(window)
    yield window
    assert jobs.shutdown(TIMEOUT_MS)


def _hp(augmentation_type: str) -> HyperParameters:
    return HyperParameters.from_mapping(
        {"image_shape": "3,32,32", "augmentation_type": augmentation_type}
    )


def _texts(dialog: AugmentationPreviewDialog) -> list[str]:
    return [label.text() for label in dialog.grid_area.widget().findChildren(QLabel)]


def test_shows_the_grid_of_the_training_tabs_settings(
    qtbot: QtBot, dialog: AugmentationPreviewDialog, shapes: Path
) -> None:
    with qtbot.waitSignal(dialog.preview_shown, timeout=TIMEOUT_MS) as shown:
        assert dialog.show_preview(str(shapes), _hp("crop")) is not None
    preview: AugmentationPreview = shown.args[0]
    assert dialog.isVisible() and not dialog.isModal()
    assert dialog.augmentation.currentText() == "crop" == preview.augmentation_type
    assert len(preview.rows) == IMAGES and preview.versions == VERSIONS
    texts = _texts(dialog)
    headers = ["<b>original</b>"] + [f"<b>{n}</b>" for n in range(1, VERSIONS + 1)]
    assert texts[: VERSIONS + 1] == headers
    for row in preview.rows:
        assert any(text.startswith(f"<b>{row.class_name}</b>") for text in texts)
    tiles = [label for label in dialog.grid_area.widget().findChildren(QLabel) if label.pixmap()]
    assert len(tiles) == IMAGES * (1 + VERSIONS)
    assert {label.pixmap().width() for label in tiles} == {TILE_SIDE}  # 32 px, 4 x larger
    assert "rand_crop=True" in dialog.details.text()
    assert "crop also mirrors images left-right" in dialog.details.text()  # issue 11
    screen, grid = dialog.screen().availableGeometry(), dialog.grid_area.widget().sizeHint()
    assert dialog.width() >= min(grid.width(), screen.width())  # grown to show the grid


def test_another_augmentation_type_keeps_the_images_and_shuffle_changes_them(
    qtbot: QtBot, dialog: AugmentationPreviewDialog, shapes: Path
) -> None:
    with qtbot.waitSignal(dialog.preview_shown, timeout=TIMEOUT_MS) as shown:
        dialog.show_preview(str(shapes), _hp("none"))
    first = shown.args[0]
    with qtbot.waitSignal(dialog.preview_shown, timeout=TIMEOUT_MS) as shown:
        dialog.augmentation.setCurrentText("crop_color")
    coloured = shown.args[0]
    assert coloured.augmentation_type == "crop_color" and coloured.seed == first.seed
    assert [row.source for row in coloured.rows] == [row.source for row in first.rows]
    with qtbot.waitSignal(dialog.preview_shown, timeout=TIMEOUT_MS) as shown:
        dialog.shuffle_button.click()
    shuffled = shown.args[0]
    assert shuffled.seed == first.seed + 1 and shuffled.augmentation_type == "crop_color"
    assert [row.source for row in shuffled.rows] != [row.source for row in first.rows]


def test_a_request_while_computing_replaces_it(
    qtbot: QtBot, dialog: AugmentationPreviewDialog, shapes: Path
) -> None:
    shown: list[AugmentationPreview] = []
    dialog.preview_shown.connect(shown.append)
    first = dialog.show_preview(str(shapes), _hp("crop"))
    latest = dialog.show_preview(str(shapes), _hp("crop_color_transform"))
    assert first is not None and latest is not None and first.is_cancelling
    with qtbot.waitSignal(latest.finished, timeout=TIMEOUT_MS):
        pass
    assert shown and shown[-1].augmentation_type == "crop_color_transform"
    assert dialog.preview is shown[-1]


def test_errors_are_shown(qtbot: QtBot, dialog: AugmentationPreviewDialog, tmp_path: Path) -> None:
    handle = dialog.show_preview(str(tmp_path / "missing"), _hp("crop"))
    with qtbot.waitSignal(handle.finished, timeout=TIMEOUT_MS):
        pass
    box = dialog.findChild(QMessageBox, "errorDialog")
    assert box is not None and "does not exist" in box.text()
    assert dialog.preview is None
    box.close()
    assert dialog.show_preview("", _hp("crop")) is None
    assert "training data first" in dialog.findChildren(QMessageBox, "errorDialog")[-1].text()
