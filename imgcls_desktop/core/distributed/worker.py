"""What a training worker asks when it runs under the launcher (``DMLC_ROLE=worker``).

The loop's part: call :func:`~.lifeline.exit_with_launcher` first, open the kvstore
(:func:`open_kvstore`), read its own shard of the ``.rec`` (:func:`shard_arguments`), report
global metrics (:class:`GlobalSums`), say the effective batch (:func:`effective_batch_message`),
let only rank 0 write. Ranks are given by the scheduler in the order workers register: they
need not match the launcher's labels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..runtime import mxnet
from .server import CONTROLLER_HEAD, SUM_KEYS

# GlobalSums' slots (kinds of sums); under dist_async each worker has as many keys of its own.
_SUM_SLOTS = 16

DIST_KV_STORES = ("dist_sync", "dist_async")


def is_distributed_worker(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process was started as a parameter-server worker."""
    environ = os.environ if environ is None else environ
    return environ.get("DMLC_ROLE") == "worker" and "DMLC_PS_ROOT_URI" in environ


@dataclass(frozen=True)
class WorkerPlace:
    """This worker's rank (0 writes checkpoints, metrics, run.json) among ``num_workers``."""

    rank: int
    num_workers: int

    @property
    def writes(self) -> bool:
        """Whether this worker writes the run's files (rank 0 only)."""
        return self.rank == 0


def open_kvstore(kv_store: str) -> tuple[Any, WorkerPlace]:
    """``mx.kv.create(kv_store)`` and this worker's place; blocks until every node joined."""
    if kv_store not in DIST_KV_STORES:
        raise ValueError(f"kv_store {kv_store!r} is not distributed: use one of {DIST_KV_STORES}")
    if not is_distributed_worker():
        raise RuntimeError(f"kv_store={kv_store} needs the launcher (DMLC_* variables unset)")
    kvstore = mxnet().kv.create(kv_store)
    return kvstore, WorkerPlace(kvstore.rank, kvstore.num_workers)


def shard_arguments(place: WorkerPlace) -> dict[str, int]:
    """``ImageRecordIter`` keywords reading this worker's part of the records."""
    return {"num_parts": place.num_workers, "part_index": place.rank}


def effective_batch_message(mini_batch_size: int, num_workers: int) -> str:
    """What the log and the window say about the batch in a distributed run."""
    return (
        f"Effective batch: {mini_batch_size * num_workers} images per step "
        f"(mini_batch_size {mini_batch_size} on each of {num_workers} workers, as SageMaker counts)"
    )


def _send(kvstore: Any, command: str, settings: Mapping[str, Any]) -> None:
    body = json.dumps({"command": command, **settings})
    kvstore._send_command_to_servers(CONTROLLER_HEAD, body)


def share_optimizer(kvstore: Any, place: WorkerPlace, settings: Mapping[str, Any]) -> None:
    """Give the servers their optimizer as JSON (``{"name": "sgd", "learning_rate": ...}``).

    Every worker calls it: rank 0 sends, all wait at a barrier, so no push reaches a server
    before its optimizer (``dist_async`` servers abort then). Never ``kv.set_optimizer``: it
    pickles the optimizer, and our servers refuse pickles.
    """
    if place.rank == 0:
        _send(kvstore, "optimizer", settings)
    kvstore._barrier()


def send_learning_rate(kvstore: Any, learning_rate: float) -> None:
    """Change the servers' learning rate (a scheduler step), from rank 0."""
    _send(kvstore, "learning_rate", {"learning_rate": learning_rate})


def init_keys(kvstore: Any, values: Mapping[int, Any]) -> None:
    """``kv.init`` every key with rank 0's value, then wait until the servers hold them all.

    MXNet 1.9.1's ``init`` on the CPU does not wait for rank 0's push to reach the servers
    before its barrier (it waits on a buffer that push does not use), so another worker's
    first pull could reach a server before the value and abort it ("init K first"), or its
    first push be taken for the value. Rank 0 waits for its pushes; all meet once more.
    """
    for key, value in values.items():
        kvstore.init(key, value)
    if kvstore.rank == 0:
        mxnet().nd.waitall()
    kvstore._barrier()


def trained(params: Sequence[Any]) -> list[Any]:
    """The parameters that get gradients: the keys 0, 1, ... of the weights, in this order."""
    return [param for param in params if param.grad_req != "null"]


def start_from_rank_0(kvstore: Any, params: Sequence[Any]) -> list[Any]:
    """Give ``params`` the keys 0, 1, ... holding rank 0's weights, and set every worker's
    weights to them; returns the pull buffers (one per parameter).

    The weights travel through plain copies: oneDNN reorders a convolution's or dense
    layer's weight array in place when it runs for inference, and MXNet 1.9.1's kvstore
    then sends it as an array the servers do not store ("init K first")."""
    nd = mxnet().nd
    plain = {key: nd.array(param.data().asnumpy()) for key, param in enumerate(params)}
    init_keys(kvstore, plain)
    buffers = [nd.zeros(param.shape) for param in params]
    pull_weights(kvstore, params, buffers)
    return buffers


def pull_weights(kvstore: Any, params: Sequence[Any], buffers: Sequence[Any]) -> None:
    """Set ``params`` to the servers' weights (through ``buffers``, see above)."""
    for key, (param, buffer) in enumerate(zip(params, buffers)):
        kvstore.pull(key, out=buffer, priority=-key)
        param.set_data(buffer)


class SummedGradients:
    """``dist_sync`` with the update on each worker: every step, each gradient is replaced by
    its sum over workers (and over this worker's devices), as Gluon's ``Trainer`` does with
    ``update_on_kvstore=False``, but with keys initialised safely (:func:`init_keys`); all
    workers start from rank 0's weights. Then ``trainer.step(batch x workers)``."""

    def __init__(self, kvstore: Any, params: Sequence[Any]) -> None:
        self.kvstore = kvstore
        self.params = trained(params)
        start_from_rank_0(kvstore, self.params)

    def sum(self) -> None:
        """After ``backward()``: push this worker's gradients, pull their sum over workers."""
        for key, param in enumerate(self.params):
            self.kvstore.push(key, param.list_grad(), priority=-key)
            self.kvstore.pull(key, out=param.list_grad(), priority=-key)


class GlobalSums:
    """Sums over all workers of a few numbers (metric counts), through the kvstore.

    Every worker calls :meth:`add` the same number of times (it waits for the others); each
    call returns the element-wise sum of what every worker passed to that call. Under
    ``dist_sync`` the servers sum each round's pushes. ``dist_async`` servers keep only the
    last push, so each worker stores its values under a key of its own, and after a barrier
    everyone reads and sums them all (then meets again, so that nobody stores the next
    call's values before all have read these); with an optimizer on the servers, create it
    first (a push before it aborts them). The sums travel as float32: counts are exact up to
    2**24 (16.7 million) per call.
    """

    def __init__(self, kvstore: Any, size: int, slot: int = 0) -> None:
        if kvstore.type not in ("dist_sync", "dist_async"):
            raise ValueError(
                f"global sums need kv_store=dist_sync or dist_async, not {kvstore.type}"
            )
        if not 0 <= slot < _SUM_SLOTS:
            raise ValueError(f"the slot must be from 0 to {_SUM_SLOTS - 1}, not {slot}")
        self.kvstore = kvstore
        self.size = size
        if kvstore.type == "dist_sync":
            self.keys = [SUM_KEYS + slot]
        else:
            self.keys = [
                SUM_KEYS + _SUM_SLOTS * (1 + rank) + slot for rank in range(kvstore.num_workers)
            ]
        zeros = mxnet().nd.zeros
        init_keys(kvstore, {key: zeros((size,)) for key in self.keys})

    def add(self, values: Sequence[float]) -> list[float]:
        """The sum over workers of ``values``."""
        if len(values) != self.size:
            raise ValueError(f"expected {self.size} values, got {len(values)}")
        nd = mxnet().nd
        if len(self.keys) == 1:
            total = nd.zeros((self.size,))
            self.kvstore.push(self.keys[0], nd.array(values))
            self.kvstore.pull(self.keys[0], out=total)
            return [float(value) for value in total.asnumpy()]
        self.kvstore.push(self.keys[self.kvstore.rank], nd.array(values))
        nd.waitall()
        self.kvstore._barrier()
        stored = [nd.zeros((self.size,)) for _ in self.keys]
        for key, out in zip(self.keys, stored):
            self.kvstore.pull(key, out=out)
        totals = sum(out.asnumpy().astype(np.float64) for out in stored)
        self.kvstore._barrier()
        return [float(value) for value in totals]


class ServerUpdates:
    """Parameters updated by the servers' optimizer: push the gradients, pull the weights.

    What ``dist_async`` needs (its servers apply each worker's push as it arrives), and an
    option for ``dist_sync``. Gluon's ``Trainer`` does the same with ``update_on_kvstore=True``
    but hands the servers a pickled optimizer, which our servers refuse; this sends JSON
    (:func:`share_optimizer`). Give ``rescale_grad`` in ``optimizer``: ``1 / mini_batch_size``
    for ``dist_async``, ``1 / (mini_batch_size x workers)`` for ``dist_sync`` (the servers sum
    the workers' gradients before the update). Every worker makes one, with the same
    parameters in the same order; all start from rank 0's weights. One device per worker.
    """

    def __init__(
        self,
        kvstore: Any,
        place: WorkerPlace,
        params: Sequence[Any],
        optimizer: Mapping[str, Any],
    ) -> None:
        share_optimizer(kvstore, place, optimizer)
        self.kvstore = kvstore
        self.params = trained(params)
        self.buffers = start_from_rank_0(kvstore, self.params)

    def step(self) -> None:
        """After ``backward()``: send this worker's gradients, fetch the servers' weights."""
        for key, param in enumerate(self.params):
            self.kvstore.push(key, param.grad(), priority=-key)
        pull_weights(self.kvstore, self.params, self.buffers)
