"""Classification metrics summed on the devices and read only when they are reported.

Every update is a few small NDArray operations queued on the batch's own device, so
training never waits for them; :meth:`Metrics.read` copies the sums to the host (the one
synchronisation) and turns them into plain floats.

Single-label: loss, accuracy, top-k accuracy (``top_k``), per-class precision and recall
(from a confusion matrix). Multi-label, a class predicted when its probability is above
0.5 (logit above 0): accuracy as SageMaker reports it, the mean over classes of each
class's accuracy; exact match (every class right); per-class precision and recall. A class
never predicted has precision 0, a class never present recall 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from imgcls_desktop.core.runtime import mxnet


class Metrics:
    """Sums over the images of one pass (an epoch, or a validation run)."""

    def __init__(
        self,
        num_classes: int,
        *,
        multi_label: bool,
        top_k: int | None = None,
        per_class: bool = False,
    ) -> None:
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.top_k = top_k
        self.per_class = per_class
        self.count = 0
        self._sums: dict[tuple[str, Any], Any] = {}

    def reset(self) -> None:
        """Forget everything summed so far."""
        self.count = 0
        self._sums.clear()

    def update(self, logits: Any, labels: Any, losses: Any, count: int | None = None) -> None:
        """Add a batch: logits (N, classes), labels (N,) or (N, classes), losses (N,).

        Only the first ``count`` rows are real images (the rest is padding); None: all.
        A ``count`` above the rows means all; at or below 0, none.
        """
        rows = logits.shape[0] if count is None else min(count, logits.shape[0])
        if rows <= 0:
            return
        if rows < logits.shape[0]:
            logits, labels, losses = logits[:rows], labels[:rows], losses[:rows]
        logits = logits.astype("float32", copy=False)
        self.count += rows
        self._add("loss", losses.sum())
        if self.multi_label:
            self._update_multi_label(logits, labels)
        else:
            self._update_single_label(logits, labels)

    def _update_single_label(self, logits: Any, labels: Any) -> None:
        nd = mxnet().nd
        predicted = nd.argmax(logits, axis=1)
        self._add("correct", (predicted == labels).sum())
        if self.top_k:
            top = nd.topk(logits, axis=1, k=self.top_k)
            self._add("top_k", nd.broadcast_equal(top, labels.reshape((-1, 1))).sum())
        if self.per_class:
            truth = nd.one_hot(labels, self.num_classes)
            guess = nd.one_hot(predicted, self.num_classes)
            self._add("confusion", nd.dot(truth, guess, transpose_a=True))

    def _update_multi_label(self, logits: Any, labels: Any) -> None:
        predicted = logits > 0
        right = predicted == labels
        self._add("correct_per_class", right.sum(axis=0))
        self._add("exact", right.min(axis=1).sum())
        if self.per_class:
            self._add("true_positive", (predicted * labels).sum(axis=0))
            self._add("predicted", predicted.sum(axis=0))
            self._add("present", labels.sum(axis=0))

    def _add(self, name: str, value: Any) -> None:
        key = (name, value.context)
        if key in self._sums:
            self._sums[key] += value
        else:
            self._sums[key] = value.copy()

    def read(self) -> dict[str, Any]:
        """The metrics so far (NaN before any image): ``loss``, ``accuracy``, and
        ``top_k_accuracy``, ``exact_match``, ``precision_per_class``, ``recall_per_class``
        where they apply. Synchronises with the devices."""
        sums: dict[str, np.ndarray] = {}
        for (name, _context), value in self._sums.items():
            host = value.asnumpy().astype(np.float64)
            sums[name] = sums[name] + host if name in sums else host
        if not self.count:
            return {"loss": math.nan, "accuracy": math.nan}
        n = self.count
        result: dict[str, Any] = {"loss": float(sums["loss"].sum()) / n}
        if self.multi_label:
            result["accuracy"] = float(sums["correct_per_class"].mean()) / n
            result["exact_match"] = float(sums["exact"].sum()) / n
            if self.per_class:
                true_positive = sums["true_positive"]
                result["precision_per_class"] = _ratios(true_positive, sums["predicted"])
                result["recall_per_class"] = _ratios(true_positive, sums["present"])
            return result
        result["accuracy"] = float(sums["correct"].sum()) / n
        if self.top_k:
            result["top_k_accuracy"] = float(sums["top_k"].sum()) / n
        if self.per_class:
            confusion = sums["confusion"]
            diagonal = np.diag(confusion)
            result["precision_per_class"] = _ratios(diagonal, confusion.sum(axis=0))
            result["recall_per_class"] = _ratios(diagonal, confusion.sum(axis=1))
        return result


def _ratios(numerators: np.ndarray, denominators: np.ndarray) -> list[float]:
    """Element-wise ratios as floats; 0 where the denominator is 0."""
    return [float(a / b) if b else 0.0 for a, b in zip(numerators, denominators)]
