"""Settings suggested from the data, the warnings before a start, and their one-line gist."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from imgcls_desktop.core.hyperparams import HyperparameterError, HyperParameters
from imgcls_desktop.core.training.preview import mirroring_note
from imgcls_desktop.core.training.suggest import (
    DataSummary,
    describe_hyperparameters,
    start_warnings,
    suggest_hyperparameters,
    suggested_settings,
    summarize_training_data,
    transfer_advice,
)

SMALL_IMAGES = DataSummary(
    path=Path("shapes"),
    class_names=("circle", "square", "star", "triangle"),
    num_samples=320,
    multi_label=False,
    typical_height=64,
    typical_width=64,
)
PHOTOS = dataclasses.replace(SMALL_IMAGES, typical_height=480, typical_width=640)


def test_the_summary_reads_classes_count_and_typical_size(class_folder: Path) -> None:
    summary = summarize_training_data(class_folder)
    assert summary.class_names == ("cat", "dog", "owl")
    assert summary.num_samples == 18
    assert (summary.typical_height, summary.typical_width) == (32, 32)
    assert summary.describe() == "18 images, 3 classes, typically 32 x 32 px"


def test_small_images_get_a_cifar_resnet_with_the_data_counts_filled_in() -> None:
    hp = HyperParameters.from_mapping(suggest_hyperparameters(SMALL_IMAGES))
    assert (hp.num_layers, hp.image_shape) == (20, "3,32,32")
    assert (hp.num_classes, hp.num_training_samples) == (4, 320)
    assert (hp.epochs, hp.lr_steps) == (60, (40,))
    assert hp.validate(SMALL_IMAGES.facts()) == []
    assert start_warnings(SMALL_IMAGES, hp) == []


def test_without_a_validation_source_the_sample_count_is_left_to_training() -> None:
    values = suggest_hyperparameters(SMALL_IMAGES, all_for_training=False)
    assert values["num_training_samples"] == ""
    assert values["num_classes"] == "4"
    # The count of the data the form had before is not kept for the new data.
    stale = {"num_training_samples": "320"}
    assert (
        suggested_settings(stale, SMALL_IMAGES, all_for_training=False).num_training_samples is None
    )


def test_photos_get_an_imagenet_resnet_and_a_gpu_a_deeper_one() -> None:
    cpu = HyperParameters.from_mapping(suggest_hyperparameters(PHOTOS, epochs=9))
    gpu = HyperParameters.from_mapping(suggest_hyperparameters(PHOTOS, gpu=True))
    assert (cpu.num_layers, cpu.image_shape, cpu.resize, cpu.epochs) == (18, "3,224,224", 256, 9)
    assert (gpu.num_layers, gpu.epochs, gpu.lr_steps) == (50, 30, (20,))


def test_a_batch_never_exceeds_a_tiny_data_set() -> None:
    tiny = dataclasses.replace(SMALL_IMAGES, num_samples=5)
    assert suggest_hyperparameters(tiny)["mini_batch_size"] == "5"


def test_images_smaller_than_the_shape_are_warned_about_before_a_start() -> None:
    hp = HyperParameters(num_layers=18, image_shape="3,224,224")
    warnings = start_warnings(SMALL_IMAGES, hp)
    assert len(warnings) == 1
    assert warnings[0].startswith("image_shape: 3,224,224, but the images are typically 64 x 64")


def test_a_distributed_kv_store_is_warned_about_only_when_not_launched() -> None:
    hp = HyperParameters(num_layers=20, image_shape="3,32,32", kv_store="dist_sync")
    (alone,) = start_warnings(SMALL_IMAGES, hp)
    assert alone.startswith("kv_store: dist_sync trains across worker processes only when")
    assert start_warnings(SMALL_IMAGES, hp, launched=True) == []


def test_settings_that_cannot_train_are_refused_with_the_reason() -> None:
    hp = HyperParameters(num_layers=20, image_shape="3,32,32", mini_batch_size=500)
    with pytest.raises(HyperparameterError, match="larger than the training set"):
        start_warnings(SMALL_IMAGES, hp)


def test_the_gist_names_depth_size_schedule_and_augmentation() -> None:
    hp = HyperParameters.from_mapping(suggest_hyperparameters(SMALL_IMAGES))
    assert describe_hyperparameters(hp) == (
        "ResNet-20 at 32 x 32 px, 60 epochs of adam at learning rate 0.001 (x0.1 at epoch 40), "
        "batch 32, crop_color_transform augmentation"
    )
    assert describe_hyperparameters(HyperParameters(num_layers=18)) == (
        "ResNet-18 at 224 x 224 px, 30 epochs of sgd at learning rate 0.1, batch 32"
    )


def test_suggestions_replace_only_what_they_suggest() -> None:
    current = HyperParameters(num_layers=18, momentum=0.5, top_k=3).to_strings()
    hp = suggested_settings(current, SMALL_IMAGES)
    assert (hp.num_layers, hp.image_shape, hp.num_classes) == (20, "3,32,32", 4)
    assert (hp.momentum, hp.top_k) == (0.5, 3)  # not suggested: kept as they were


def test_suggested_augmentation_says_it_mirrors_images_and_how_to_avoid_it() -> None:
    """Issue 11: suggestions kept crop's horizontal mirroring for text and digits, silently."""
    hp = suggested_settings({}, SMALL_IMAGES)
    note = mirroring_note(hp.augmentation_type)
    assert note is not None and "mirrors images left-right" in note
    assert "digits" in note and "augmentation_type to none" in note
    assert "mirrors" in mirroring_note("crop")
    assert mirroring_note("none") is None


def test_photos_get_quick_transfer_when_a_backbone_is_on_disk() -> None:
    hp = suggested_settings({}, PHOTOS, backbone_depths=[50, 18])
    assert (hp.use_pretrained_model, hp.freeze_backbone, hp.num_layers) == (1, 1, 18)
    assert (hp.image_shape, hp.optimizer, hp.epochs) == ("3,224,224", "adam", 10)
    assert start_warnings(PHOTOS, hp) == []
    assert transfer_advice(PHOTOS, [18]) is None
    assert describe_hyperparameters(hp).startswith(
        "quick transfer: frozen ImageNet ResNet-18, head only, at 224 x 224 px, 10 epochs"
    )
    assert suggested_settings({}, PHOTOS, backbone_depths=[50]).num_layers == 50


def test_small_photos_are_enlarged_for_imagenet_weights_without_a_warning() -> None:
    small_photos = dataclasses.replace(PHOTOS, typical_height=100, typical_width=120)
    hp = suggested_settings({}, small_photos, backbone_depths=[18])
    assert hp.freeze_backbone == 1 and hp.image_shape == "3,224,224"
    assert start_warnings(small_photos, hp) == []


def test_without_a_backbone_photos_train_from_scratch_and_say_how_to_get_one() -> None:
    hp = suggested_settings({}, PHOTOS, backbone_depths=[])
    assert (hp.use_pretrained_model, hp.freeze_backbone, hp.optimizer) == (0, 0, "sgd")
    advice = transfer_advice(PHOTOS, [])
    assert advice is not None and "imgcls weights download resnet18_v1" in advice
    assert "Training > Pretrained Weights…" in advice


def test_small_images_never_get_transfer_and_turn_quick_mode_off() -> None:
    current = HyperParameters(use_pretrained_model=1, freeze_backbone=1).to_strings()
    hp = suggested_settings(current, SMALL_IMAGES, backbone_depths=[18])
    assert (hp.num_layers, hp.use_pretrained_model, hp.freeze_backbone) == (20, 0, 0)
    assert transfer_advice(SMALL_IMAGES, []) is None
