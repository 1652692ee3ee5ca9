"""Images per second of batch labelling a folder of JPEGs, beside the network's forward rate.

Generates a folder of photo-like JPEGs (``pack.py``'s generator) and, for each model (an
untrained ResNet saved in SageMaker's layout and opened with ``open_model``), times:

  (a) forward: ``Predictor.forward`` on ready-made batches (no decoding), the ceiling;
  (b) prepare: reading, decoding and preparing the images on every core (no network);
  (c) end to end: ``label_images`` on the folder (read, decode, prepare in the thread pool
      overlapping the network),

each with SageMaker's preprocessing (whole image resized to H x W) and with a run's (shorter
side resized, centre crop, reduced JPEG decoding), and prints images/s and the ratio of (c)
to (a). Both (a) and (b) want every core: when (b) is not much faster than (a), decoding
takes a share of the cores and the ratio falls below 1. The ``bound`` column is the
end-to-end rate when both share the cores perfectly, ``1 / (1/forward + 1/prepare)``. Each
figure is the best of ``--repeat``, the three measured in turn. The target: (c) >= 0.8x
(a) for every model. On a busy machine the absolute figures fall; the ratios, measured side
by side, are what count.
Run: ``python benchmarks/predict_throughput.py [--images 300] [--size 640x480]
[--batch-size 32] [--models resnet18-224,resnet20-32] [--dir DIR] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
from pack import generate
from report import Figure, add_json_argument, write_figures

from imgcls_desktop.core.artifacts import save_checkpoint
from imgcls_desktop.core.inference import Predictor
from imgcls_desktop.core.labelling import label_images
from imgcls_desktop.core.models import LoadedModel, open_model
from imgcls_desktop.core.preprocessing import Interpolation, Preprocessing
from imgcls_desktop.core.runtime import configure_threads, mxnet
from imgcls_desktop.core.training.network import build_network

MODELS = {"resnet18-224": (18, 224), "resnet20-32": (20, 32)}
CLASSES = 4
TARGET = 0.8


def build_model(folder: Path, num_layers: int, side: int, batch_size: int) -> LoadedModel:
    """An untrained ResNet saved in SageMaker's layout, opened as users open models."""
    mx = mxnet()
    shape = (3, side, side)
    net = build_network(num_layers, CLASSES, shape)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, *shape)))
    save_checkpoint(folder, net, 1, batch_size=batch_size)
    return open_model(folder)


def run_preprocessing(model: LoadedModel) -> LoadedModel:
    """The model with the preprocessing record a run of ours would have (8/7 margin)."""
    channels, height, width = model.input_shape
    record = Preprocessing(
        channels,
        height,
        width,
        shorter_side=math.ceil(max(height, width) * 8 / 7),
        interpolation=Interpolation.PACKER,
    )
    return dataclasses.replace(model, preprocessing=record)


def best_times(works: list[Callable[[], object]], repeat: int) -> list[float]:
    """The shortest time of each of ``works``, run in turn ``repeat`` times: interleaved, so
    that a change of the machine's load falls on all of them alike."""
    best = [math.inf] * len(works)
    for _ in range(repeat):
        for position, work in enumerate(works):
            start = time.perf_counter()
            work()
            best[position] = min(best[position], time.perf_counter() - start)
    return best


def forward_work(predictor: Predictor, count: int) -> tuple[Callable[[], None], int]:
    """The network alone on at least ``count`` ready-made images, in full batches: the work
    and its number of images."""
    shape = (predictor.batch_size, *predictor.model.input_shape)
    batch = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    batches = math.ceil(count / predictor.batch_size)
    predictor.forward(batch)  # warm-up: the static memory plan

    def work() -> None:
        for _ in range(batches):
            predictor.forward(batch)

    return work, batches * predictor.batch_size


def prepare_work(predictor: Predictor, paths: list[Path]) -> Callable[[], None]:
    """Reading, decoding and preparing alone, one thread per core."""

    def work() -> None:
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(lambda path: predictor.preprocess(path.read_bytes()), paths))

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", default=",".join(MODELS), help=", ".join(MODELS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    add_json_argument(parser)
    args = parser.parse_args()
    configure_threads()  # MXNet's OpenMP threads as ``imgcls`` sets them: every core
    warnings.filterwarnings("ignore", category=UserWarning)  # MXNet's type-inference notes
    width, height = (int(n) for n in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory(dir=args.dir) as temporary:
        root = Path(temporary)
        start = time.perf_counter()
        paths = generate(root / "images", args.images, width, height)
        print(f"{args.images} JPEGs of {width}x{height} in {time.perf_counter() - start:.1f} s")
        print(
            f"batch size {args.batch_size}; best of {args.repeat}; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        columns = f"{'forward':>10}{'prepare':>10}{'bound':>10}{'end to end':>12}{'ratio':>8}"
        print(f"{'model':<14}{'preprocessing':<15}{columns}")
        figures = []
        for name in args.models.split(","):
            num_layers, side = MODELS[name]
            model = build_model(root / name, num_layers, side, args.batch_size)
            for kind, variant in (("sagemaker", model), ("run", run_preprocessing(model))):
                predictor = Predictor(variant, device="cpu", batch_size=args.batch_size)
                forward_only, forward_images = forward_work(predictor, args.images)
                labelling = partial(label_images, predictor, [root / "images"])
                seconds = best_times(
                    [forward_only, prepare_work(predictor, paths), labelling], args.repeat
                )
                forward, prepare, end_to_end = (
                    count / elapsed
                    for count, elapsed in zip([forward_images, len(paths), len(paths)], seconds)
                )
                bound = 1 / (1 / forward + 1 / prepare)
                rates = f"{forward:>8.0f}/s{prepare:>8.0f}/s{bound:>8.0f}/s{end_to_end:>10.0f}/s"
                print(f"{name:<14}{kind:<15}{rates}{end_to_end / forward:>8.2f}")
                what = f"labelling {args.size} JPEGs, {name}, {kind} preprocessing"
                figures += [
                    Figure(what, end_to_end, "images/s", "network forward alone", forward, TARGET),
                    Figure(f"{what}: bound", bound, "images/s", "network forward alone", forward),
                ]
    write_figures(args.json, figures)


if __name__ == "__main__":
    main()
