"""A worker the launcher tests start: ``python distributed_worker.py MODE [KV_STORE]``.

Modes: ``sum`` (push a known array, pull the sum; global sums), ``updates`` (one step of
:class:`ServerUpdates` with known gradients), ``fail`` (exit 3 after
joining), ``kill`` (SIGKILL itself after joining), ``pickle`` (send the servers MXNet's
pickled optimizer), ``wait`` (join, start a child, say so and wait to be stopped).
Prints JSON lines the tests read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from imgcls_desktop.core.distributed import worker
from imgcls_desktop.core.distributed.lifeline import exit_with_launcher
from imgcls_desktop.core.runtime import mxnet

KEY = 7
SHAPE = (3, 2)


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def push_and_pull(kv_store: str) -> None:
    mx = mxnet()
    kvstore, place = worker.open_kvstore(kv_store)
    say(rank=place.rank, workers=place.num_workers, shard=worker.shard_arguments(place))
    if kv_store == "dist_async":
        worker.share_optimizer(kvstore, place, {"name": "sgd", "learning_rate": 1.0})
    kvstore.init(KEY, mx.nd.zeros(SHAPE))
    kvstore.push(KEY, mx.nd.ones(SHAPE) * (place.rank + 1))
    pulled = mx.nd.zeros(SHAPE)
    kvstore.pull(KEY, out=pulled)
    say(rank=place.rank, pulled=pulled.asnumpy().tolist())
    sums = worker.GlobalSums(kvstore, 2)
    say(rank=place.rank, sums=[sums.add([1, place.rank + 10]), sums.add([2.5, 0])])


def server_updates(kv_store: str) -> None:
    """Weights of 1, gradients of rank + 1 (1 and 2), SGD at learning rate 1 on the servers."""
    mx = mxnet()
    kvstore, place = worker.open_kvstore(kv_store)
    weight = mx.gluon.Parameter("weight", shape=SHAPE, init=mx.init.One())
    weight.initialize()
    frozen = mx.gluon.Parameter("frozen", shape=SHAPE, grad_req="null", init=mx.init.Zero())
    frozen.initialize()
    settings = {"name": "sgd", "learning_rate": 1.0, "rescale_grad": 1.0, "wd": 0.0}
    updates = worker.ServerUpdates(kvstore, place, [weight, frozen], settings)
    weight.grad()[:] = place.rank + 1
    updates.step()
    mx.nd.waitall()  # this worker's update is applied on the server
    kvstore._barrier()  # and every other worker's
    pulled = mx.nd.zeros(SHAPE)
    kvstore.pull(0, out=pulled)
    say(rank=place.rank, weight=pulled.asnumpy().tolist(), keys=len(updates.params))


def main() -> None:
    exit_with_launcher()
    mode = sys.argv[1]
    if mode == "sum":
        push_and_pull(sys.argv[2])
        return
    if mode == "updates":
        server_updates(sys.argv[2])
        return
    kvstore, place = worker.open_kvstore("dist_sync")
    say(rank=place.rank, joined=True)
    if mode == "pickle":
        kvstore.set_optimizer(mxnet().optimizer.SGD())
    if mode == "fail":
        print("RuntimeError: this worker fails on purpose", flush=True)
        sys.exit(3)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    say(rank=place.rank, child=child.pid)
    signal.pause()


if __name__ == "__main__":
    main()
