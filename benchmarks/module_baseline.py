"""Training wall time against a Module-API baseline: MXNet's own way, before Gluon.

The baseline trains as ``example/image-classification``'s ``fit.py`` does (the code SageMaker's
algorithm descends from): the symbolic pre-activation ResNet its ``symbols/resnet.py`` builds
(:func:`~imgcls_desktop.core.training.sagemaker_resnet.resnet_symbol` builds the same one,
which is also what ours trains), ``mx.mod.Module.fit`` on ``ImageRecordIter``, SGD with
SageMaker's defaults, a checkpoint saved after each epoch. Ours is
:func:`~imgcls_desktop.core.training.loop.train` on the same ``.rec`` files, read where they
are: neither side packs, both read with the same iterator arguments (the same batch,
augmentation and epochs). Each side runs in a process of its own, twice: with
``OMP_NUM_THREADS`` set to the cores (what ``imgcls`` sets) for both, and as a user's default
leaves it: unset, where ``imgcls`` still sets the cores and MXNet alone takes half of them
(the baseline gets that half explicitly: it imports MXNet through our runtime, for numpy's
sake, which would otherwise set the cores).

Prints each side's wall time (start to trained model, validation included), its last
epoch's training and validation accuracy and its best validation accuracy (counted on the
validation images only, not on the rows that fill the last batch), and the ratio baseline /
ours (above 1: ours is faster). Each figure is the side's fastest of ``--repeat`` runs, the
sides alternating: one run each is at the mercy of a slow spell on a shared machine. Both
start from the same weights (the baseline's initialisation, saved) and take the same steps
(a test checks one), but the rounding of parallel sums makes them drift apart, and
validation accuracy swings from one epoch to the next early in a run: compare several runs,
or the training accuracy, not one validation figure. The targets:
>= 1.0x with the threads set, >= 1.4x with them unset.
Run: ``python benchmarks/module_baseline.py [--classes 10] [--per-class 144] [--epochs 6]
[--num-layers 20] [--side 28] [--batch-size 128] [--repeat 3] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import Figure, add_json_argument, write_figures

HERE = Path(__file__).resolve().parent
TARGETS = {"set": 1.0, "unset": 1.4}
START, CHECKPOINT = "start", "image-classification"  # the weights both sides start from


def hyperparameters(args: argparse.Namespace) -> dict[str, str]:
    """The run's settings, SageMaker's strings; both sides train with them."""
    return {
        "num_layers": str(args.num_layers),
        "image_shape": f"3,{args.side},{args.side}",
        "mini_batch_size": str(args.batch_size),
        "epochs": str(args.epochs),
        "optimizer": "sgd",
        "learning_rate": "0.1",
        "augmentation_type": "crop",
    }


def prepare(args: argparse.Namespace, root: Path) -> Path:
    """Generate the images, pack them once (through a prepared distributed run, which
    packs without training) and save the weights both sides start from; returns the folder
    holding the training and validation ``.rec`` files both sides read where they are."""
    from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
    from imgcls_desktop.core.hyperparams import HyperParameters
    from imgcls_desktop.core.training.loop import TrainingJob, prepare_run
    from imgcls_desktop.core.training.run import read_run

    images = generate_sample_dataset(
        root / "images", classes=args.classes, per_class=args.per_class, size=args.side + 4
    )
    hp = HyperParameters.from_mapping({**hyperparameters(args), "kv_store": "dist_sync"})
    packed = prepare_run(TrainingJob.new(hp, images, root / "packed", devices="cpu"))
    data = read_run(packed).data
    assert data is not None
    records = root / "records"
    records.mkdir()
    for source, name in ((data.train_rec, "train"), (data.val_rec, "validation")):
        for suffix in (".rec", ".idx"):
            (records / f"{name}{suffix}").write_bytes(source.with_suffix(suffix).read_bytes())
    save_initial_weights(root / START, args.num_layers, args.classes)
    return records


def save_initial_weights(folder: Path, num_layers: int, classes: int) -> None:
    """The baseline's initialisation (``fit.py``'s Xavier), saved as a checkpoint in
    ``folder``: both sides start from it, so their accuracies compare the trainers rather
    than two random draws of weights."""
    from imgcls_desktop.core.runtime import mxnet
    from imgcls_desktop.core.training.network import fresh_initializer
    from imgcls_desktop.core.training.sagemaker_resnet import resnet_symbol

    mx = mxnet()
    module = mx.mod.Module(resnet_symbol(num_layers, classes), context=mx.cpu())
    module.bind(data_shapes=[("data", (1, 3, 32, 32))], label_shapes=[("softmax_label", (1,))])
    mx.random.seed(0)
    module.init_params(fresh_initializer())
    folder.mkdir()
    module.save_checkpoint(str(folder / CHECKPOINT), 1)


def train_module(records: Path, settings: dict[str, str]) -> dict[str, float]:
    """The baseline on the records: its seconds and accuracies (:func:`one_side`)."""
    from imgcls_desktop.core.dataset.sources import load_dataset
    from imgcls_desktop.core.hyperparams import HyperParameters
    from imgcls_desktop.core.runtime import mxnet
    from imgcls_desktop.core.training.iterators import train_iter_arguments, val_iter_arguments
    from imgcls_desktop.core.training.sagemaker_resnet import resnet_symbol

    started = time.perf_counter()
    mx = mxnet()
    hp = HyperParameters.from_mapping(settings)
    batch = hp.mini_batch_size
    common = {"label_width": 1, "resize": None}
    train_rec, val_rec = records / "train.rec", records / "validation.rec"
    train = mx.io.ImageRecordIter(
        **train_iter_arguments(train_rec, train_rec.with_suffix(".idx"), hp, batch, **common)
    )
    val = mx.io.ImageRecordIter(
        **val_iter_arguments(val_rec, val_rec.with_suffix(".idx"), hp, batch, **common)
    )
    classes = len(load_dataset(train_rec).class_names)
    val_images = len(load_dataset(val_rec).samples)
    (records.parent / "module").mkdir(exist_ok=True)
    module = mx.mod.Module(resnet_symbol(hp.num_layers, classes), context=mx.cpu())
    _symbol, arg_params, aux_params = mx.model.load_checkpoint(
        str(records.parent / START / CHECKPOINT), 1
    )
    train_accuracy = mx.metric.Accuracy()
    val_accuracies: list[float] = []

    def validate(*_checkpoint: Any) -> None:  # fit's eval_data would count the filler rows
        val_accuracies.append(_accuracy(module, val, val_images))

    module.fit(
        train,
        num_epoch=hp.epochs,
        optimizer="sgd",
        optimizer_params={
            "learning_rate": hp.learning_rate,
            "momentum": hp.momentum,
            "wd": hp.weight_decay,
        },
        arg_params=arg_params,
        aux_params=aux_params,
        eval_metric=train_accuracy,
        kvstore="local",
        epoch_end_callback=[
            mx.callback.do_checkpoint(str(records.parent / "module" / "model")),
            validate,
        ],
    )
    return {
        "seconds": time.perf_counter() - started,
        "train_accuracy": train_accuracy.get()[1],
        "val_accuracy": val_accuracies[-1],
        "best_val_accuracy": max(val_accuracies),
    }


def _accuracy(module: Any, val: Any, images: int) -> float:
    """The share of the first ``images`` rows of ``val`` the module classifies right."""
    val.reset()
    right = seen = 0
    for batch in val:
        module.forward(batch, is_train=False)
        rows = min(images - seen, batch.data[0].shape[0])
        predicted = module.get_outputs()[0].asnumpy()[:rows].argmax(axis=1)
        right += int((predicted == batch.label[0].asnumpy()[:rows]).sum())
        seen += rows
    return right / seen


def train_ours(records: Path, settings: dict[str, str]) -> dict[str, float]:
    """Ours on the records, read where they are: its seconds and accuracies."""
    from imgcls_desktop.core.hyperparams import HyperParameters
    from imgcls_desktop.core.training.loop import TrainingJob, train
    from imgcls_desktop.core.training.run import read_metrics

    started = time.perf_counter()
    hp = HyperParameters.from_mapping(settings)
    run_dir = records.parent / f"run-{os.getpid()}"
    job = TrainingJob.new(
        hp,
        records / "train.rec",
        run_dir,
        validation=records / "validation.rec",
        devices="cpu",
        base_model=records.parent / START,  # same classes: every layer, as a fresh run would
    )
    train(job)
    seconds = time.perf_counter() - started
    epochs = read_metrics(run_dir)
    return {
        "seconds": seconds,
        "train_accuracy": epochs[-1]["train_accuracy"],
        "val_accuracy": epochs[-1]["val_accuracy"],
        "best_val_accuracy": max(epoch["val_accuracy"] for epoch in epochs),
    }


def one_side(side: str, records: Path, settings: dict[str, str]) -> None:
    """In a child process: train one side and print its figures as JSON (seconds, the last
    epoch's training and validation accuracy, the best validation accuracy)."""
    trainer = train_module if side == "module" else train_ours
    print(json.dumps(trainer(records, settings)))


def run_side(side: str, records: Path, settings: dict[str, str], threads: str) -> dict[str, float]:
    """One side in a fresh process, with ``OMP_NUM_THREADS`` set to the cores or unset."""
    environment = dict(os.environ)
    environment.pop("OMP_NUM_THREADS", None)
    cores = os.cpu_count() or 1
    if threads == "set":
        environment["OMP_NUM_THREADS"] = str(cores)
    elif side == "module":
        environment["OMP_NUM_THREADS"] = str(max(1, cores // 2))  # MXNet's own default
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(HERE.parent), environment.get("PYTHONPATH")])
    )
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--one-side", side, "--records", str(records)),
        *("--settings", json.dumps(settings)),
    ]
    output = subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def _accuracies(side: dict[str, float]) -> str:
    return (
        f"train {side['train_accuracy']:.3f}, val {side['val_accuracy']:.3f}, "
        f"best val {side['best_val_accuracy']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=144)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--num-layers", type=int, default=20)
    parser.add_argument("--side", type=int, default=28, help="image_shape's height and width")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (best is shown)")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--one-side", choices=("ours", "module"), help=argparse.SUPPRESS)
    parser.add_argument("--records", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--settings", type=json.loads, help=argparse.SUPPRESS)
    add_json_argument(parser)
    args = parser.parse_args()
    if args.one_side:
        one_side(args.one_side, args.records, args.settings)
        return
    figures = []
    with tempfile.TemporaryDirectory(dir=args.dir) as temporary:
        root = Path(temporary)
        os.environ.setdefault("IMGCLS_HOME", str(root / "home"))
        records = prepare(args, root)
        settings = hyperparameters(args)
        print(
            f"ResNet-{args.num_layers} at {args.side} px, {args.classes} classes x "
            f"{args.per_class} images, batch {args.batch_size}, {args.epochs} epochs; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        for threads in ("set", "unset"):
            runs: dict[str, list[dict[str, float]]] = {"module": [], "ours": []}
            for _ in range(args.repeat):  # alternating, so a slow spell hits both sides
                for side, results in runs.items():
                    results.append(run_side(side, records, settings, threads))
            module, ours = (min(runs[side], key=lambda run: run["seconds"]) for side in runs)
            ratio = module["seconds"] / ours["seconds"]
            print(
                f"OMP_NUM_THREADS {threads:<5}: Module API {module['seconds']:.1f} s "
                f"({_accuracies(module)}), ours {ours['seconds']:.1f} s ({_accuracies(ours)}): "
                f"{ratio:.2f}x"
            )
            if args.repeat > 1:
                for side, results in runs.items():
                    seconds = ", ".join(f"{run['seconds']:.1f}" for run in results)
                    print(f"  {side} runs: {seconds} s")
            figures.append(
                Figure(
                    f"training wall time, ResNet-{args.num_layers} at {args.side} px, "
                    f"OMP_NUM_THREADS {threads} for the baseline",
                    ours["seconds"],
                    "s",
                    "Module API baseline",
                    module["seconds"],
                    TARGETS[threads],
                    lower_is_better=True,
                )
            )
    write_figures(args.json, figures)


if __name__ == "__main__":
    main()
