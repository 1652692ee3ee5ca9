"""The augmentation preview: training's own iterator, on a few training images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training_fixtures import (
    CLASS_NAMES,
    quick_hp,
    shared_colour_folder,
    shared_colour_records,
    write_colour_set,
    write_multi_label_set,
)

from imgcls_desktop.core.hyperparams import HyperparameterError, HyperParameters
from imgcls_desktop.core.jobs import Cancelled
from imgcls_desktop.core.training.iterators import AUGMENTATIONS, train_iter_arguments
from imgcls_desktop.core.training.packing import ScannedSource, prepare_data, scan_source
from imgcls_desktop.core.training.preview import augmented_samples, preview_grid


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> ScannedSource:
    """3 classes x 6 images of 40 x 48: larger than the 32 x 32 crop plus its margin."""
    return scan_source(write_colour_set(tmp_path_factory.mktemp("preview") / "images", 6, (40, 48)))


def _hp(augmentation_type: str, **changes: object) -> HyperParameters:
    return quick_hp(augmentation_type=augmentation_type, **changes)


def test_without_augmentation_every_version_is_the_original(colours: ScannedSource) -> None:
    preview = augmented_samples(colours, _hp("none"), images=3, versions=4)
    assert len(preview.rows) == 3 and preview.versions == 4
    for row in preview.rows:
        assert row.original.shape == (32, 32, 3) and row.original.dtype == np.uint8
        assert row.original.std() > 5  # a real image, not a blank
        assert all(np.array_equal(version, row.original) for version in row.versions)
    assert "32 × 32 cropped" in preview.describe() and "no augmentation" in preview.describe()


def test_crop_gives_different_versions_of_the_same_shape_and_colour(
    colours: ScannedSource,
) -> None:
    preview = augmented_samples(colours, _hp("crop"), images=3, versions=6)
    assert preview.shorter_side == 37  # 32 * 8/7: room for the random crop
    for row in preview.rows:
        assert {version.shape for version in row.versions} == {(32, 32, 3)}
        assert len({version.tobytes() for version in row.versions}) > 1
        assert _largest_colour_shift(row.original, row.versions) < 8


def test_crop_color_changes_the_colours(colours: ScannedSource) -> None:
    preview = augmented_samples(colours, _hp("crop_color"), images=3, versions=6)
    for row in preview.rows:
        assert _largest_colour_shift(row.original, row.versions) > 20


def _largest_colour_shift(original: np.ndarray, versions: tuple[np.ndarray, ...]) -> float:
    mean = original.reshape(-1, 3).mean(axis=0)
    return max(float(np.abs(v.reshape(-1, 3).mean(axis=0) - mean).max()) for v in versions)


def test_a_seed_repeats_a_preview_and_the_next_one_differs(colours: ScannedSource) -> None:
    hp = _hp("crop_color_transform")
    first, again = (augmented_samples(colours, hp, seed=5) for _ in range(2))
    other = augmented_samples(colours, hp, seed=6)
    assert [row.source for row in first.rows] == [row.source for row in again.rows]
    for row, repeated in zip(first.rows, again.rows):
        assert all(map(np.array_equal, row.versions, repeated.versions))
    assert not all(
        np.array_equal(a, b)
        for row, changed in zip(first.rows, other.rows)
        for a, b in zip(row.versions, changed.versions)
    )


def test_one_image_per_class_first_then_distinct_images(colours: ScannedSource) -> None:
    three = augmented_samples(colours, _hp("none"), images=3, versions=1, seed=2)
    assert sorted(row.class_name for row in three.rows) == CLASS_NAMES
    seven = augmented_samples(colours, _hp("none"), images=7, versions=1, seed=2)
    assert len({row.source for row in seven.rows}) == 7
    assert sorted({row.class_name for row in seven.rows}) == CLASS_NAMES


def test_the_preview_reads_with_the_training_iterators_arguments(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    hp = _hp("crop_color_transform", image_shape="3,28,28")
    data = prepare_data(folder, None, tmp_path / "run", hp)
    training = train_iter_arguments(
        data.train_rec,
        data.train_idx,
        hp,
        16,
        label_width=data.label_width,
        resize=data.train_resize,
    )
    preview = augmented_samples(scan_source(folder), hp, images=2, versions=3, seed=1)
    assert preview.shorter_side == data.shorter_side
    arguments = preview.iterator_arguments
    differing = {
        name
        for name in training.keys() | arguments.keys()
        if training.get(name) != arguments.get(name)
    }
    assert differing == {"path_imgrec", "path_imgidx", "batch_size", "shuffle", "seed", "seed_aug"}
    assert arguments["shuffle"] is False and arguments["batch_size"] == 6
    assert AUGMENTATIONS["crop_color_transform"].items() <= arguments.items()


def test_a_rec_is_previewed_directly(tmp_path_factory: pytest.TempPathFactory) -> None:
    records = shared_colour_records(tmp_path_factory)
    source = scan_source(records / "dataset-train.rec")
    preview = augmented_samples(source, _hp("crop"), images=3, versions=2)
    assert sorted(row.class_name for row in preview.rows) == CLASS_NAMES
    assert all(".rec#" in row.source or row.source.endswith(".jpg") for row in preview.rows)


def test_multi_label_rows_name_every_class(tmp_path: Path) -> None:
    source = scan_source(write_multi_label_set(tmp_path / "ml", per_combination=2))
    preview = augmented_samples(source, _hp("crop", multi_label=1), images=7, versions=1)
    assert "red, green, blue" in {row.class_name for row in preview.rows}


def test_one_channel_images_are_shown_grey(colours: ScannedSource) -> None:
    preview = augmented_samples(colours, _hp("crop", image_shape="1,32,32"), images=1)
    version = preview.rows[0].versions[0]
    assert version.shape == (32, 32, 3)
    assert np.array_equal(version[..., 0], version[..., 1])


def test_the_grid_tiles_rows_with_the_original_first(colours: ScannedSource) -> None:
    preview = augmented_samples(colours, _hp("crop"), images=2, versions=3)
    grid = preview_grid(preview, gap=4)
    assert grid.shape == (4 + 2 * 36, 4 + 4 * 36, 3) and grid.dtype == np.uint8
    assert np.array_equal(grid[4:36, 4:36], preview.rows[0].original)
    assert np.array_equal(grid[40:72, 112:144], preview.rows[1].versions[2])
    assert (grid[:4] == 255).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [({"images": 0}, "images must be"), ({"versions": 17}, "versions must be")],
)
def test_counts_out_of_range_are_refused(
    colours: ScannedSource, options: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        augmented_samples(colours, _hp("crop"), **options)


def test_only_the_hyperparameters_the_preview_uses_must_be_valid(
    colours: ScannedSource,
) -> None:
    with pytest.raises(HyperparameterError, match="resize: 30 is not larger"):
        augmented_samples(colours, _hp("crop", resize=30))
    unrelated = HyperParameters(image_shape="3,32,32", num_layers=7, top_k=99)
    assert augmented_samples(colours, unrelated, images=1, versions=1).rows


def test_cancel(colours: ScannedSource) -> None:
    class CancelAtOnce:
        def is_set(self) -> bool:
            return True

    with pytest.raises(Cancelled):
        augmented_samples(colours, _hp("crop"), cancel=CancelAtOnce())
