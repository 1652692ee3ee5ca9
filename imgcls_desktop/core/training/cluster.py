"""The training loop's side of a distributed run (``kv_store=dist_sync`` or ``dist_async``).

A process the launcher started as a worker (:func:`~imgcls_desktop.core.distributed.worker.
is_distributed_worker`) joins the parameter server (:meth:`Cluster.join`) and trains its own
shard of the records. ``dist_sync``: the gradients are summed over workers through the
servers (:class:`~imgcls_desktop.core.distributed.worker.SummedGradients`), then each worker's
own ``Trainer`` steps with ``batch x workers``; ``dist_async``: the servers update
(:class:`~imgcls_desktop.core.distributed.worker.ServerUpdates`). Rank 0
validates on the full validation set (the other workers' batch-norm statistics differ from
its own, and its checkpoint is the one saved) and writes the run folder; at every epoch's end
the workers sum their training metrics (``dist_sync``; ``dist_async`` reports rank 0's shard)
and take rank 0's decision to stop or go on, so every worker stops after the same epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from imgcls_desktop.core.distributed.worker import (
    DIST_KV_STORES,
    GlobalSums,
    ServerUpdates,
    SummedGradients,
    WorkerPlace,
    effective_batch_message,
    is_distributed_worker,
    open_kvstore,
    shard_arguments,
)
from imgcls_desktop.core.hyperparams import HyperparameterError, HyperParameters, Problem
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.metrics import Metrics
from imgcls_desktop.core.training.optimizers import create_optimizer

_TRAIN_SUMS = 0
_DECISION = 1
_STOP, _EARLY = 1.0, 2.0


def check_distributed(hp: HyperParameters, devices: Sequence[Any]) -> None:
    """Refuse, before any work, what a distributed run cannot do (one line a problem)."""
    problems = []
    if hp.kv_store not in DIST_KV_STORES:
        problems.append(
            Problem(
                "kv_store", f"launching workers needs dist_sync or dist_async, not {hp.kv_store}"
            )
        )
    if hp.freeze_backbone:
        problems.append(
            Problem(
                "freeze_backbone",
                "quick transfer (1) trains on one process, its features cached on this machine: "
                "set 0 to train across workers, or train without launching workers",
            )
        )
    if hp.kv_store == "dist_async":
        if hp.optimizer == "nag":
            problems.append(
                Problem("optimizer", "dist_async updates on the servers, which have no nag")
            )
        if hp.lr_steps:
            problems.append(
                Problem("lr_scheduler_step", "dist_async cannot follow a step schedule yet")
            )
        if len(devices) > 1:
            problems.append(Problem("kv_store", "dist_async trains on one device per worker"))
    if problems:
        raise HyperparameterError(problems)


class Cluster:
    """This worker's kvstore, place and the exchanges of one distributed run."""

    def __init__(self, kvstore: Any, place: WorkerPlace) -> None:
        self.kvstore = kvstore
        self.place = place
        self.kind = str(kvstore.type)
        self._updates: ServerUpdates | None = None
        self._summed: SummedGradients | None = None
        self._server_optimizer: dict[str, Any] = {}
        self._sums: GlobalSums | None = None
        self._decision: GlobalSums | None = None

    @classmethod
    def join(cls, hp: HyperParameters) -> Cluster | None:
        """Join the run's parameter server when launched as a worker; None otherwise."""
        if hp.kv_store not in DIST_KV_STORES or not is_distributed_worker():
            return None
        return cls(*open_kvstore(hp.kv_store))

    @property
    def writes(self) -> bool:
        """Whether this worker writes the run folder (rank 0)."""
        return self.place.writes

    @property
    def workers(self) -> int:
        return self.place.num_workers

    def shard(self) -> dict[str, int]:
        """The ``ImageRecordIter`` arguments reading this worker's part of the records."""
        return shard_arguments(self.place)

    def note(self, batch_size: int) -> str:
        """What the log says about the effective batch and this worker's place."""
        return (
            f"{effective_batch_message(batch_size, self.workers)}; {self.kind}, "
            f"validation on rank 0's full validation set"
        )

    def trainer(
        self, params: Any, hp: HyperParameters, optimizer_params: dict[str, Any], batch: int
    ) -> Any:
        """The run's ``Trainer``, without a kvstore: :meth:`begin` connects the parameters.

        ``dist_sync`` updates on each worker from the gradients summed over workers;
        ``dist_async`` updates on the servers (its settings are kept for :meth:`begin`)."""
        if self.kind == "dist_async":
            self._server_optimizer = {
                key: value
                for key, value in optimizer_params.items()
                if key not in ("lr_scheduler", "multi_precision")
            }
            self._server_optimizer.update(name=hp.optimizer, rescale_grad=1.0 / batch)
        optimizer = create_optimizer(hp.optimizer, optimizer_params)
        return mxnet().gluon.Trainer(params, optimizer, kvstore=None)

    def begin(self, trainer: Any) -> None:
        """Before the first batch (the weights loaded): connect the parameters to the servers,
        every worker starting from rank 0's weights. Every worker calls it."""
        params = list(trainer._params)
        if self.kind == "dist_sync":
            self._summed = SummedGradients(self.kvstore, params)
        else:
            self._updates = ServerUpdates(self.kvstore, self.place, params, self._server_optimizer)
        # After the servers' optimizer: a dist_async push before it aborts them.
        self._sums = GlobalSums(self.kvstore, 4, _TRAIN_SUMS)
        self._decision = GlobalSums(self.kvstore, 1, _DECISION)

    def step(self, trainer: Any, batch: int) -> None:
        """One update from this worker's gradients (summed over workers in ``dist_sync``)."""
        if self._updates is not None:
            self._updates.step()
            return
        assert self._summed is not None, "begin() first"
        self._summed.sum()
        trainer.step(batch * self.workers)

    def global_metrics(self, metrics: Metrics) -> dict[str, Any]:
        """The epoch's training metrics over every worker's shard."""
        values = metrics.read()
        assert self._sums is not None, "begin() first"
        count = metrics.count
        exact = values.get("exact_match", 0.0)
        total, loss, accuracy, exact = self._sums.add(
            [count, values["loss"] * count, values["accuracy"] * count, exact * count]
        )
        result = {"loss": loss / total, "accuracy": accuracy / total}
        if "exact_match" in values:
            result["exact_match"] = exact / total
        return result

    def decide(self, stop: bool, early: bool) -> tuple[bool, bool]:
        """Rank 0's ``(stop, early)`` on every worker; each calls it once per epoch."""
        assert self._decision is not None, "begin() first"
        said = (_EARLY if early else _STOP) if stop and self.writes else 0.0
        said = self._decision.add([said])[0]
        return said > 0, math.isclose(said, _EARLY)
