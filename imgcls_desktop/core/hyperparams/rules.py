"""The rules between hyperparameters, and between them and the training data.

Each rule reads a few parameters (named when it is registered with :func:`_rule`) and is
checked only when each of them is valid on its own; it adds errors (the run cannot work)
or warnings (it works, but probably not as meant). :func:`check_rules` runs them all.
:func:`batch_memory` estimates what one training batch needs, for the memory bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from imgcls_desktop.core.hyperparams.values import (
    DISTRIBUTED_KV_STORES,
    IMAGENET_STAGES,
    LARGE_IMAGE_DEPTHS,
    MAX_IMAGE_SIDE,
    PRETRAINED_SHAPE,
    SMALL_IMAGE_DEPTHS,
    Problem,
)
from imgcls_desktop.core.hyperparams.values import format_bytes as _bytes

if TYPE_CHECKING:
    from imgcls_desktop.core.hyperparams.table import HyperParameters

BATCH_MEMORY_LIMIT = 64 * 10**9
"""One batch's input and activations may need at most this many bytes (64 GB): more than
a desktop or a single GPU holds."""
_FLOAT_BYTES = 4
_WIDEST_FEATURES = 2_048  # the pooled features of ResNet-50 and deeper, before the last layer


@dataclass(frozen=True)
class DataFacts:
    """What the training data says, for the rules that depend on it.

    The smallest image height and width are for callers to report; no rule refuses small
    images, since the training data pipeline enlarges them (and warns).
    """

    num_classes: int
    num_training_samples: int
    min_image_height: int | None = None
    min_image_width: int | None = None
    multi_label: bool | None = None


@dataclass
class _Findings:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, name: str, message: str) -> None:
        self.errors.append(Problem(name, message))

    def warn(self, name: str, message: str) -> None:
        self.warnings.append(str(Problem(name, message)))


class _Check(Protocol):
    def __call__(self, hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None: ...


@dataclass(frozen=True)
class _Rule:
    names: tuple[str, ...]
    check: _Check


_RULES: list[_Rule] = []


def _rule(*names: str) -> Callable[[_Check], _Check]:
    """Register a rule that reads the parameters ``names`` (checked only when they are valid)."""

    def register(check: _Check) -> _Check:
        _RULES.append(_Rule(names, check))
        return check

    return register


def final_layer_cost(classes: int) -> str:
    weights = classes * _WIDEST_FEATURES
    return (
        f"the final layer for {classes:,} classes holds up to {weights:,} weights "
        f"({_bytes(weights * _FLOAT_BYTES)} as float32, and training keeps their gradients "
        "and optimizer state beside them)"
    )


def batch_memory(num_layers: int, shape: tuple[int, int, int], batch: int) -> int:
    """About how many bytes one training batch's input and activations take (float32).

    Counted from the network's shape: every map a block keeps for the backward pass, at its
    stage's resolution. A basic block keeps 7 maps of its width (convolution, norm, ReLU,
    convolution, norm, sum, ReLU), a bottleneck block 1.5 of its width for the two
    quarter-width convolutions and 4 for the rest; a stage's first block adds 2 for its
    projection. Weights, gradients and optimizer state come on top.
    """
    channels, height, width = shape

    def area(scale: int) -> int:
        return math.ceil(height / scale) * math.ceil(width / scale)

    if num_layers in SMALL_IMAGE_DEPTHS:
        units = (num_layers - 2) // 6
        stages = [(16, units, 1), (32, units, 2), (64, units, 4)]
        maps_per_unit = 7.0
        floats = 2 * 16 * area(1)  # stem convolution and norm
    else:
        bottleneck, counts = IMAGENET_STAGES[num_layers]
        widths = (256, 512, 1024, 2048) if bottleneck else (64, 128, 256, 512)
        stages = [(w, n, 4 * 2**i) for i, (w, n) in enumerate(zip(widths, counts))]
        maps_per_unit = 5.5 if bottleneck else 7.0
        floats = 3 * 64 * area(2) + 64 * area(4)  # stem convolution, norm, ReLU; pooling
    for stage_width, units, scale in stages:
        floats += int((units * maps_per_unit + 2) * stage_width * area(scale))
    return batch * (channels * height * width + floats) * _FLOAT_BYTES


@_rule("image_shape", "allow_large_images")
def _image_side_within_limit(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    channels, height, width = hp.shape
    if max(height, width) > MAX_IMAGE_SIDE and not hp.allow_large_images:
        found.error(
            "image_shape",
            f"{height}x{width} has a side above {MAX_IMAGE_SIDE:,} pixels (one image is "
            f"{_bytes(channels * height * width * _FLOAT_BYTES)} as network input, its "
            "activations many times more); use a smaller shape, or set "
            "allow_large_images=true to insist",
        )


@_rule("resize", "allow_large_images")
def _resize_within_limit(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    if hp.resize is not None and hp.resize > MAX_IMAGE_SIDE and not hp.allow_large_images:
        found.error(
            "resize",
            f"{hp.resize:,} is above {MAX_IMAGE_SIDE:,} pixels (every image would be stored "
            "and decoded at that size); use a smaller value, or set allow_large_images=true "
            "to insist",
        )


@_rule("mini_batch_size", "image_shape", "num_layers")
def _batch_fits_memory(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    need = batch_memory(hp.num_layers, hp.shape, hp.mini_batch_size)
    if need <= BATCH_MEMORY_LIMIT:
        return
    _, height, width = hp.shape
    per_image = batch_memory(hp.num_layers, hp.shape, 1)
    fits = BATCH_MEMORY_LIMIT // per_image
    advice = (
        f"use at most {fits:,}, or smaller images"
        if fits
        else f"even one image needs {_bytes(per_image)}: use a smaller image_shape"
    )
    found.error(
        "mini_batch_size",
        f"{hp.mini_batch_size:,} images of {height}x{width} need about {_bytes(need)} for "
        f"one training batch's input and activations in a ResNet-{hp.num_layers}, more than "
        f"the {_bytes(BATCH_MEMORY_LIMIT)} allowed; {advice}",
    )


@_rule("resize", "image_shape")
def _resize_exceeds_crop(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    _, height, width = hp.shape
    if hp.resize is not None and hp.resize <= max(height, width):
        found.error(
            "resize",
            f"{hp.resize} is not larger than image_shape's height and width ({height} x "
            f"{width}); use more than {max(height, width)}, or leave it empty",
        )


@_rule("lr_scheduler_step", "epochs")
def _steps_within_epochs(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    late = [step for step in hp.lr_steps if step > hp.epochs]
    if late:
        found.error(
            "lr_scheduler_step",
            f"epoch {late[0]} is beyond epochs={hp.epochs}; steps must be at most {hp.epochs}",
        )


@_rule("checkpoint_frequency", "epochs")
def _checkpoints_within_epochs(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if hp.checkpoint_frequency is not None and hp.checkpoint_frequency > hp.epochs:
        found.error(
            "checkpoint_frequency",
            f"{hp.checkpoint_frequency} is more than epochs={hp.epochs}; use at most "
            f"{hp.epochs}, or leave it empty to keep only the best epoch",
        )


@_rule("use_pretrained_model", "image_shape", "num_layers")
def _pretrained_needs_imagenet_network(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if not hp.use_pretrained_model:
        return
    if hp.shape[0] != PRETRAINED_SHAPE[0]:
        found.error(
            "use_pretrained_model",
            f"ImageNet weights need 3 colour channels, not image_shape {hp.image_shape}; "
            "change image_shape to 3,H,W or set use_pretrained_model=0",
        )
    elif hp.shape != PRETRAINED_SHAPE:
        found.warn(
            "use_pretrained_model",
            f"ImageNet weights suit image_shape 3,224,224 best; {hp.image_shape} works (the "
            "network pools globally) but may transfer less well",
        )
    if hp.num_layers not in LARGE_IMAGE_DEPTHS:
        depths = ", ".join(map(str, LARGE_IMAGE_DEPTHS))
        found.error(
            "use_pretrained_model",
            f"num_layers={hp.num_layers} is a small-image (CIFAR-style) network without "
            f"ImageNet weights; choose num_layers from {depths}",
        )


@_rule("freeze_backbone", "use_pretrained_model")
def _frozen_backbone_needs_weights(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if hp.freeze_backbone and not hp.use_pretrained_model:
        found.error(
            "freeze_backbone",
            "1 needs a pretrained backbone to freeze: set use_pretrained_model=1, or "
            "freeze_backbone=0 to train the whole network",
        )


@_rule("use_weighted_loss", "multi_label")
def _weighted_loss_is_multi_label(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if hp.use_weighted_loss and not hp.is_multi_label:
        found.warn("use_weighted_loss", "is ignored unless multi_label=1")


@_rule("kv_store")
def _kv_store_on_one_machine(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    if hp.kv_store in DISTRIBUTED_KV_STORES:
        found.warn(
            "kv_store",
            f"{hp.kv_store} trains across worker processes only when launched (imgcls train "
            "--launch local:N, or the Training tab's Processes field); started alone it trains "
            "on one process, as kv_store=device",
        )


@_rule("early_stopping", "early_stopping_min_epochs", "epochs")
def _early_stopping_can_act(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    if hp.early_stopping and hp.early_stopping_min_epochs >= hp.epochs:
        found.warn(
            "early_stopping",
            f"cannot stop the run early: early_stopping_min_epochs="
            f"{hp.early_stopping_min_epochs} is not below epochs={hp.epochs}",
        )


@_rule("num_classes", "multi_label")
def _num_classes_matches_data(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if data is None or hp.num_classes is None or hp.num_classes == data.num_classes:
        return
    given, actual = hp.num_classes, data.num_classes
    if hp.is_multi_label:
        found.error(
            "num_classes",
            f"{given}, but the multi-label training data has {actual} label columns; "
            "leave it empty to use the data's count",
        )
    elif given < actual:
        found.error(
            "num_classes",
            f"{given}, but the training data has {actual} classes (labels up to {actual - 1}); "
            "leave it empty to use the data's count",
        )
    else:
        found.warn(
            "num_classes",
            f"{given}, but the training data has {actual} classes; the other "
            f"{given - actual} outputs are never trained",
        )


@_rule("num_training_samples")
def _sample_count_matches_data(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    given = hp.num_training_samples
    if data is not None and given is not None and given != data.num_training_samples:
        found.warn(
            "num_training_samples",
            f"{given}, but the training data has {data.num_training_samples} images; "
            "leave it empty to use the data's count",
        )


@_rule("mini_batch_size", "num_training_samples")
def _batch_fits_training_set(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    samples = data.num_training_samples if data is not None else hp.num_training_samples
    if samples is not None and hp.mini_batch_size > samples:
        found.error(
            "mini_batch_size",
            f"{hp.mini_batch_size} is larger than the training set ({samples} images); "
            f"use at most {samples}",
        )


@_rule("top_k", "num_classes")
def _top_k_within_classes(hp: HyperParameters, data: DataFacts | None, found: _Findings) -> None:
    classes = hp.num_classes
    if classes is None and data is not None:
        classes = data.num_classes
    if hp.top_k is not None and classes is not None and hp.top_k > classes:
        found.error(
            "top_k",
            f"{hp.top_k} is more than the number of classes ({classes}); use at most {classes}",
        )


@_rule("multi_label")
def _multi_label_matches_data(
    hp: HyperParameters, data: DataFacts | None, found: _Findings
) -> None:
    if data is None or data.multi_label is None or data.multi_label == hp.is_multi_label:
        return
    if data.multi_label:
        message = "0, but the training data is multi-label; set multi_label=1"
    else:
        message = "1, but the training data has one label per image; set multi_label=0"
    found.error("multi_label", message)


def check_rules(
    hp: HyperParameters, data: DataFacts | None, valid: set[str]
) -> tuple[list[Problem], list[str]]:
    """Every rule whose parameters are all in ``valid``: (errors, warnings)."""
    findings = _Findings()
    for rule in _RULES:
        if all(name in valid for name in rule.names):
            rule.check(hp, data, findings)
    return findings.errors, findings.warnings
