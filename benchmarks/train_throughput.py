"""Training images per second end to end against the network's pure compute rate.

For ResNet-20 at 32 px and ResNet-18 at 224 px:

  (a) end to end: :func:`imgcls_desktop.core.training.loop.train` on a generated ``.rec``
      (photo-like JPEGs stored at the shorter side training would pack them at, 37 and 256
      px) with ``augmentation_type=crop``: decoding, augmentation, the copy to the device,
      training, metrics and callbacks. The figure is the training rate of the epochs after
      the first (which builds the graphs), as the loop reports it (validation excluded);
  (b) compute: the same network, hybridized the same way, trained on one synthetic batch
      already in memory, as many batches as an epoch;

and their ratio. The resident memory after every epoch shows whether it stays flat. Last,
one pass of the training iterator over a larger ``.rec`` (``--stream-images`` at 256 px)
shows the memory at each quarter of the file: it stays flat, as the records are streamed,
never loaded whole. Run: ``python benchmarks/train_throughput.py [--epochs 3] [--small-images 3072]
[--large-images 256] [--stream-images 8000] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from report import Figure, add_json_argument, write_figures

from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.callbacks import Callback
from imgcls_desktop.core.training.data import TrainingData
from imgcls_desktop.core.training.iterators import train_iter
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.core.training.network import build_network, fresh_initializer

CLASSES = 4


def _photo(size: int, seed: int) -> np.ndarray:
    """A photo-like BGR square: smooth random colour fields plus fine noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-12, 13, (size, size, 3), dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def write_records(path: Path, count: int, size: int) -> Path:
    """A ``.rec`` + ``.idx`` of ``count`` JPEGs of ``size`` px, labels cycling over classes."""
    mx = mxnet()
    record = mx.recordio.MXIndexedRecordIO(str(path.with_suffix(".idx")), str(path), "w")
    for index in range(count):
        header = mx.recordio.IRHeader(0, float(index % CLASSES), index, 0)
        record.write_idx(index, mx.recordio.pack_img(header, _photo(size, index), quality=90))
    record.close()
    return path


def resident_mb() -> float:
    """The current resident set size of this process, in MB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class _Rates(Callback):
    def __init__(self) -> None:
        self.rates: list[float] = []
        self.memory: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.rates.append(logs["images_per_sec"])
        self.memory.append(resident_mb())
        print(
            f"    epoch {epoch}: {logs['images_per_sec']:.1f} images/s, "
            f"RSS {self.memory[-1]:.0f} MB",
            flush=True,
        )


def end_to_end(
    folder: Path, depth: int, size: int, images: int, batch: int, epochs: int
) -> tuple[float, list[float]]:
    """Training images/s of epochs 2.. and the memory after each epoch."""
    stored = math.ceil(size * 8 / 7)
    train_rec = write_records(folder / f"train{size}.rec", images, stored)
    val_rec = write_records(folder / f"val{size}.rec", batch, stored)
    hp = HyperParameters(
        num_layers=depth,
        image_shape=f"3,{size},{size}",
        epochs=epochs,
        mini_batch_size=batch,
        learning_rate=0.01,
        augmentation_type="crop",
    )
    rates = _Rates()
    train(TrainingJob(hp, train_rec, folder / f"run{size}", validation=val_rec), callbacks=[rates])
    return float(np.mean(rates.rates[1:])), rates.memory


def compute(depth: int, size: int, batches: int, batch: int) -> float:
    """Training images/s of the network on one batch already in memory."""
    mx = mxnet()
    net = build_network(depth, CLASSES, (3, size, size))
    net.initialize(fresh_initializer())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01})
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    data = mx.nd.random.uniform(0, 255, (batch, 3, size, size))
    label = mx.nd.array(np.arange(batch) % CLASSES)

    def step() -> None:
        with mx.autograd.record():
            value = loss(net(data), label)
        value.backward()
        trainer.step(batch)

    for _ in range(2):  # builds the graph
        step()
    mx.nd.waitall()
    started = time.perf_counter()
    for _ in range(batches):
        step()
    mx.nd.waitall()
    return batches * batch / (time.perf_counter() - started)


def streaming(folder: Path, images: int, size: int = 256) -> tuple[float, list[float]]:
    """File size, and resident memory at each quarter of one augmented pass over it (MB)."""
    rec = write_records(folder / "stream.rec", images, size)
    data = TrainingData(
        train_rec=rec,
        train_idx=rec.with_suffix(".idx"),
        val_rec=rec,
        val_idx=rec.with_suffix(".idx"),
        class_names=tuple(f"class_{i}" for i in range(CLASSES)),
        num_train=images,
        num_val=images,
        multi_label=False,
        shorter_side=size,
        min_image_size=(size, size),
        train_class_counts=(images // CLASSES,) * CLASSES,
    )
    hp = HyperParameters(image_shape="3,224,224", augmentation_type="crop")
    batches = math.ceil(images / 32)
    quarters = {max(1, batches * q // 4) for q in range(1, 5)}
    memory = []
    started = time.perf_counter()
    for number, _batch in enumerate(train_iter(data, hp, 32), start=1):
        if number in quarters:
            memory.append(resident_mb())
    rate = images / (time.perf_counter() - started)
    print(f"    decoded and augmented {rate:.0f} images/s", flush=True)
    return rec.stat().st_size / 2**20, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--small-images", type=int, default=3072, help="ResNet-20 at 32 px")
    parser.add_argument("--large-images", type=int, default=256, help="ResNet-18 at 224 px")
    parser.add_argument("--stream-images", type=int, default=8000, help="streaming check")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    add_json_argument(parser)
    args = parser.parse_args()
    mxnet()
    configs = [(20, 32, args.small_images, 128), (18, 224, args.large_images, 32)]
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        rows = []
        for depth, size, images, batch in configs:
            print(f"ResNet-{depth} at {size} px, {images} images, batch {batch}:", flush=True)
            e2e, memory = end_to_end(Path(work), depth, size, images, batch, args.epochs)
            pure = compute(depth, size, math.ceil(images / batch), batch)
            rows.append((depth, size, e2e, pure, memory))
        print(f"Streaming {args.stream_images} images of 256 px:", flush=True)
        size_mb, stream_memory = streaming(Path(work), args.stream_images)
    print()
    print(f"{'network':<18}{'end to end':>12}{'compute':>10}{'ratio':>8}  RSS after each epoch")
    for depth, size, e2e, pure, memory in rows:
        trend = " ".join(f"{mb:.0f}" for mb in memory)
        print(
            f"ResNet-{depth} {size} px".ljust(18)
            + f"{e2e:>9.1f}/s {pure:>7.1f}/s {e2e / pure:>7.2f}  {trend} MB"
        )
    quarters = " ".join(f"{mb:.0f}" for mb in stream_memory)
    print(f"One pass over a {size_mb:.0f} MB .rec, RSS at each quarter: {quarters} MB")
    write_figures(
        args.json,
        [
            Figure(f"training ResNet-{depth} at {size} px", e2e, "images/s", "compute alone", pure)
            for depth, size, e2e, pure, _memory in rows
        ],
    )


if __name__ == "__main__":
    main()
