"""int8 (and bf16, where the CPU has it) inference against fp32, side by side.

For each model (an untrained ResNet in SageMaker's layout, as ``predict_throughput.py``
builds it), times the network alone on ready-made batches in fp32 and in each reduced
precision this CPU can run (best of ``--repeat``, interleaved), and prints images/s and the
ratio to fp32. The target: int8 >= 2x fp32 for ResNet-18 at 224, batch 32.

Then trains a small run (ResNet-20 at 32 px on generated shapes) and prints the accuracy
change of each reduced precision on its validation images, as ``imgcls predict --precision``
measures it before use (``auto`` keeps a precision within 0.5 points).
Run: ``python benchmarks/precision.py [--models resnet18-224,resnet20-32] [--batch-size 32]
[--repeat 3] [--epochs 40] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from predict_throughput import MODELS, best_times, build_model, forward_work
from report import Figure, add_json_argument, write_figures

from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.devices import parse_devices
from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.inference import Predictor, open_predictor
from imgcls_desktop.core.precision import (
    AUTO_TOLERANCE_POINTS,
    REDUCED_PRECISIONS,
    bf16_network,
    choose_precision,
    int8_network,
    run_check_data,
    unavailable_reason,
)
from imgcls_desktop.core.runtime import configure_threads
from imgcls_desktop.core.training.loop import TrainingJob, train

TARGET = 2.0


def reduced(predictor: Predictor, precision: str) -> Predictor:
    """``predictor``'s network in ``precision`` (int8 calibrated on random pixels: the
    speed does not depend on the ranges)."""
    if precision == "bf16":
        network = bf16_network(predictor.network)
    else:
        shape = (predictor.batch_size, *predictor.model.input_shape)
        pixels = np.random.default_rng(1).uniform(0, 255, shape).astype(np.float32)
        network = int8_network(predictor, pixels)
    return Predictor(
        predictor.model, device="cpu", batch_size=predictor.batch_size, network=network
    )


def speeds(root: Path, names: list[str], batch_size: int, repeat: int) -> list[Figure]:
    """Forward images/s per model and precision, against fp32."""
    figures = []
    usable = [
        p for p in REDUCED_PRECISIONS if unavailable_reason(p, parse_devices("cpu")[0]) is None
    ]
    for precision in sorted(set(REDUCED_PRECISIONS) - set(usable)):
        print(f"{precision}: {unavailable_reason(precision, parse_devices('cpu')[0])}")
    for name in names:
        num_layers, side = MODELS[name]
        fp32 = Predictor(
            build_model(root / name, num_layers, side, batch_size),
            device="cpu",
            batch_size=batch_size,
        )
        predictors = [fp32, *(reduced(fp32, precision) for precision in usable)]
        works = [forward_work(predictor, 4 * batch_size) for predictor in predictors]
        seconds = best_times([work for work, _count in works], repeat)
        rates = [count / elapsed for (_work, count), elapsed in zip(works, seconds)]
        line = "  ".join(
            f"{p.precision} {rate:.1f}/s ({rate / rates[0]:.2f}x)"
            for p, rate in zip(predictors, rates)
        )
        print(f"{name:<14} batch {batch_size}: {line}")
        for predictor, rate in zip(predictors[1:], rates[1:]):
            target = TARGET if name == "resnet18-224" and predictor.precision == "int8" else None
            figures.append(
                Figure(
                    f"{predictor.precision} forward, {name}, batch {batch_size}",
                    rate,
                    "images/s",
                    "fp32 forward",
                    rates[0],
                    target,
                )
            )
    return figures


def accuracy_changes(root: Path, epochs: int) -> list[Figure]:
    """Train a small run and measure each usable precision's accuracy change on it."""
    images = generate_sample_dataset(root / "shapes")  # the app's sample: 4 x 100, 64 px
    hp = HyperParameters.from_mapping(
        {  # what Suggest Settings proposes (about 88% validation accuracy at 40)
            "num_layers": 20,
            "image_shape": "3,32,32",
            "mini_batch_size": 32,
            "epochs": epochs,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "augmentation_type": "crop_color_transform",
        }
    )
    train(TrainingJob(hp, images, root / "run"))
    figures = []
    for precision in REDUCED_PRECISIONS:
        if unavailable_reason(precision, parse_devices("cpu")[0]) is not None:
            continue
        chosen = choose_precision(
            open_predictor(root / "run", device="cpu"), precision, run_check_data(root / "run")
        )
        print(chosen.network.note)
        points = float(chosen.network.note.split("(")[1].split(" points")[0])
        figures.append(
            Figure(
                f"{precision} accuracy change, ResNet-20 at 32 px, validation images",
                points,
                "points",
                target=-AUTO_TOLERANCE_POINTS,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=", ".join(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40, help="of the small run (accuracy)")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    add_json_argument(parser)
    args = parser.parse_args()
    configure_threads()  # MXNet's OpenMP threads as ``imgcls`` sets them: every core
    warnings.filterwarnings("ignore", category=UserWarning)  # MXNet's type-inference notes
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat}")
    with tempfile.TemporaryDirectory(dir=args.dir) as temporary:
        root = Path(temporary)
        os.environ.setdefault("IMGCLS_HOME", str(root / "home"))
        figures = speeds(root, args.models.split(","), args.batch_size, args.repeat)
        figures += accuracy_changes(root, args.epochs)
    write_figures(args.json, figures)


if __name__ == "__main__":
    main()
