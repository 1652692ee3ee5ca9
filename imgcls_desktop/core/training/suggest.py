"""Training settings suggested from the data and the device, for people who don't tune."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgcls_desktop.core.dataset.images import ImageError, probe
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.hyperparams import NO_AUGMENTATION, DataFacts, HyperParameters

_PROBED_IMAGES = 32
_SMALL_IMAGE = 64
_MEDIUM_IMAGE = 160
_PHOTO_IMAGE = 96  # photo-like from this shorter side up: ImageNet features suit them
_QUICK_DEPTH = 18
# A head on cached features: an epoch takes a fraction of a second, most of it saving the
# whole network; Adam at 0.01 settles a linear layer in about a hundred updates.
_QUICK_EPOCHS = 10
GET_WEIGHTS = (
    "get ImageNet weights once with `imgcls weights download resnet18_v1` or "
    "Training > Pretrained Weights…"
)
"""How to get a backbone, for messages that propose quick transfer without one."""


@dataclass(frozen=True)
class DataSummary:
    """What training needs to know about a data set before it starts."""

    path: Path
    class_names: tuple[str, ...]
    num_samples: int
    multi_label: bool
    typical_height: int | None
    typical_width: int | None

    def facts(self) -> DataFacts:
        """The facts the hyperparameters are checked against."""
        return DataFacts(
            num_classes=len(self.class_names),
            num_training_samples=self.num_samples,
            min_image_height=self.typical_height,
            min_image_width=self.typical_width,
            multi_label=self.multi_label,
        )

    def describe(self) -> str:
        """One line for the window: images, classes and typical size."""
        size = (
            f", typically {self.typical_width} x {self.typical_height} px"
            if self.typical_height
            else ""
        )
        kind = "multi-label, " if self.multi_label else ""
        return f"{self.num_samples:,} images, {kind}{len(self.class_names)} classes{size}"


def summarize_training_data(path: Path) -> DataSummary:
    """Read a data source's classes and count, and the median size of a few of its images."""
    dataset = load_dataset(Path(path))
    step = max(1, len(dataset.samples) // _PROBED_IMAGES)
    heights: list[int] = []
    widths: list[int] = []
    with ImageReader(dataset) as reader:
        for sample in dataset.samples[::step][:_PROBED_IMAGES]:
            try:
                info = probe(reader.read(sample))
            except (OSError, ImageError):
                continue
            heights.append(info.height)
            widths.append(info.width)
    return DataSummary(
        path=Path(path),
        class_names=tuple(dataset.class_names),
        num_samples=len(dataset.samples),
        multi_label=dataset.multi_label,
        typical_height=int(statistics.median(heights)) if heights else None,
        typical_width=int(statistics.median(widths)) if widths else None,
    )


def suggest_hyperparameters(
    summary: DataSummary,
    *,
    gpu: bool = False,
    epochs: int | None = None,
    all_for_training: bool = True,
    backbone_depths: Sequence[int] = (),
) -> dict[str, str]:
    """Settings that train this data well in reasonable time (SageMaker's string form,
    plus our ``freeze_backbone``).

    ``num_classes`` comes from the data, and so does ``num_training_samples`` when
    ``all_for_training`` (a separate validation source; otherwise training holds back a
    share of the images and counts what is left itself).

    Small images (up to 160 px) get a CIFAR-style ResNet-20 at 32 x 32 (64 x 64 on a GPU),
    Adam and strong augmentation: on the sample data set that reaches over 90% validation
    accuracy in about 50 epochs, a minute on a 2-core CPU. Larger images get ResNet-18 (CPU)
    or ResNet-50 (GPU) at 224 x 224. The learning rate drops tenfold after two thirds of
    ``epochs`` (default: 60 for small images, 30 for large).

    Photo-like data (a shorter side of 96 px and up) gets quick transfer when ImageNet
    weights of a depth in ``backbone_depths`` are on disk (ResNet-18 preferred): a frozen
    backbone and a head trained with Adam on cached features, seconds per epoch.
    """
    side = min(summary.typical_height or 224, summary.typical_width or 224)
    transfer = {"use_pretrained_model": "0", "freeze_backbone": "0"}
    depth = _quick_depth(backbone_depths)
    if side >= _PHOTO_IMAGE and depth is not None:
        values = {
            "num_layers": str(depth),
            "image_shape": "3,224,224",
            "resize": "256",
            "mini_batch_size": "32",
            "optimizer": "adam",
            "learning_rate": "0.01",
            "augmentation_type": "crop",
            "use_pretrained_model": "1",
            "freeze_backbone": "1",
        }
        epochs = epochs or _QUICK_EPOCHS
    elif side <= _MEDIUM_IMAGE:
        size = _SMALL_IMAGE if gpu else 32
        values = {
            "num_layers": "20",
            "image_shape": f"3,{size},{size}",
            "mini_batch_size": "32",
            "optimizer": "adam",
            "learning_rate": "0.001",
            "augmentation_type": "crop_color_transform",
            **transfer,
        }
        epochs = epochs or 60
    else:
        values = {
            "num_layers": "50" if gpu else "18",
            "image_shape": "3,224,224",
            "resize": "256",
            "mini_batch_size": "32",
            "optimizer": "sgd",
            "learning_rate": "0.1",
            "augmentation_type": "crop",
            **transfer,
        }
        epochs = epochs or 30
    batch = min(int(values["mini_batch_size"]), max(1, summary.num_samples))
    values.update({"mini_batch_size": str(batch), "epochs": str(epochs)})
    values.update(data_settings(summary, all_for_training=all_for_training))
    if epochs >= 3:
        values.update({"lr_scheduler_step": str(epochs * 2 // 3), "lr_scheduler_factor": "0.1"})
    return values


def transfer_advice(summary: DataSummary, backbone_depths: Sequence[int]) -> str | None:
    """For photo-like data without ImageNet weights on disk: how to get them, since quick
    transfer would train it far better in seconds; else None."""
    side = min(summary.typical_height or 224, summary.typical_width or 224)
    if side < _PHOTO_IMAGE or _quick_depth(backbone_depths) is not None:
        return None
    return (
        f"photos like these train far better and in seconds by quick transfer: {GET_WEIGHTS}, "
        "then suggest settings again"
    )


def _quick_depth(backbone_depths: Sequence[int]) -> int | None:
    """ResNet-18 when its weights are there, else the shallowest there, else None."""
    if _QUICK_DEPTH in backbone_depths:
        return _QUICK_DEPTH
    return min(backbone_depths, default=None)


def data_settings(summary: DataSummary, *, all_for_training: bool) -> dict[str, str]:
    """The settings that are facts of the data, not choices (SageMaker's string form):
    ``num_classes``, ``multi_label`` and ``num_training_samples``; the count only with a
    separate validation source, else empty (training counts the images it keeps)."""
    return {
        "num_classes": str(len(summary.class_names)),
        "multi_label": "1" if summary.multi_label else "0",
        "num_training_samples": str(summary.num_samples) if all_for_training else "",
    }


def settings_for_data(
    current: Mapping[str, object], summary: DataSummary, *, all_for_training: bool
) -> HyperParameters:
    """The user's settings ``current``, with the data's facts (:func:`data_settings`) of new
    training data in place: the choices stay, the counts follow the data."""
    return HyperParameters.from_mapping(
        {**current, **data_settings(summary, all_for_training=all_for_training)}
    )


def suggested_settings(
    current: Mapping[str, object],
    summary: DataSummary,
    *,
    gpu: bool = False,
    epochs: int | None = None,
    all_for_training: bool = True,
    backbone_depths: Sequence[int] = (),
) -> HyperParameters:
    """The settings ``current`` (raw or SageMaker's string form) with the ones suggested for
    this data, device and backbones on disk in their place (:func:`suggest_hyperparameters`)."""
    advice = suggest_hyperparameters(
        summary,
        gpu=gpu,
        epochs=epochs,
        all_for_training=all_for_training,
        backbone_depths=backbone_depths,
    )
    return HyperParameters.from_mapping({**current, **advice})


def start_warnings(
    summary: DataSummary, hp: HyperParameters, *, launched: bool = False
) -> list[str]:
    """Why these settings may train badly on this data: the rules' warnings, and images
    smaller than ``image_shape`` (they are enlarged, which blurs them). ``launched``: the
    run goes to worker processes, so a distributed ``kv_store`` is no reason to warn.

    Raises :class:`~imgcls_desktop.core.hyperparams.HyperparameterError` when they cannot
    train at all.
    """
    warnings = hp.validate(summary.facts())
    if launched:  # the kv_store rule warns that dist_* needs a launch
        warnings = [warning for warning in warnings if not warning.startswith("kv_store:")]
    _channels, height, width = hp.shape
    # ImageNet weights want ImageNet-sized objects: enlarging small photos is meant.
    if summary.typical_height and summary.typical_width and not hp.use_pretrained_model:
        small_h, small_w = summary.typical_height, summary.typical_width
        if small_h < height or small_w < width:
            warnings.append(
                f"image_shape: {hp.image_shape}, but the images are typically {small_w} x "
                f"{small_h} px: they are enlarged to fit, which blurs them; a smaller "
                "image_shape (and a CIFAR-style num_layers such as 20) suits them better"
            )
    return warnings


def describe_hyperparameters(hp: HyperParameters) -> str:
    """The gist of a training set-up in one line, e.g. for a suggestion."""
    _channels, height, width = hp.shape
    schedule = ""
    if hp.lr_steps:
        steps = ", ".join(str(step) for step in hp.lr_steps)
        schedule = f" (x{hp.lr_scheduler_factor:g} at epoch {steps})"
    augmentation = (
        "" if hp.augmentation_type == NO_AUGMENTATION else f", {hp.augmentation_type} augmentation"
    )
    if hp.freeze_backbone:
        start = f"quick transfer: frozen ImageNet ResNet-{hp.num_layers}, head only,"
    elif hp.use_pretrained_model:
        start = f"ImageNet ResNet-{hp.num_layers} fine-tuned"
    else:
        start = f"ResNet-{hp.num_layers}"
    return (
        f"{start} at {width} x {height} px, {hp.epochs} epochs of "
        f"{hp.optimizer} at learning rate {hp.learning_rate:g}{schedule}, "
        f"batch {hp.mini_batch_size}{augmentation}"
    )
