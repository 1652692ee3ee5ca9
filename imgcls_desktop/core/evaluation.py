"""Evaluating a model on labelled images: accuracy, per-class metrics, confusion matrix.

:func:`evaluate_predictions` turns true labels and the model's probabilities into an
:class:`EvaluationReport` (pure numpy). Single-label: accuracy, top-k accuracy, per-class
precision/recall/F1/support and the confusion matrix (rows = true class, columns =
predicted class). Multi-label (a class is predicted when its probability reaches the
threshold): accuracy as SageMaker reports it (the mean over classes of each class's
accuracy), exact match (every class right), per-class metrics, and one 2 x 2 matrix per
class (``[[true negatives, false positives], [false negatives, true positives]]``). A class
never predicted has precision 0, a class never present recall 0, as in training.

Class ids must be the model's: :func:`align_classes` maps a data set's ids to the model's by
class name. :func:`evaluate_dataset` runs a Predictor over a labelled data set (folder per
class, ``.lst``, manifest or ``.rec``) with the model's own preprocessing and evaluates it;
the report keeps the data set and each image's record key, so an image inside a ``.rec`` can
be read again.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from imgcls_desktop.core.dataset.images import IMAGE_ERRORS, image_error_reason
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.samples import Dataset, Sample
from imgcls_desktop.core.inference import DEFAULT_THRESHOLD
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress

if TYPE_CHECKING:
    from imgcls_desktop.core.inference import Predictor


#: A class the model finds less often than this (recall) is failing.
FAILING_RECALL = 0.5


class EvaluationError(ValueError):
    """Labels and predictions cannot be compared; the message says why."""


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class, and how many images truly have it."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, Any]:
        """``{"class", "precision", "recall", "f1", "support"}``."""
        return {
            "class": self.name,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }


@dataclass(frozen=True)
class ImageOutcome:
    """The model's answer for one evaluated image, beside the truth.

    Single-label: one true and one predicted name, ``confidence`` the probability of the
    predicted class. Multi-label: the true and predicted label sets, ``confidence`` the
    probability behind the surest wrong decision (p for a wrong yes, 1 - p for a wrong no),
    or behind the least sure decision when every decision is right. An image stored in a
    ``.rec`` has its record's name as ``path`` and its key as ``record``.
    """

    index: int
    path: str | None
    true_labels: tuple[str, ...]
    predicted_labels: tuple[str, ...]
    confidence: float
    record: int | None = None

    def to_dict(self, *, multi_label: bool) -> dict[str, Any]:
        """Names as texts (single-label) or lists of texts (multi-label)."""
        if multi_label:
            true: Any = list(self.true_labels)
            predicted: Any = list(self.predicted_labels)
            keys = ("true_labels", "predicted_labels")
        else:
            true, predicted = self.true_labels[0], self.predicted_labels[0]
            keys = ("true_label", "predicted_label")
        return {
            "index": self.index,
            "path": self.path,
            keys[0]: true,
            keys[1]: predicted,
            "confidence": self.confidence,
            "record": self.record,
        }


@dataclass(frozen=True)
class EvaluationReport:
    """The metrics of one evaluation, in the model's class order."""

    class_names: list[str]
    count: int
    accuracy: float
    per_class: list[ClassMetrics]
    #: Single-label: K x K counts (rows = true, columns = predicted). Multi-label: K x 2 x 2.
    confusion_matrix: np.ndarray
    #: The images the model got wrong, surest first.
    misclassified: list[ImageOutcome]
    multi_label: bool = False
    top_k: int | None = None
    top_k_accuracy: float | None = None
    exact_match: float | None = None
    threshold: float | None = None
    #: Images left out because they could not be read: (path, reason).
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Every evaluated image, right or wrong, in the order evaluated.
    images: list[ImageOutcome] = field(default_factory=list)
    #: The network's arithmetic: ``fp32``, ``int8`` or ``bf16``.
    numeric_precision: str = "fp32"
    #: The data set evaluated (by :func:`evaluate_dataset`): its images can be read again.
    dataset: Dataset | None = field(default=None, compare=False, repr=False)

    @property
    def failing_classes(self) -> list[ClassMetrics]:
        """The classes present in the data whose images the model mostly gets wrong
        (recall below :data:`FAILING_RECALL`; recall 0: never right), worst first. A high
        accuracy can hide them when they are small."""
        failing = [m for m in self.per_class if m.support and m.recall < FAILING_RECALL]
        return sorted(failing, key=lambda m: (m.recall, m.name))

    def cell(self, true_index: int, predicted_index: int) -> list[ImageOutcome]:
        """The images of one confusion-matrix cell (single-label): of true class
        ``true_index`` and predicted as ``predicted_index``, surest first."""
        if self.multi_label:
            raise EvaluationError("a multi-label report has no class-by-class cells")
        true_name = self.class_names[true_index]
        predicted_name = self.class_names[predicted_index]
        return _surest_first(
            [
                image
                for image in self.images
                if image.true_labels == (true_name,) and image.predicted_labels == (predicted_name,)
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        result: dict[str, Any] = {
            "count": self.count,
            "multi_label": self.multi_label,
            "classes": list(self.class_names),
            "accuracy": self.accuracy,
            "top_k": self.top_k,
            "top_k_accuracy": self.top_k_accuracy,
            "confusion_matrix": self.confusion_matrix.tolist(),
            "per_class": [metrics.to_dict() for metrics in self.per_class],
            "misclassified": [
                item.to_dict(multi_label=self.multi_label) for item in self.misclassified
            ],
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "images": [item.to_dict(multi_label=self.multi_label) for item in self.images],
            "source": None if self.dataset is None else str(self.dataset.source),
            "numeric_precision": self.numeric_precision,
        }
        if self.multi_label:
            result["exact_match"] = self.exact_match
            result["threshold"] = self.threshold
        return result


def align_classes(data_class_names: Sequence[str], model_class_names: Sequence[str]) -> list[int]:
    """For each class id of the data set, the model's id of the class of the same name.

    The model may know classes the data set lacks; a data class the model does not know
    raises :class:`EvaluationError` naming the classes found on one side only.
    """
    model_ids = {name: index for index, name in enumerate(model_class_names)}
    missing = [name for name in data_class_names if name not in model_ids]
    if missing:
        unused = [name for name in model_class_names if name not in set(data_class_names)]
        extra = f"; the model's classes not in the data: {', '.join(unused)}" if unused else ""
        raise EvaluationError(
            f"the data's classes {', '.join(missing)} are not among the model's "
            f"({', '.join(model_class_names)}){extra}"
        )
    return [model_ids[name] for name in data_class_names]


def evaluate_predictions(
    true_labels: Sequence[int] | Sequence[Sequence[int]],
    probabilities: np.ndarray,
    class_names: Sequence[str],
    *,
    paths: Sequence[str] | None = None,
    records: Sequence[int | None] | None = None,
    top_k: int | None = None,
    multi_label: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
) -> EvaluationReport:
    """Compare true labels with probabilities (N x K, the model's class order).

    ``true_labels`` holds one class id per image, or with ``multi_label`` a sequence of class
    ids per image. ``paths`` (one per image) name the images in the report, ``records``
    (one per image) give the record keys of images stored in a ``.rec``. ``top_k``
    (single-label) also reports top-k accuracy; ``threshold`` (multi-label) is the
    probability from which a class counts as predicted.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    count = len(true_labels)
    num_classes = len(class_names)
    if probabilities.shape != (count, num_classes):
        raise EvaluationError(
            f"expected probabilities of shape ({count}, {num_classes}) for {count} images and "
            f"{num_classes} classes, got {probabilities.shape}"
        )
    if paths is not None and len(paths) != count:
        raise EvaluationError(f"{len(paths)} paths for {count} images")
    if records is not None and len(records) != count:
        raise EvaluationError(f"{len(records)} record keys for {count} images")
    if count == 0:
        raise EvaluationError("there are no images to evaluate")
    if multi_label:
        truth = _multi_hot(true_labels, num_classes)  # type: ignore[arg-type]
        return _evaluate_multi_label(
            truth, probabilities, list(class_names), paths, records, threshold
        )
    labels = np.asarray(true_labels, dtype=np.int64)
    if labels.ndim != 1 or labels.min() < 0 or labels.max() >= num_classes:
        raise EvaluationError(f"true labels must be class ids from 0 to {num_classes - 1}")
    if top_k is not None and top_k < 1:
        raise EvaluationError(f"top_k must be at least 1, not {top_k}")
    return _evaluate_single_label(labels, probabilities, list(class_names), paths, records, top_k)


def evaluate_dataset(
    predictor: Predictor,
    dataset: Dataset,
    *,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
    top_k: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> EvaluationReport:
    """Predict every image of a labelled data set and evaluate the predictions.

    Classes are matched by name; images that cannot be read, decoded or prepared are left
    out and listed in :attr:`EvaluationReport.skipped` with the reason.
    ``progress(done, total)`` counts images; a set ``cancel`` flag raises
    :class:`~imgcls_desktop.core.jobs.Cancelled` between batches. ``top_k`` is dropped
    when the model has ``top_k`` classes or fewer (its accuracy would be 100% by definition).
    """
    model = predictor.model
    if top_k is not None and top_k >= len(predictor.class_names):
        top_k = None
    if dataset.multi_label != model.multi_label:
        kinds = {True: "multi-label", False: "single-label"}
        raise EvaluationError(
            f"the model is {kinds[model.multi_label]} but the data set is "
            f"{kinds[dataset.multi_label]}"
        )
    to_model = align_classes(dataset.class_names, predictor.class_names)
    total = len(dataset.samples)
    labels: list[Any] = []
    paths: list[str] = []
    records: list[int | None] = []
    outputs: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    progress(0, total)
    with ImageReader(dataset) as reader, ThreadPoolExecutor() as pool:

        def prepare(sample: Sample) -> np.ndarray | str:
            try:
                return predictor.preprocess(reader.read(sample))
            except IMAGE_ERRORS as error:
                return image_error_reason(error)

        for start in range(0, total, predictor.batch_size):
            check_cancel(cancel)
            chunk = dataset.samples[start : start + predictor.batch_size]
            images = []
            for sample, prepared in zip(chunk, pool.map(prepare, chunk)):
                if isinstance(prepared, str):
                    skipped.append((sample.path, prepared))
                    continue
                images.append(prepared)
                paths.append(sample.path)
                records.append(sample.record)
                ids = [to_model[label] for label in sample.labels]
                labels.append(ids if dataset.multi_label else ids[0])
            if images:
                outputs.append(predictor.forward(np.stack(images)))
            progress(min(start + len(chunk), total), total)
    if not outputs:
        raise EvaluationError(f"no image of {dataset.source} could be read")
    report = evaluate_predictions(
        labels,
        np.concatenate(outputs),
        predictor.class_names,
        paths=paths,
        records=records,
        top_k=top_k,
        multi_label=dataset.multi_label,
        threshold=threshold,
    )
    return replace(report, skipped=skipped, dataset=dataset, numeric_precision=predictor.precision)


def format_table(report: EvaluationReport, *, max_misclassified: int = 20) -> str:
    """The report as readable text: summary, per-class table, confusion matrix, mistakes."""
    lines = [f"images: {report.count}", f"accuracy: {report.accuracy:.4f}"]
    if report.numeric_precision != "fp32":
        lines.append(f"network arithmetic: {report.numeric_precision}")
    if report.top_k_accuracy is not None:
        lines.append(f"top-{report.top_k} accuracy: {report.top_k_accuracy:.4f}")
    if report.exact_match is not None:
        lines.append(f"exact match: {report.exact_match:.4f} (threshold {report.threshold})")
    if report.failing_classes:
        lines.append(f"failing classes: {failing_summary(report)}")
    width = max(len("class"), *(len(name) for name in report.class_names))
    lines += ["", f"{'class':<{width}}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>7}"]
    for metrics in report.per_class:
        lines.append(
            f"{metrics.name:<{width}}  {metrics.precision:9.4f}  {metrics.recall:6.4f}  "
            f"{metrics.f1:6.4f}  {metrics.support:7d}"
        )
    if not report.multi_label:
        lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
        cell = max(5, *(len(name) for name in report.class_names))
        cell = max(cell, len(str(int(report.confusion_matrix.max()))))
        lines.append(" " * width + "  " + " ".join(f"{n:>{cell}}" for n in report.class_names))
        for name, row in zip(report.class_names, report.confusion_matrix):
            lines.append(f"{name:<{width}}  " + " ".join(f"{int(v):>{cell}d}" for v in row))
    if report.misclassified:
        shown = report.misclassified[:max_misclassified]
        lines += ["", f"misclassified: {len(report.misclassified)} (surest first)"]
        for item in shown:
            where = item.path if item.path is not None else f"#{item.index}"
            lines.append(
                f"{where}: {', '.join(item.true_labels) or '-'} -> "
                f"{', '.join(item.predicted_labels) or '-'} ({item.confidence:.3f})"
            )
        if len(report.misclassified) > len(shown):
            lines.append(f"... and {len(report.misclassified) - len(shown)} more")
    if report.skipped:
        lines += ["", f"left out (unreadable): {len(report.skipped)}"]
        lines += [f"{path}: {reason}" for path, reason in report.skipped]
    return "\n".join(lines)


def failing_summary(report: EvaluationReport) -> str:
    """The failing classes in one line: ``b (recall 0.000, 2 images), ...``."""
    return ", ".join(
        f"{m.name} (recall {m.recall:.3f}, {m.support} image{'' if m.support == 1 else 's'})"
        for m in report.failing_classes
    )


def _evaluate_single_label(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    paths: Sequence[str] | None,
    records: Sequence[int | None] | None,
    top_k: int | None,
) -> EvaluationReport:
    num_classes = len(class_names)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    per_class = _class_metrics(
        class_names, true_positive, confusion.sum(axis=0), confusion.sum(axis=1)
    )
    top_k_accuracy = None
    if top_k is not None:
        # Stable sort: of equal probabilities the lower class id ranks first, as argmax.
        ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        top_k_accuracy = float((ranked == labels[:, None]).any(axis=1).mean())
    confidence = probabilities[np.arange(len(labels)), predicted]
    images = [
        ImageOutcome(
            index=i,
            path=None if paths is None else str(paths[i]),
            record=None if records is None else records[i],
            true_labels=(class_names[labels[i]],),
            predicted_labels=(class_names[predicted[i]],),
            confidence=float(confidence[i]),
        )
        for i in range(len(labels))
    ]
    misclassified = [images[i] for i in np.flatnonzero(predicted != labels)]
    return EvaluationReport(
        class_names=class_names,
        count=len(labels),
        accuracy=float((predicted == labels).mean()),
        per_class=per_class,
        confusion_matrix=confusion,
        misclassified=_surest_first(misclassified),
        top_k=top_k,
        top_k_accuracy=top_k_accuracy,
        images=images,
    )


def _evaluate_multi_label(
    truth: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    paths: Sequence[str] | None,
    records: Sequence[int | None] | None,
    threshold: float,
) -> EvaluationReport:
    predicted = probabilities >= threshold
    present = truth.astype(bool)
    right = predicted == present
    true_positive = (predicted & present).sum(axis=0)
    false_positive = (predicted & ~present).sum(axis=0)
    false_negative = (~predicted & present).sum(axis=0)
    true_negative = (~predicted & ~present).sum(axis=0)
    confusion = np.stack(
        [
            np.stack([true_negative, false_positive], axis=1),
            np.stack([false_negative, true_positive], axis=1),
        ],
        axis=1,
    ).astype(np.int64)
    per_class = _class_metrics(
        class_names, true_positive.astype(np.float64), predicted.sum(axis=0), present.sum(axis=0)
    )
    # How sure the model was of each decision it made: p for a yes, 1 - p for a no.
    decision_confidence = np.where(predicted, probabilities, 1.0 - probabilities)
    images = [
        ImageOutcome(
            index=i,
            path=None if paths is None else str(paths[i]),
            record=None if records is None else records[i],
            true_labels=tuple(class_names[k] for k in np.flatnonzero(present[i])),
            predicted_labels=tuple(class_names[k] for k in np.flatnonzero(predicted[i])),
            confidence=float(
                decision_confidence[i][~right[i]].max()
                if not right[i].all()
                else decision_confidence[i].min()
            ),
        )
        for i in range(len(truth))
    ]
    misclassified = [images[i] for i in np.flatnonzero(~right.all(axis=1))]
    return EvaluationReport(
        class_names=class_names,
        count=len(truth),
        accuracy=float(right.mean(axis=0).mean()),
        per_class=per_class,
        confusion_matrix=confusion,
        misclassified=_surest_first(misclassified),
        multi_label=True,
        exact_match=float(right.all(axis=1).mean()),
        threshold=threshold,
        images=images,
    )


def _class_metrics(
    class_names: list[str],
    true_positive: np.ndarray,
    predicted: np.ndarray,
    present: np.ndarray,
) -> list[ClassMetrics]:
    precision = _ratios(true_positive, predicted)
    recall = _ratios(true_positive, present)
    result = []
    for k, name in enumerate(class_names):
        p, r = precision[k], recall[k]
        f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
        result.append(ClassMetrics(name, p, r, f1, int(present[k])))
    return result


def _ratios(numerator: np.ndarray, denominator: np.ndarray) -> list[float]:
    return [float(n / d) if d else 0.0 for n, d in zip(numerator, denominator)]


def _multi_hot(label_sets: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    truth = np.zeros((len(label_sets), num_classes), dtype=bool)
    for row, labels in enumerate(label_sets):
        for label in labels:
            if not 0 <= label < num_classes:
                raise EvaluationError(
                    f"true labels must be class ids from 0 to {num_classes - 1}, not {label}"
                )
            truth[row, label] = True
    return truth


def _surest_first(items: list[ImageOutcome]) -> list[ImageOutcome]:
    return sorted(items, key=lambda item: item.confidence, reverse=True)
