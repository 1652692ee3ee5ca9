"""Shared test helpers: small generated images in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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
