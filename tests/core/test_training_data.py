"""Training data: devices, packing for training, image sizes, iterators and preprocessing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image
from training_fixtures import (
    CLASS_NAMES,
    quick_hp,
    shared_colour_folder,
    shared_colour_records,
    write_colour_set,
    write_multi_label_set,
)

from imgcls_desktop.core.dataset.recordio_export import export_recordio
from imgcls_desktop.core.dataset.samples import DatasetError
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.devices import DeviceError, gpu_count, parse_devices
from imgcls_desktop.core.evaluation import evaluate_dataset
from imgcls_desktop.core.hyperparams import HyperparameterError
from imgcls_desktop.core.inference import Predictor
from imgcls_desktop.core.jobs import Cancelled
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.preprocessing import Interpolation, Preprocessing
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.data import TrainingData, inference_preprocessing
from imgcls_desktop.core.training.iterators import train_iter, val_iter
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.core.training.packing import prepare_data, single_split
from imgcls_desktop.core.training.run import read_metrics, read_run


@pytest.fixture
def colour_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_colour_folder(tmp_path_factory)


@pytest.fixture
def colour_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_colour_records(tmp_path_factory)


# --- devices --------------------------------------------------------------------------------


def test_device_choices() -> None:
    mx = mxnet()
    assert parse_devices("cpu") == [mx.cpu()]
    assert parse_devices("cpu:0,cpu:1") == [mx.cpu(0), mx.cpu(1)]
    assert parse_devices(" CPU:0, 1 ") == [mx.cpu(0), mx.cpu(1)]
    expected = [mx.gpu(i) for i in range(gpu_count())] or [mx.cpu()]
    assert parse_devices(None) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [("tpu", "not a device choice"), ("cpu:x", "device number"), ("cpu,cpu:0", "twice")],
)
def test_bad_device_choices(spec: str, message: str) -> None:
    with pytest.raises(DeviceError, match=message):
        parse_devices(spec)


@pytest.mark.skipif(gpu_count() > 0, reason="this machine has a GPU")
@pytest.mark.parametrize("spec", ["gpu", "gpu:0,1", "gpu:1"])
def test_a_missing_gpu_is_a_clear_error(spec: str) -> None:
    with pytest.raises(DeviceError, match=r"no GPU is available.*Choose the CPU"):
        parse_devices(spec)


# --- preparing the data -----------------------------------------------------------------------


def test_a_folder_is_scanned_split_and_packed(colour_folder: Path, tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    data = prepare_data(
        colour_folder, None, tmp_path / "run", quick_hp(), progress=lambda *p: progress.append(p)
    )
    assert data.class_names == tuple(CLASS_NAMES)
    assert (data.num_train, data.num_val) == (72, 18)
    assert data.train_class_counts == (24, 24, 24)
    assert (data.validation_share, data.split_seed) == (0.2, 0)
    assert data.train_rec == tmp_path / "run" / "data" / "train" / "dataset-train.rec"
    assert data.val_rec.parent == data.train_rec.parent
    assert (data.shorter_side, data.min_image_size, data.label_width) == (32, (32, 32), 1)
    recorded = json.loads((data.train_rec.parent / "dataset.json").read_text())
    assert recorded["counts"] == {"train": 72, "val": 18}
    assert recorded["split"]["val_ratio"] == 0.2
    assert progress[-1][0] == progress[-1][1] == 180  # 90 scanned + 90 packed
    assert TrainingData.from_dict(json.loads(json.dumps(data.to_dict()))) == data
    stored = data.to_dict(tmp_path / "run")
    assert stored["train_rec"] == "data/train/dataset-train.rec"  # the run folder can move
    assert TrainingData.from_dict(stored, tmp_path / "run") == data


def test_bad_images_are_left_out_and_reported(tmp_path: Path) -> None:
    root = write_colour_set(tmp_path / "images", per_class=6)
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    data = prepare_data(root, None, tmp_path / "run", quick_hp(mini_batch_size=4))
    assert [Path(s.path).name for s in data.skipped] == ["broken.jpg"]
    assert data.num_train + data.num_val == 18
    assert any("left out" in warning and "broken.jpg" in warning for warning in data.warnings)


def test_invalid_hyperparameters_are_refused_before_anything_is_written(
    colour_folder: Path, tmp_path: Path
) -> None:
    hp = quick_hp(mini_batch_size=100, top_k=5, num_classes=2)
    with pytest.raises(HyperparameterError) as caught:
        prepare_data(colour_folder, None, tmp_path / "run", hp)
    assert {p.name for p in caught.value.problems} == {"mini_batch_size", "top_k", "num_classes"}
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("size", "augmentation", "resize", "side"),
    [
        ((64, 48), "crop", None, 37),  # larger images: shrunk, with room for a random crop
        ((64, 48), "none", None, 32),  # larger images, no augmentation: just the crop size
        ((36, 36), "crop", None, 36),  # already between the crop size and the cap: kept
        ((24, 20), "none", None, 32),  # smaller than the crop: enlarged (and warned about)
        ((64, 64), "none", 40, 40),  # the resize hyperparameter decides
    ],
)
def test_images_are_stored_at_one_shorter_side(
    tmp_path: Path, size: tuple[int, int], augmentation: str, resize: int | None, side: int
) -> None:
    root = write_colour_set(tmp_path / "images", per_class=5, size=size)
    hp = quick_hp(mini_batch_size=4, augmentation_type=augmentation, resize=resize)
    data = prepare_data(root, None, tmp_path / "run", hp)
    assert data.shorter_side == side
    assert min(data.min_image_size) == side
    assert (data.train_resize, data.val_resize) == (None, None)
    enlarged = [w for w in data.warnings if "smaller than image_shape" in w]
    assert bool(enlarged) == (min(size) < 32)
    batch = next(iter(val_iter(data, hp, 4)))
    assert batch.data[0].shape == (4, 3, 32, 32)


def test_a_rec_with_its_validation_rec_is_used_where_it_is(
    colour_records: Path, tmp_path: Path
) -> None:
    train, val = colour_records / "dataset-train.rec", colour_records / "dataset-val.rec"
    data = prepare_data(train, val, tmp_path / "run", quick_hp())
    assert (data.train_rec, data.val_rec) == (train, val)
    assert (data.train_idx, data.val_idx) == (train.with_suffix(".idx"), val.with_suffix(".idx"))
    assert (data.num_train, data.num_val, data.validation_share) == (72, 18, None)
    assert data.class_names == tuple(CLASS_NAMES)
    assert not (tmp_path / "run").exists()


def test_a_rec_of_other_sizes_is_resized_by_its_iterator(
    colour_records: Path, tmp_path: Path
) -> None:
    train, val = colour_records / "dataset-train.rec", colour_records / "dataset-val.rec"
    hp = quick_hp(image_shape="3,24,24", augmentation_type="crop")
    data = prepare_data(train, val, tmp_path / "run", hp)
    assert data.shorter_side == data.train_resize == data.val_resize == 28  # 24 * 8/7
    batch = next(iter(train_iter(data, hp, 16)))
    assert batch.data[0].shape == (16, 3, 24, 24)


def test_a_rec_without_validation_is_split_and_repacked(
    colour_records: Path, tmp_path: Path
) -> None:
    data = prepare_data(colour_records / "dataset-train.rec", None, tmp_path / "run", quick_hp())
    assert data.train_rec.is_relative_to(tmp_path / "run" / "data")
    assert data.num_train + data.num_val == 72
    assert data.num_val == 15


def test_validation_classes_are_matched_by_name(colour_folder: Path, tmp_path: Path) -> None:
    validation = tmp_path / "validation"
    shutil.copytree(colour_folder / "owl", validation / "owl")
    data = prepare_data(colour_folder, validation, tmp_path / "run", quick_hp())
    assert data.val_rec == tmp_path / "run" / "data" / "validation" / "dataset-val.rec"
    labels = np.concatenate([batch.label[0].asnumpy() for batch in val_iter(data, quick_hp(), 16)])
    assert set(labels[: data.num_val]) == {2.0}  # owl keeps its training id
    (validation / "bat").mkdir()
    write_image(validation / "bat" / "0.jpg", (0, 0, 0))
    with pytest.raises(DatasetError, match="same class names"):
        prepare_data(colour_folder, validation, tmp_path / "run2", quick_hp())


def _validation_records(tmp_path: Path, classes: list[str]) -> Path:
    """Fresh colour images of ``classes`` only, packed on their own: their ids count from 0."""
    images = write_colour_set(tmp_path / "validation-images", per_class=6, seed=7)
    for name in set(CLASS_NAMES) - set(classes):
        shutil.rmtree(images / name)
    dataset = load_dataset(images)
    out = tmp_path / "validation-records"
    export_recordio(dataset, out, assignment=single_split(range(len(dataset.samples)), "val"))
    return out / "dataset-val.rec"


def test_a_validation_rec_with_other_class_ids_is_scored_as_evaluate_scores_it(
    colour_folder: Path, tmp_path: Path
) -> None:
    """Issue 9, bug 3: dog and owl are 0 and 1 in the validation .rec, 1 and 2 in training;
    the run's validation accuracy must be what ``imgcls evaluate`` reports on those files."""
    val_rec = _validation_records(tmp_path, ["dog", "owl"])
    run = tmp_path / "run"
    train(TrainingJob(quick_hp(epochs=1), colour_folder, run, validation=val_rec, devices="cpu"))
    report = evaluate_dataset(Predictor(open_model(run), device="cpu"), load_dataset(val_rec))
    assert read_metrics(run)[0]["val_accuracy"] == pytest.approx(report.accuracy)
    assert read_run(run).data.val_rec == run / "data/validation/dataset-val.rec"  # repacked
    stored = json.loads((run / "run.json").read_text(encoding="utf-8"))["data"]
    assert stored["val_rec"] == "data/validation/dataset-val.rec"  # relative: the folder moves


def test_a_validation_rec_with_the_training_ids_is_read_where_it_is(
    colour_folder: Path, tmp_path: Path
) -> None:
    val_rec = _validation_records(tmp_path, ["cat", "dog"])  # 0 and 1 in both
    data = prepare_data(colour_folder, val_rec, tmp_path / "run", quick_hp())
    assert data.val_rec == val_rec and not (tmp_path / "run" / "data" / "validation").exists()
    assert data.class_names == tuple(CLASS_NAMES)


def test_too_few_images_to_split(tmp_path: Path) -> None:
    root = write_colour_set(tmp_path / "images", per_class=1)
    with pytest.raises(DatasetError, match="give a validation data set"):
        prepare_data(root, None, tmp_path / "run", quick_hp(mini_batch_size=1))


def test_cancel_while_scanning(colour_folder: Path, tmp_path: Path) -> None:
    class CancelAtOnce:
        def is_set(self) -> bool:
            return True

    with pytest.raises(Cancelled):
        prepare_data(colour_folder, None, tmp_path / "run", quick_hp(), cancel=CancelAtOnce())
    assert not (tmp_path / "run").exists()


# --- iterators ----------------------------------------------------------------------------------


def test_training_batches_are_raw_rgb_pixels(colour_folder: Path, tmp_path: Path) -> None:
    hp = quick_hp(augmentation_type="crop_color_transform")
    data = prepare_data(colour_folder, None, tmp_path / "run", hp)
    iterator = train_iter(data, hp, 16, seed=1)
    batches = [next(iter(iterator)) for _ in range(3)]
    for batch in batches:
        pixels, labels = batch.data[0].asnumpy(), batch.label[0].asnumpy()
        assert pixels.shape == (16, 3, 32, 32) and labels.shape == (16,)
        assert pixels.max() > 150 and pixels.min() >= 0  # 0-255, not normalised
        # cat is red-ish in BGR (40, 40, 200): red is channel 0 of RGB
        cats = pixels[labels == CLASS_NAMES.index("cat")]
        if len(cats):
            assert cats[:, 0].mean() > cats[:, 2].mean() + 50


def test_validation_reads_the_records_in_order_every_pass(
    colour_folder: Path, tmp_path: Path
) -> None:
    hp = quick_hp()
    data = prepare_data(colour_folder, None, tmp_path / "run", hp)
    iterator = val_iter(data, hp, 16)
    passes = []
    for _ in range(3):
        iterator.reset()
        batches = list(iterator)
        assert batches[0].data[0].context == mxnet().cpu_pinned(0)
        labels = np.concatenate([batch.label[0].asnumpy() for batch in batches])
        passes.append(labels[: data.num_val].tolist())  # 18 images: 2 batches, 14 rows spare
    assert len(batches) == 2 and passes[0] == passes[1] == passes[2]
    assert sorted(passes[0]) == [0.0] * 6 + [1.0] * 6 + [2.0] * 6


def test_multi_label_records_have_label_vectors(tmp_path: Path) -> None:
    lst = write_multi_label_set(tmp_path / "ml", per_combination=4)
    hp = quick_hp(multi_label=1, mini_batch_size=8)
    data = prepare_data(lst, None, tmp_path / "run", hp)
    assert data.multi_label and data.label_width == 3
    assert data.class_names == ("red", "green", "blue")
    batch = next(iter(train_iter(data, hp, 8)))
    labels = batch.label[0].asnumpy()
    assert labels.shape == (8, 3) and set(np.unique(labels)) <= {0.0, 1.0}
    reds = batch.data[0].asnumpy()[:, 0].mean(axis=(1, 2))
    assert np.all((reds > 128) == (labels[:, 0] == 1))


def test_multi_label_validation_classes_are_matched_by_name(tmp_path: Path) -> None:
    lst = write_multi_label_set(tmp_path / "ml", per_combination=2)
    validation = tmp_path / "ml-reordered"
    shutil.copytree(tmp_path / "ml", validation)
    (validation / "classes.json").write_text('["blue", "green", "red"]\n', encoding="utf-8")
    lines = []  # the same images, their columns reordered as the new class names say
    for line in (validation / "colours.lst").read_text(encoding="utf-8").splitlines():
        index, red, green, blue, path = line.split("\t")
        lines.append("\t".join([index, blue, green, red, path]) + "\n")
    (validation / "colours.lst").write_text("".join(lines), encoding="utf-8")
    hp = quick_hp(multi_label=1, mini_batch_size=7)
    data = prepare_data(lst, validation / "colours.lst", tmp_path / "run", hp)
    batch = next(iter(val_iter(data, hp, 7)))
    labels = batch.label[0].asnumpy()
    reds = batch.data[0].asnumpy()[:, 0].mean(axis=(1, 2))
    assert labels.shape == (7, 3) and np.all((reds > 128) == (labels[:, 0] == 1))


def test_inference_preprocessing_is_what_validation_does(tmp_path: Path) -> None:
    root = write_colour_set(tmp_path / "images", per_class=5, size=(64, 80))
    hp = quick_hp(mini_batch_size=4, augmentation_type="crop")
    data = prepare_data(root, None, tmp_path / "run", hp)
    preprocessing = inference_preprocessing(hp, data)
    assert preprocessing.shorter_side == 37 and preprocessing.center_crop
    assert preprocessing.shape == (3, 32, 32)
    assert preprocessing.interpolation is Interpolation.PACKER
    written = json.loads(json.dumps(preprocessing.to_json()))
    assert written["value_range"] == [0, 255] and written["layout"] == "NCHW"
    assert Preprocessing.from_json(written) == preprocessing


def test_a_start_interrupted_after_packing_packs_its_data_folder_again(
    colour_folder: Path, tmp_path: Path
) -> None:
    validation = tmp_path / "validation"
    shutil.copytree(colour_folder / "owl", validation / "owl")
    first = prepare_data(colour_folder, validation, tmp_path / "run", quick_hp())
    again = prepare_data(colour_folder, validation, tmp_path / "run", quick_hp())
    assert again == first
