"""Evaluation metrics on small cases whose numbers were worked out by hand, and on data sets
run through a Predictor of a tiny trained model."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from inference_fixtures import shared_run

from imgcls_desktop.core.corrections import ImageRef
from imgcls_desktop.core.dataset.lst import format_lst_line
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.recordio_export import ExportOptions, export_recordio
from imgcls_desktop.core.dataset.samples import Dataset, Sample
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.dataset.split import SplitAssignment
from imgcls_desktop.core.evaluation import (
    EvaluationError,
    align_classes,
    evaluate_dataset,
    evaluate_predictions,
    format_table,
)
from imgcls_desktop.core.inference import Predictor
from imgcls_desktop.core.jobs import Cancelled
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.training.run import read_run

CLASSES = ["ant", "bee", "cow"]
# Six images, two per class. Image 1 (an ant) is taken for a bee with 0.6, image 3 (a bee)
# for a cow with 0.5; the four others are right.
TRUE = [0, 0, 1, 1, 2, 2]
PROBABILITIES = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.6, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.3, 0.5],
        [0.1, 0.1, 0.8],
        [0.2, 0.1, 0.7],
    ]
)
PATHS = [f"img{i}.jpg" for i in range(6)]


def test_single_label_numbers_checked_by_hand() -> None:
    report = evaluate_predictions(TRUE, PROBABILITIES, CLASSES, paths=PATHS, top_k=2)

    assert report.count == 6
    assert report.accuracy == pytest.approx(4 / 6)
    # Both mistakes have the true class second: top-2 gets every image.
    assert report.top_k_accuracy == pytest.approx(1.0)
    assert report.confusion_matrix.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    by_class = {m.name: m for m in report.per_class}
    # ant: predicted once (right), present twice. bee: predicted twice, one right.
    # cow: predicted three times, two right, present twice.
    assert (by_class["ant"].precision, by_class["ant"].recall) == (1.0, 0.5)
    assert by_class["ant"].f1 == pytest.approx(2 / 3)
    assert (by_class["bee"].precision, by_class["bee"].recall, by_class["bee"].f1) == (
        0.5,
        0.5,
        0.5,
    )
    assert by_class["cow"].precision == pytest.approx(2 / 3)
    assert by_class["cow"].recall == 1.0
    assert by_class["cow"].f1 == pytest.approx(0.8)
    assert [m.support for m in report.per_class] == [2, 2, 2]
    assert [(m.path, m.true_labels, m.predicted_labels) for m in report.misclassified] == [
        ("img1.jpg", ("ant",), ("bee",)),
        ("img3.jpg", ("bee",), ("cow",)),
    ]
    assert [m.confidence for m in report.misclassified] == [0.6, 0.5]


def test_a_class_the_model_never_gets_right_is_named_failing() -> None:
    # Both cows taken for bees: 4 of 6 right, but the cow class is never found.
    probabilities = PROBABILITIES.copy()
    probabilities[4:] = [[0.1, 0.8, 0.1], [0.2, 0.7, 0.1]]
    probabilities[1], probabilities[3] = [0.7, 0.2, 0.1], [0.2, 0.5, 0.3]
    report = evaluate_predictions(TRUE, probabilities, CLASSES, paths=PATHS)
    assert report.accuracy == pytest.approx(4 / 6)
    assert [m.name for m in report.failing_classes] == ["cow"]
    assert "failing classes: cow (recall 0.000, 2 images)" in format_table(report)
    assert evaluate_predictions(TRUE, PROBABILITIES, CLASSES).failing_classes == []


def test_top_1_is_accuracy_and_top_k_above_the_class_count_is_everything() -> None:
    assert evaluate_predictions(TRUE, PROBABILITIES, CLASSES, top_k=1).top_k_accuracy == (
        pytest.approx(4 / 6)
    )
    assert evaluate_predictions(TRUE, PROBABILITIES, CLASSES, top_k=5).top_k_accuracy == 1.0
    assert evaluate_predictions(TRUE, PROBABILITIES, CLASSES).top_k_accuracy is None


def test_top_k_counts_only_the_k_most_probable() -> None:
    probabilities = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.6, 0.3, 0.1]])
    report = evaluate_predictions([2, 0, 1], probabilities, CLASSES, top_k=2)
    # Image 0: cow is third; image 1: ant is third; image 2: bee is second.
    assert report.accuracy == 0.0
    assert report.top_k_accuracy == pytest.approx(1 / 3)


def test_json_report_has_the_documented_keys() -> None:
    report = evaluate_predictions(TRUE, PROBABILITIES, CLASSES, paths=PATHS, top_k=2)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["accuracy"] == pytest.approx(4 / 6)
    assert data["top_k_accuracy"] == 1.0
    assert data["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert data["per_class"][0] == {
        "class": "ant",
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert data["misclassified"][0] == {
        "index": 1,
        "path": "img1.jpg",
        "true_label": "ant",
        "predicted_label": "bee",
        "confidence": 0.6,
        "record": None,
    }
    assert data["source"] is None  # predictions only: no data set behind them


def test_every_image_is_reported_and_a_cell_lists_its_images_surest_first() -> None:
    report = evaluate_predictions(TRUE, PROBABILITIES, CLASSES, paths=PATHS)

    assert [(m.index, m.path) for m in report.images] == list(enumerate(PATHS))
    assert [m.confidence for m in report.images] == [0.7, 0.6, 0.8, 0.5, 0.8, 0.7]
    assert [(m.path, m.confidence) for m in report.cell(2, 2)] == [
        ("img4.jpg", 0.8),
        ("img5.jpg", 0.7),
    ]
    assert [m.path for m in report.cell(0, 1)] == ["img1.jpg"]
    assert report.cell(1, 0) == []
    sizes = [[len(report.cell(i, j)) for j in range(3)] for i in range(3)]
    assert sizes == report.confusion_matrix.tolist()
    data = json.loads(json.dumps(report.to_dict()))
    assert len(data["images"]) == 6
    assert data["images"][1] == data["misclassified"][0]


def test_readable_table() -> None:
    text = format_table(evaluate_predictions(TRUE, PROBABILITIES, CLASSES, paths=PATHS, top_k=2))
    assert "accuracy: 0.6667" in text
    assert "top-2 accuracy: 1.0000" in text
    table = text.split("confusion matrix")[0].splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in table if line}
    assert rows["class"] == ["precision", "recall", "f1", "support"]
    assert rows["cow"][:4] == ["0.6667", "1.0000", "0.8000", "2"]
    assert "img1.jpg: ant -> bee (0.600)" in text
    matrix = text.split("confusion matrix")[1].splitlines()
    assert matrix[2].split() == ["ant", "1", "1", "0"]


def test_class_order_mismatch_is_aligned_by_name() -> None:
    data_classes = ["cow", "ant", "bee"]  # the data set's own ids
    data_labels = [1, 1, 2, 2, 0, 0]  # the same images as TRUE, in the data's ids
    mapping = align_classes(data_classes, CLASSES)
    assert mapping == [2, 0, 1]
    report = evaluate_predictions([mapping[y] for y in data_labels], PROBABILITIES, CLASSES)
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.confusion_matrix.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]


def test_model_may_know_more_classes_than_the_data() -> None:
    assert align_classes(["cow", "ant"], CLASSES) == [2, 0]


def test_unknown_data_classes_are_named() -> None:
    with pytest.raises(EvaluationError) as error:
        align_classes(["ant", "bee", "dog"], CLASSES)
    message = str(error.value)
    assert "dog" in message and "cow" in message and "\n" not in message


def test_multi_label_numbers_checked_by_hand() -> None:
    true = [[0, 1], [2], [], [0]]
    probabilities = np.array([[0.9, 0.6, 0.1], [0.2, 0.4, 0.7], [0.6, 0.1, 0.2], [0.3, 0.2, 0.1]])
    report = evaluate_predictions(true, probabilities, CLASSES, multi_label=True, paths=PATHS[:4])
    # Per-class accuracy: ant 2/4 (wrong on images 2 and 3), bee 4/4, cow 4/4.
    assert report.accuracy == pytest.approx((0.5 + 1 + 1) / 3)
    assert report.exact_match == 0.5
    ant = report.per_class[0]
    assert (ant.precision, ant.recall, ant.support) == (0.5, 0.5, 2)
    assert report.confusion_matrix.tolist() == [
        [[1, 1], [1, 1]],
        [[3, 0], [0, 1]],
        [[3, 0], [0, 1]],
    ]
    # Image 3 misses ant with 1 - 0.3; image 2 says ant with 0.6.
    assert [(m.index, m.confidence) for m in report.misclassified] == [(3, 0.7), (2, 0.6)]
    assert report.misclassified[0].true_labels == ("ant",)
    assert report.misclassified[0].predicted_labels == ()
    data = report.to_dict()
    assert data["misclassified"][1]["predicted_labels"] == ["ant"]
    assert data["exact_match"] == 0.5
    assert "exact match: 0.5000" in format_table(report)
    # Every image is reported; a right one with its least sure decision (bee, 0.6).
    assert [(m.index, m.confidence) for m in report.images][:2] == [(0, 0.6), (1, 0.6)]
    assert len(data["images"]) == 4
    with pytest.raises(EvaluationError, match="multi-label"):
        report.cell(0, 0)


@pytest.mark.parametrize(
    ("labels", "probabilities", "reason"),
    [
        ([0, 1], np.zeros((3, 3)), "shape"),
        ([0, 3], np.zeros((2, 3)), "class ids"),
        ([], np.zeros((0, 3)), "no images"),
    ],
)
def test_bad_inputs_are_refused(labels: list[int], probabilities: np.ndarray, reason: str) -> None:
    with pytest.raises(EvaluationError, match=reason):
        evaluate_predictions(labels, probabilities, CLASSES)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    run_dir, _result = shared_run(tmp_path_factory)
    return Predictor(open_model(run_dir), device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def folder_set(predictor: Predictor) -> Dataset:
    """The sample images (3 classes) the shared run was trained on, as a folder per class."""
    return load_dataset(Path(read_run(predictor.model.path).train))


def test_dataset_evaluation_equals_evaluating_the_predictions(
    predictor: Predictor, folder_set: Dataset
) -> None:
    reported: list[tuple[int, int]] = []
    report = evaluate_dataset(
        predictor, folder_set, top_k=2, progress=lambda done, total: reported.append((done, total))
    )

    paths = [sample.path for sample in folder_set.samples]
    expected = evaluate_predictions(
        [sample.label for sample in folder_set.samples],
        predictor.predict(paths),
        predictor.class_names,
        paths=paths,
        top_k=2,
    )
    total = len(paths)
    assert report.count == total and sum(m.support for m in report.per_class) == total
    assert report.to_dict() == {
        **expected.to_dict(),
        "skipped": [],
        "source": str(folder_set.source),
    }
    assert report.dataset is folder_set
    assert reported == [(0, total), *((min(n, total), total) for n in range(16, total + 16, 16))]


def test_dataset_classes_in_another_order_are_matched_by_name(
    predictor: Predictor, folder_set: Dataset
) -> None:
    names = folder_set.class_names[::-1]
    reordered = dataclasses.replace(
        folder_set,
        class_names=names,
        samples=[
            dataclasses.replace(s, labels=(names.index(folder_set.class_names[s.label]),))
            for s in folder_set.samples
        ],
    )
    expected = evaluate_dataset(predictor, folder_set)
    report = evaluate_dataset(predictor, reordered)
    assert report.class_names == predictor.class_names
    assert report.confusion_matrix.tolist() == expected.confusion_matrix.tolist()


def test_a_record_file_evaluates_like_its_images(
    predictor: Predictor, folder_set: Dataset, tmp_path: Path
) -> None:
    everything = tuple(range(len(folder_set.samples)))
    export_recordio(
        folder_set,
        tmp_path,
        assignment=SplitAssignment(everything, (), (), 0.0, 0.0, 0),
        options=ExportOptions(pass_through=True, workers=2),
    )
    records = load_dataset(tmp_path / "dataset-train.rec")
    report = evaluate_dataset(predictor, records)
    expected = evaluate_dataset(predictor, folder_set)
    assert report.count == len(folder_set.samples)
    assert report.confusion_matrix.tolist() == expected.confusion_matrix.tolist()

    # Each image can be read again: its record key and the data set are in the report.
    assert report.dataset is records
    assert report.to_dict()["source"] == str(tmp_path / "dataset-train.rec")
    by_name = {folder_set.relative_path(sample): sample.path for sample in folder_set.samples}
    with ImageReader(records) as reader:
        for outcome in report.images:
            assert outcome.record is not None
            image = ImageRef(outcome.path, outcome.record, report.dataset)
            assert reader.read(image.sample()) == Path(by_name[outcome.path]).read_bytes()


def test_a_lst_gives_outcomes_with_paths_that_open(
    predictor: Predictor, folder_set: Dataset, tmp_path: Path
) -> None:
    lst = tmp_path / "lists" / "set.lst"
    lst.parent.mkdir()
    (lst.parent / "labels.txt").write_text("\n".join(folder_set.class_names), encoding="utf-8")
    lst.write_text(
        "".join(
            format_lst_line(i, [s.label], folder_set.relative_path(s))
            for i, s in enumerate(folder_set.samples)
        ),
        encoding="utf-8",
    )
    dataset = load_dataset(lst, root=folder_set.root)

    report = evaluate_dataset(predictor, dataset)

    assert report.count == len(folder_set.samples)
    assert {outcome.path for outcome in report.images} == {s.path for s in folder_set.samples}
    assert all(outcome.record is None for outcome in report.images)


def test_unreadable_images_are_left_out_and_listed(
    predictor: Predictor, folder_set: Dataset, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    samples = [
        *folder_set.samples[:5],
        Sample(str(broken), (0,)),
        Sample(str(tmp_path / "gone.jpg"), (1,)),
    ]
    report = evaluate_dataset(predictor, dataclasses.replace(folder_set, samples=samples))
    assert report.count == 5
    assert [path for path, _reason in report.skipped] == [str(broken), str(tmp_path / "gone.jpg")]
    assert all(reason for _path, reason in report.skipped)
    assert "left out (unreadable): 2" in format_table(report)


def test_dataset_evaluation_can_be_cancelled(predictor: Predictor, folder_set: Dataset) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        evaluate_dataset(predictor, folder_set, cancel=cancel)


def test_a_multi_label_data_set_does_not_fit_a_single_label_model(
    predictor: Predictor, folder_set: Dataset
) -> None:
    with pytest.raises(EvaluationError, match="single-label but the data set is multi-label"):
        evaluate_dataset(predictor, dataclasses.replace(folder_set, multi_label=True))
