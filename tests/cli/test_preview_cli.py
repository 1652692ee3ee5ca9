"""``imgcls preview-augmentation`` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from imgcls_desktop.cli import main
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_sample_dataset(
        tmp_path_factory.mktemp("data") / "shapes", classes=3, per_class=6, size=40
    )


def test_writes_a_png_grid_of_the_expected_size(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "grid.png"
    arguments = ["preview-augmentation", str(shapes), "--output", str(output)]
    options = ["--set", "image_shape=3,32,32", "--images", "3", "--versions", "5"]
    assert main([*arguments, *options, "--augmentation-type", "crop_color"]) == 0
    grid = cv2.imread(str(output))
    assert grid.shape == (4 + 3 * 36, 4 + 6 * 36, 3)  # 3 rows; original + 5 versions
    out = capsys.readouterr().out
    assert "augmentation_type=crop_color: rand_crop=True" in out
    assert sum(line.startswith("  row ") for line in out.splitlines()) == 3
    assert [path.name for path in tmp_path.iterdir()] == ["grid.png"]  # no temporary left


def test_hyperparameters_file_then_set_then_augmentation_type(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "hp.json"
    settings.write_text(json.dumps({"image_shape": "3,24,24", "augmentation_type": "crop"}))
    output = tmp_path / "grid.png"
    arguments = ["preview-augmentation", str(shapes), "--output", str(output), "--images", "1"]
    assert main([*arguments, "--hyperparameters", str(settings), "--versions", "2"]) == 0
    assert cv2.imread(str(output)).shape == (4 + 28, 4 + 3 * 28, 3)
    out = capsys.readouterr().out
    assert "augmentation_type=crop:" in out
    assert "Note: augmentation_type crop also mirrors images left-right" in out  # issue 11
    options = ["--set", "augmentation_type=crop_color", "--augmentation-type", "none"]
    assert main([*arguments, "--hyperparameters", str(settings), *options]) == 0
    out = capsys.readouterr().out
    assert "augmentation_type=none: no augmentation" in out and "mirrors" not in out
    grid = cv2.imread(str(output))
    assert np.array_equal(grid[4:28, 4:28], grid[4:28, 32:56])  # none: version = original


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "resize=20"], "resize: 20 is not larger"),
        (["--versions", "40"], "versions must be 1-16"),
        (["--set", "augmentaton_type=crop"], "augmentation_type"),
    ],
)
def test_bad_settings_are_one_line_errors(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    output = tmp_path / "grid.png"
    assert main(["preview-augmentation", str(shapes), "--output", str(output), *extra]) == 1
    assert message in capsys.readouterr().err
    assert not output.exists()


def test_only_png_output(shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-augmentation", str(shapes), "--output", str(tmp_path / "g.jpg")]) == 1
    assert "must be a .png file" in capsys.readouterr().err
