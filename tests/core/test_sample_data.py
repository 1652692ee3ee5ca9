"""The sample data set generator: layout, determinism, refusals, cancelling, difficulty."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from imgcls_desktop.core.dataset.sample_data import SHAPES, generate_sample_dataset
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.dataset.scan import scan_dataset
from imgcls_desktop.core.jobs import Cancelled


def file_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.jpg")}


def test_layout_counts_and_sizes(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    out = tmp_path / "new" / "sample"
    root = generate_sample_dataset(
        out, classes=len(SHAPES), per_class=3, size=24, progress=lambda *c: calls.append(c)
    )
    assert root == out
    assert sorted(p.name for p in root.iterdir()) == sorted(SHAPES)
    for shape in SHAPES:
        names = sorted(p.name for p in (root / shape).iterdir())
        assert names == [f"{shape}_{n:04d}.jpg" for n in range(3)]
        for name in names:
            data = (root / shape / name).read_bytes()
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            assert image.shape == (24, 24, 3)
    total = len(SHAPES) * 3
    assert calls[0] == (0, total) and calls[-1] == (total, total) and len(calls) == total + 1


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = file_bytes(generate_sample_dataset(tmp_path / "a", classes=3, per_class=4, size=32))
    again = file_bytes(generate_sample_dataset(tmp_path / "b", classes=3, per_class=4, size=32))
    other = file_bytes(
        generate_sample_dataset(tmp_path / "c", classes=3, per_class=4, size=32, seed=1)
    )
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)
    # An image does not depend on how many others are generated.
    more = file_bytes(generate_sample_dataset(tmp_path / "d", classes=4, per_class=6, size=32))
    assert all(more[name] == data for name, data in first.items())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"classes": len(SHAPES) + 1}, f"2 to {len(SHAPES)} classes"),
        ({"classes": 1}, "2 to"),
        ({"per_class": 0}, "at least 1"),
        ({"size": 8}, "at least 16 pixels"),
        ({"seed": -1}, "zero or positive"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_sample_dataset(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_a_folder_with_files_is_not_written_into(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_sample_dataset(tmp_path, per_class=1)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    generate_sample_dataset(empty, classes=2, per_class=1, size=16)


def test_cancel_leaves_only_complete_images(tmp_path: Path) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 7:
            cancel.set()

    with pytest.raises(Cancelled):
        generate_sample_dataset(
            tmp_path / "out", per_class=5, size=32, progress=progress, cancel=cancel
        )
    files = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert len(files) == 7
    for path in files:
        assert path.suffix == ".jpg"
        assert cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR).shape == (32, 32, 3)


def test_generated_set_passes_the_health_scan(tmp_path: Path) -> None:
    root = generate_sample_dataset(tmp_path / "out", classes=3, per_class=10, size=32)
    names = sorted(p.name for p in root.iterdir())
    samples = [
        Sample(str(path), (label,))
        for label, name in enumerate(names)
        for path in sorted((root / name).iterdir())
    ]
    report = scan_dataset(Dataset(names, samples, SourceKind.FOLDER, root, root=root))
    assert not report.has_problems()
    assert report.class_counts == [10, 10, 10]


def test_colour_does_not_tell_the_classes_apart(tmp_path: Path) -> None:
    """A nearest-mean-colour classifier fitted on half the images is near chance on the rest."""
    per_class = 60
    root = generate_sample_dataset(tmp_path / "out", classes=4, per_class=per_class, size=32)
    features = np.array(
        [
            [
                cv2.imread(str(root / shape / f"{shape}_{n:04d}.jpg")).mean(axis=(0, 1))
                for n in range(per_class)
            ]
            for shape in SHAPES[:4]
        ]
    )  # (class, image, BGR)
    half = per_class // 2
    centroids = features[:, :half].mean(axis=1)
    held_out = features[:, half:]
    distances = np.linalg.norm(held_out[:, :, None, :] - centroids[None, None], axis=-1)
    accuracy = (distances.argmin(axis=-1) == np.arange(4)[:, None]).mean()
    assert accuracy < 0.4  # chance is 0.25
