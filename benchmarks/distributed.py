"""Images per second of a tiny Gluon training loop on 1, 2 and 4 local parameter-server
workers, and the bytes each worker exchanges per step.

(a) Throughput: ResNet-20 (model zoo ``ResNetV2``, CIFAR layout: pre-activation basic blocks,
    16/32/64 channels) at 28 px on random data in memory, batch 64 per worker, SGD updated on
    the workers (``update_on_kvstore=False``: gradients pushed, their sum pulled), through
    :mod:`imgcls_desktop.core.distributed` with ``kv_store=dist_sync`` and one server; each
    worker times its steps after a warm-up and the figure is the sum over workers. A run in
    one process without a kvstore is the baseline. Not our training loop: the point is the
    parameter server's overhead. On 2 cores no speed-up is expected.
(b) Traffic: the trainable parameters of ResNet-20 (28 px) and ResNet-18 (224 px) in float32;
    each ``dist_sync`` step pushes the gradients and pulls their sum: 2 x that many bytes per
    worker per step.

Run: ``python benchmarks/distributed.py [--workers 1 2 4] [--steps 30] [--batch 64]``. On a
loaded machine set ``OMP_NUM_THREADS=1``: OpenMP's spinning threads collapse when the cores
are taken (here ResNet-20 fell from 156 to 21 images/s with 2 threads at nice 19, load 10).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report import Figure, add_json_argument, write_figures

from imgcls_desktop.core.distributed.launcher import launch
from imgcls_desktop.core.distributed.plan import parse_launch
from imgcls_desktop.core.distributed.worker import is_distributed_worker, open_kvstore
from imgcls_desktop.core.runtime import mxnet

CLASSES = 10
WARM_UP = 5
EXCHANGES = 10


def resnet20() -> object:
    vision = mxnet().gluon.model_zoo.vision
    return vision.ResNetV2(vision.BasicBlockV2, [3, 3, 3], [16, 16, 32, 64], CLASSES, True)


def resnet18() -> object:
    return mxnet().gluon.model_zoo.vision.resnet18_v2(classes=1000)


def trainable_parameters(net: object, size: int) -> int:
    """How many numbers the optimizer updates (what a step pushes and pulls)."""
    mx = mxnet()
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, size, size)))
    params = net.collect_params().values()
    return sum(p.data().size for p in params if p.grad_req != "null")


def measure(steps: int, batch: int) -> dict[str, float]:
    """Train ResNet-20 on one random batch; under the launcher, through ``dist_sync``.

    Returns images per second of wall time and of this process's CPU time (fair on a
    loaded machine), and, distributed, the seconds one gradient exchange takes alone.
    """
    mx = mxnet()
    kvstore = open_kvstore("dist_sync")[0] if is_distributed_worker() else None
    net = resnet20()
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = mx.gluon.Trainer(
        net.collect_params(),
        "sgd",
        {"learning_rate": 0.05, "momentum": 0.9},
        kvstore=kvstore,
        update_on_kvstore=False if kvstore is not None else None,
    )
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    data = mx.nd.random.uniform(shape=(batch, 3, 28, 28))
    label = mx.nd.array(mx.nd.random.randint(0, CLASSES, shape=(batch,)).asnumpy())
    for step in range(WARM_UP + steps):
        if step == WARM_UP:
            mx.nd.waitall()
            wall, cpu = time.perf_counter(), time.process_time()
        with mx.autograd.record():
            output = loss(net(data), label)
        output.backward()
        trainer.step(batch)
    mx.nd.waitall()
    figures = {
        "images_per_second": steps * batch / (time.perf_counter() - wall),
        "images_per_cpu_second": steps * batch / (time.process_time() - cpu),
    }
    if kvstore is not None:
        started = time.perf_counter()
        for _ in range(EXCHANGES):
            trainer.allreduce_grads()
        mx.nd.waitall()
        figures["exchange_seconds"] = (time.perf_counter() - started) / EXCHANGES
    return figures


def distributed(workers: int, steps: int, batch: int) -> list[dict[str, float]]:
    """Each worker's figures with ``workers`` local workers and one server."""
    figures = []

    def on_line(_name: str, text: str) -> None:
        if text.startswith('{"images_per_second"'):
            figures.append(json.loads(text))

    command = [sys.executable, __file__, "--worker", "--steps", str(steps), "--batch", str(batch)]
    launch(parse_launch(f"local:{workers}"), command, on_line=on_line)
    assert len(figures) == workers, figures
    return figures


def _line(label: str, figures: list[dict[str, float]]) -> str:
    wall = sum(f["images_per_second"] for f in figures)
    cpu = _per_cpu_second(figures)
    text = f"  {label:<30} {wall:6.0f} images/s (sum), {cpu:6.0f} images per CPU-second"
    if "exchange_seconds" in figures[0]:
        exchange = max(f["exchange_seconds"] for f in figures)
        text += f", one exchange alone {1000 * exchange:5.1f} ms"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    add_json_argument(parser)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.steps, args.batch)), flush=True)
        return

    # A plain kill ends the run like Ctrl-C: the launcher stops its processes on the way out.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(1))
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    print(f"OMP_NUM_THREADS: {os.environ.get('OMP_NUM_THREADS', 'unset: cores shared out')}")
    print(f"cores: {os.cpu_count()}; load average at start: {os.getloadavg()[0]:.1f}")
    print(f"ResNet-20, 28 px, batch {args.batch} per worker, {args.steps} timed steps")
    alone = [measure(args.steps, args.batch)]
    print(_line("one process, no kvstore:", alone))
    results = []
    for workers in args.workers:
        label = f"dist_sync, {workers} worker(s), 1 server:"
        figures = distributed(workers, args.steps, args.batch)
        print(_line(label, figures))
        results.append(
            Figure(
                f"dist_sync, {workers} worker(s): images per CPU-second",
                _per_cpu_second(figures),
                "images/s",
                "one process",
                _per_cpu_second(alone),
            )
        )
    for name, net, size in (("ResNet-20", resnet20(), 28), ("ResNet-18", resnet18(), 224)):
        numbers = trainable_parameters(net, size)
        per_step = 2 * 4 * numbers
        print(
            f"{name}: {numbers:,} trainable parameters = {4 * numbers / 1e6:.2f} MB in float32; "
            f"push + pull per worker per step: {per_step / 1e6:.2f} MB"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    write_figures(args.json, results)


def _per_cpu_second(figures: list[dict[str, float]]) -> float:
    """Images per CPU-second, averaged over the workers (fair on a shared machine)."""
    return sum(f["images_per_cpu_second"] for f in figures) / len(figures)


if __name__ == "__main__":
    main()
