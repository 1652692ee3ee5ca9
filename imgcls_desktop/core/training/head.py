"""Quick transfer's training data flow: only the head (``net.output``) trains, on cached
features (:mod:`.feature_cache`).

The loop (:mod:`.loop`) trains as usual, with :func:`trained_parameters` in its trainer and
the batches of :class:`HeadInputs` fed to ``net.output`` instead of images to ``net``: the
same callbacks, logs, checkpoints and resume. Checkpoints hold the whole network (the frozen
backbone and the trained head), so every consumer of a model uses it as any other.

Training epoch ``e`` reads one version of each image (:attr:`CachedFeatures.copies` of them
take turns, epoch after epoch), shuffled; batches are full, the last one of a pass completed
from the next, as the image iterators do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, no_progress
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.feature_cache import CachedFeatures, cached_features

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock, ParameterDict

    from imgcls_desktop.core.hyperparams import HyperParameters
    from imgcls_desktop.core.training.data import TrainingData


def trained_parameters(net: HybridBlock, hp: HyperParameters) -> ParameterDict:
    """The parameters the trainer updates: the head's alone with ``freeze_backbone=1``."""
    return net.output.collect_params() if hp.freeze_backbone else net.collect_params()


@dataclass(frozen=True)
class HeadInputs:
    """The features the head trains and is validated on, and the model that reads them."""

    features: CachedFeatures
    model: HybridBlock

    def train_batches(self, batch_size: int, seed: int) -> Iterator[Any]:
        """Endless full batches of training features, one version of each image a pass."""
        mx = mxnet()
        rng = np.random.RandomState(seed)
        train, labels = self.features.train, self.features.train_labels
        version, order = seed - 1, np.empty(0, dtype=np.int64)
        while True:
            rows, row_labels, needed = [], [], batch_size
            while needed:
                if order.size == 0:  # a new pass: the next version, a new order
                    version, order = (
                        (version + 1) % self.features.copies,
                        rng.permutation(train.shape[1]),
                    )
                taken, order = order[:needed], order[needed:]
                rows.append(train[version, taken])
                row_labels.append(labels[version, taken])
                needed -= len(taken)
            yield mx.io.DataBatch(
                data=[mx.nd.array(np.concatenate(rows))],
                label=[mx.nd.array(np.concatenate(row_labels))],
            )

    def val_batches(self, batch_size: int) -> _ValidationBatches:
        """The validation features in order, pass after pass (``reset()`` between them)."""
        return _ValidationBatches(self.features, batch_size)

    def note(self) -> str:
        """What quick transfer did before training, for the log."""
        return self.features.describe()


class _ValidationBatches:
    """Validation features in batches (the last one short), like the validation iterator."""

    def __init__(self, features: CachedFeatures, batch_size: int) -> None:
        self._features, self._batch_size = features, batch_size

    def reset(self) -> None:
        """Nothing to rewind: every pass starts at the first image."""

    def __iter__(self) -> Iterator[Any]:
        mx = mxnet()
        val, labels = self._features.val, self._features.val_labels
        for start in range(0, len(val), self._batch_size):
            end = start + self._batch_size
            yield mx.io.DataBatch(
                data=[mx.nd.array(val[start:end])], label=[mx.nd.array(labels[start:end])]
            )


def head_inputs(
    net: HybridBlock,
    data: TrainingData,
    hp: HyperParameters,
    *,
    context: Any = None,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> HeadInputs:
    """The cached features of ``data`` through ``net``'s backbone, computed if needed
    (:func:`~.feature_cache.cached_features`), and ``net.output`` to train on them."""
    features = cached_features(net, data, hp, context=context, progress=progress, cancel=cancel)
    return HeadInputs(features, net.output)
