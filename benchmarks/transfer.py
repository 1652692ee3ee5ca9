"""Transfer learning figures for ResNet-18: quick transfer, fine-tuning, training from scratch.

Prints, for N training images (generated shapes at ``--side`` px, or ``--data FOLDER``):

  (a) the feature cache's images/s (training images, augmented versions and validation
      images through the frozen backbone) against the network's pure forward rate
      (batch 32, inference, hybridized): the aim is >= 0.8x;
  (b) seconds from start to a saved model, and held-out accuracy, for quick transfer
      (``freeze_backbone=1``, the settings Suggest Settings proposes), fine-tuning
      (``use_pretrained_model=1``, ``freeze_backbone=0``) and training from scratch;
  (c) the seconds of a second quick run on the same data (the cache is read, not computed).

With ImageNet weights on disk (``find_pretrained_weights(18)``) they are the backbone; else
one is built by training a ResNet-18 on another generated set (shapes the target does not
have, at 64 px), and the figures measure transfer from it. The aim on a 2-core machine:
quick transfer on 400 images at 224 px under 45 s to a saved model, a second run under 10 s.
Held-out accuracy is on a separate validation set (also used to pick the best epoch).

Run: ``python benchmarks/transfer.py [--images 400] [--side 224] [--epochs 3]``
(``IMGCLS_HOME`` is pointed at a temporary folder, so the feature cache starts empty).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from report import Figure, add_json_argument, write_figures

from imgcls_desktop.core.dataset.sample_data import SHAPES, generate_sample_dataset
from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.runtime import configure_threads, mxnet
from imgcls_desktop.core.training.callbacks import Callback, TrainingState
from imgcls_desktop.core.training.feature_cache import AUGMENTED_COPIES
from imgcls_desktop.core.training.loop import TrainingJob, TrainingResult, train
from imgcls_desktop.core.training.network import build_network, fresh_initializer
from imgcls_desktop.core.training.pretrained import (
    PretrainedWeightsMissing,
    find_pretrained_weights,
)
from imgcls_desktop.core.training.run import resume_files
from imgcls_desktop.core.training.suggest import suggest_hyperparameters, summarize_training_data

SOURCE_CLASSES = 6  # the backbone learns SHAPES[:6]; the target is SHAPES[6:]
SOURCE_SIDE = 64


class _Notes(Callback):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def on_train_begin(self, state: TrainingState) -> None:
        self.notes = list(state.notes)

    def quick(self) -> str:
        """Quick transfer's note: features computed or read from the cache."""
        return next((note for note in self.notes if note.startswith("quick transfer")), "")


class _FeatureClock:
    """Times the feature pass from its progress reports (total = the images it runs)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if total != self.total:
            return
        now = (time.perf_counter(), done)
        self.first = self.first or now
        self.last = now

    def images_per_second(self) -> float | None:
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return None
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])


def _target(folder: Path, per_class: int, side: int, seed: int) -> Path:
    """``per_class`` images of each target shape (ones the built backbone never saw)."""
    everything = generate_sample_dataset(
        folder / "all", classes=len(SHAPES), per_class=per_class, size=side, seed=seed
    )
    target = folder / "images"
    target.mkdir()
    for shape in SHAPES[SOURCE_CLASSES:]:
        shutil.move(str(everything / shape), str(target / shape))
    shutil.rmtree(everything)
    return target


def _backbone(folder: Path, per_class: int, epochs: int) -> tuple[Path, str]:
    try:
        return find_pretrained_weights(18), "ImageNet weights"
    except PretrainedWeightsMissing:
        pass
    started = time.perf_counter()
    source = generate_sample_dataset(
        folder / "source", classes=SOURCE_CLASSES, per_class=per_class, size=SOURCE_SIDE
    )
    hp = HyperParameters.from_mapping(
        {
            "num_layers": 18,
            "image_shape": f"3,{SOURCE_SIDE},{SOURCE_SIDE}",
            "mini_batch_size": 32,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "epochs": epochs,
            "augmentation_type": "crop",
            "use_pretrained_model": "1",  # the network ImageNet weights go into
        }
    )
    random = _random_backbone(folder / "random.params", SOURCE_SIDE)
    result = train(TrainingJob(hp, source, folder / "source-run", pretrained=random))
    weights = folder / "resnet18_v1.params"
    shutil.copyfile(resume_files(folder / "source-run", epochs).params, weights)
    how = (
        f"built: ResNet-18 trained on {SOURCE_CLASSES} other shapes x {per_class} at "
        f"{SOURCE_SIDE} px, {epochs} epochs, validation accuracy "
        f"{result.best_val_accuracy:.2f}, {time.perf_counter() - started:.0f} s"
    )
    return weights, how


def _random_backbone(path: Path, side: int) -> Path:
    """A ResNet-18 v1 with fresh weights in the model zoo's layout (``features.*``,
    ``output.*``), initialised as training initialises."""
    mx = mxnet()
    net = build_network(18, 1000, (3, side, side))
    net.initialize(fresh_initializer())
    net(mx.nd.zeros((1, 3, side, side)))
    arrays = net._collect_params_with_prefix()
    mx.nd.save(
        str(path),
        {key: p.data() for key, p in arrays.items() if key.startswith(("features.", "output."))},
    )
    return path


def _forward_rate(side: int, seconds: float = 10.0) -> float:
    """ResNet-18's pure inference rate at ``side`` px, batch 32, hybridized."""
    mx = mxnet()
    net = build_network(18, 1000, (3, side, side))
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    batch = mx.nd.random.uniform(0, 255, (32, 3, side, side))
    net(batch).wait_to_read()
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        net(batch).wait_to_read()
        images += 32
    return images / (time.perf_counter() - started)


def _timed(job: TrainingJob, **kwargs: object) -> tuple[TrainingResult, float]:
    started = time.perf_counter()
    result = train(job, **kwargs)  # type: ignore[arg-type]
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400, help="training images (generated)")
    parser.add_argument("--side", type=int, default=224, help="generated image size, px")
    parser.add_argument("--data", type=Path, help="a folder of class folders instead")
    parser.add_argument("--validation", type=Path, help="held-out images for --data")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning / scratch epochs")
    parser.add_argument("--source-per-class", type=int, default=60)
    parser.add_argument("--source-epochs", type=int, default=8)
    add_json_argument(parser)
    args = parser.parse_args()
    configure_threads()  # as the app does: every core

    work = Path(tempfile.mkdtemp(prefix="imgcls-transfer-"))
    os.environ["IMGCLS_HOME"] = str(work / "home")
    print(f"work folder {work}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    weights, how = _backbone(work / "backbone", args.source_per_class, args.source_epochs)
    print(f"backbone: {how}")

    if args.data:
        data, validation = args.data, args.validation
    else:
        per_class = args.images // (len(SHAPES) - SOURCE_CLASSES)
        data = _target(work / "train", per_class, args.side, seed=11)
        validation = _target(work / "held-out", max(25, per_class // 4), args.side, seed=12)
    summary = summarize_training_data(data)
    suggested = suggest_hyperparameters(
        summary, backbone_depths=[18], all_for_training=validation is not None
    )
    quick_hp = HyperParameters.from_mapping(suggested)
    print(f"data: {summary.describe()}; quick settings as suggested: {suggested}")

    copies = 1 if quick_hp.augmentation_type == "none" else 1 + AUGMENTED_COPIES
    val_count = summary_count(validation) if validation else None
    clock = _FeatureClock(copies * summary.num_samples + (val_count or 0))
    notes = _Notes()
    forward_rate = _forward_rate(quick_hp.shape[1])  # just before, on the same machine state
    job = TrainingJob(quick_hp, data, work / "quick", validation=validation, pretrained=weights)
    quick, quick_s = _timed(job, progress=clock, callbacks=[notes])
    print(notes.quick())
    features_rate = clock.images_per_second()
    ratio = f"{features_rate / forward_rate:.2f}x" if features_rate else "n/a"
    rate_text = f"{features_rate:.1f}" if features_rate else "n/a"
    print(
        f"(a) features {rate_text} images/s; pure forward {forward_rate:.1f} images/s; "
        f"ratio {ratio}"
    )
    again = TrainingJob(
        quick_hp, data, work / "quick-again", validation=validation, pretrained=weights
    )
    notes_again = _Notes()
    _second, again_s = _timed(again, callbacks=[notes_again])

    common = {
        **suggested,
        "optimizer": "sgd",
        "learning_rate": "0.01",
        "freeze_backbone": "0",
        "epochs": str(args.epochs),
        "lr_scheduler_step": "",
    }
    finetune_hp = HyperParameters.from_mapping({**common, "use_pretrained_model": "1"})
    job = TrainingJob(
        finetune_hp, data, work / "finetune", validation=validation, pretrained=weights
    )
    finetune, finetune_s = _timed(job)
    scratch_hp = HyperParameters.from_mapping(
        {**common, "use_pretrained_model": "0", "optimizer": "adam", "learning_rate": "0.001"}
    )
    scratch, scratch_s = _timed(
        TrainingJob(scratch_hp, data, work / "scratch", validation=validation)
    )
    print("(b) start to saved model, held-out accuracy:")
    for name, result, seconds in (
        (f"quick transfer ({quick_hp.epochs} epochs)", quick, quick_s),
        (f"fine-tuning ({args.epochs} epochs)", finetune, finetune_s),
        (f"from scratch ({args.epochs} epochs)", scratch, scratch_s),
    ):
        print(f"    {name:<28} {seconds:7.1f} s   accuracy {result.best_val_accuracy:.3f}")
    print(f"(c) second quick run (same data): {again_s:.1f} s; {notes_again.quick()}")
    shutil.rmtree(work, ignore_errors=True)
    write_figures(
        args.json,
        [
            Figure(
                "features", features_rate or 0.0, "images/s", "forward alone", forward_rate, 0.8
            ),
            Figure(
                "quick transfer to a saved model", quick_s, "s", target=45, lower_is_better=True
            ),
            Figure("quick transfer, second run", again_s, "s", target=10, lower_is_better=True),
            Figure(
                "quick transfer accuracy",
                quick.best_val_accuracy or 0.0,
                "",
                "from scratch",
                scratch.best_val_accuracy,
            ),
            Figure(
                "fine-tuning accuracy",
                finetune.best_val_accuracy or 0.0,
                "",
                "from scratch",
                scratch.best_val_accuracy,
            ),
        ],
    )


def summary_count(folder: Path) -> int:
    """How many images a held-out source holds."""
    return summarize_training_data(folder).num_samples


if __name__ == "__main__":
    main()
