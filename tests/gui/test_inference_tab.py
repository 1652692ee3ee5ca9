"""The Inference tab, driven as a user would (offscreen) with a real trained model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.evaluation import EvaluationReport
from imgcls_desktop.core.labelling import write_jsonl
from imgcls_desktop.core.training.run import read_run
from imgcls_desktop.gui.inference_tab import IMAGE_SIDE, InferenceTab
from imgcls_desktop.gui.inference_widgets import TOP_K_COLOUR
from imgcls_desktop.gui.main_window import MainWindow
from imgcls_desktop.gui.review import ROW_THUMBNAIL_SIZE, PredictionTable, ReviewTable
from imgcls_desktop.gui.workers import JobHandle, JobRunner
from tests.conftest import CLASS_COLOURS, write_image
from tests.core.inference_fixtures import shared_run

JOB_TIMEOUT_MS = 120_000
DECORATION = Qt.ItemDataRole.DecorationRole


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_run(tmp_path_factory)[0]


@pytest.fixture
def tab(qtbot: QtBot) -> InferenceTab:
    jobs = JobRunner()
    inference_tab = InferenceTab(jobs)
    qtbot.addWidget(inference_tab)
    yield inference_tab
    jobs.shutdown()
    inference_tab.shutdown()


@pytest.fixture
def opened(qtbot: QtBot, tab: InferenceTab, run_dir: Path) -> InferenceTab:
    _wait(qtbot, tab.set_model_path(str(run_dir)))
    assert tab.predictor is not None
    return tab


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Six coloured images in two sub-folders, and one broken file."""
    folder = tmp_path / "unlabelled"
    for i, colour in enumerate(CLASS_COLOURS.values()):
        write_image(folder / f"a_{i}.jpg", colour, seed=i)
        write_image(folder / "more" / f"b_{i}.png", colour, seed=10 + i)
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def _wait(qtbot: QtBot, job: JobHandle | None) -> None:
    assert job is not None
    qtbot.waitSignal(job.done, timeout=JOB_TIMEOUT_MS).wait()


def _dialog(tab: InferenceTab, name: str) -> QMessageBox:
    dialog = tab.findChild(QMessageBox, name)
    assert dialog is not None and dialog.isVisible(), f"no {name} shown"
    return dialog


def _fullest_cell(report: EvaluationReport) -> tuple[int, int]:
    """(true, predicted) index of the confusion-matrix cell with the most images."""
    cells = [(i, j) for i in range(3) for j in range(3)]
    return max(cells, key=lambda cell: report.confusion_matrix[cell])


def _label(qtbot: QtBot, tab: InferenceTab, folder: Path) -> None:
    tab.folder_path.setText(str(folder))
    _wait(qtbot, tab.label())


def test_opening_a_run_shows_its_summary(opened: InferenceTab) -> None:
    summary = opened.model_summary.text()
    assert "training run" in summary
    assert "3 classes" in summary
    assert "3 x 32 x 32" in summary
    assert opened.label_button.isEnabled() and opened.evaluate_button.isEnabled()
    assert not opened.csv_button.isEnabled()


def test_a_bad_model_path_shows_the_reason(qtbot: QtBot, tab: InferenceTab, tmp_path: Path) -> None:
    tab.model_path.setText(str(tmp_path / "no-such-model"))
    _wait(qtbot, tab.open())
    dialog = _dialog(tab, "errorDialog")
    assert "no-such-model" in dialog.text()
    assert "Traceback" not in dialog.text()
    assert tab.predictor is None
    assert not tab.label_button.isEnabled()


def test_labelling_a_folder_fills_the_table_and_exports(
    qtbot: QtBot, opened: InferenceTab, images: Path, tmp_path: Path
) -> None:
    _label(qtbot, opened, images)
    table = opened.predictions.table
    assert table.rowCount() == 6
    files = [table.item(row, PredictionTable.FILE).text() for row in range(6)]
    assert files == [f"a_{i}.jpg" for i in range(3)] + [
        str(Path("more", f"b_{i}.png")) for i in range(3)
    ]
    assert opened.unreadable.rowCount() == 1 and not opened.unreadable.isHidden()
    assert opened.unreadable.item(0, 0).text() == "broken.jpg"
    assert opened.unreadable.item(0, 1).text()
    class_names = opened.predictor.class_names
    assert [opened.label_filter.itemText(i) for i in range(1, 4)] == class_names

    label = opened.predictions.visible_rows()[0][1]
    opened.label_filter.setCurrentIndex(opened.label_filter.findData(label))
    shown = opened.predictions.visible_rows()
    assert shown and {row[1] for row in shown} == {label}
    opened.label_filter.setCurrentIndex(0)
    lowest = min(row[2] for row in opened.predictions.visible_rows())
    opened.min_confidence.setValue(lowest * 100 + 1)
    assert len(opened.predictions.visible_rows()) < 6
    opened.min_confidence.setValue(0)
    assert len(opened.predictions.visible_rows()) == 6

    table.cellDoubleClicked.emit(
        3, PredictionTable.LABEL
    )  # more/b_0.png: shown on the One Image page
    assert opened.pages.currentIndex() == 1
    assert opened.image_path.text() == str(images / "more" / "b_0.png")
    qtbot.waitUntil(lambda: opened.answer is not None, timeout=JOB_TIMEOUT_MS)

    csv_path = tmp_path / "labels.csv"
    assert opened.save_labels(csv_path)
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("path,label,confidence")
    assert len(lines) == 7
    jsonl_path = tmp_path / "labels.jsonl"
    assert opened.save_labels(jsonl_path, write_jsonl)
    records = [json.loads(line) for line in jsonl_path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 6 and all(len(r["prediction"]) == 3 for r in records)


def test_sorting_into_folders_asks_then_copies_and_sums_up(
    qtbot: QtBot, opened: InferenceTab, images: Path, tmp_path: Path
) -> None:
    _label(qtbot, opened, images)
    out_dir = tmp_path / "sorted"
    opened.sort_threshold.setValue(0)
    box = opened.confirm_sort(str(out_dir))
    assert box is _dialog(opened, "confirmSortDialog")
    assert f"Copy 6 images into one folder per label in {out_dir}" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(
        lambda: opened.findChild(QMessageBox, "infoDialog") is not None, timeout=JOB_TIMEOUT_MS
    )
    assert "Copied 6 images" in _dialog(opened, "infoDialog").text()
    copied = [p for p in out_dir.rglob("*") if p.suffix in (".jpg", ".png")]
    assert len(copied) == 6
    assert {p.parent.name for p in copied} <= set(opened.predictor.class_names)
    assert (out_dir / "sorted.csv").is_file()
    assert len(list(images.rglob("*.??g"))) == 7  # the originals stay


def test_one_dropped_image_shows_its_probabilities(
    qtbot: QtBot, opened: InferenceTab, images: Path
) -> None:
    mime = QMimeData()  # kept alive while the event is used: the event does not own it
    mime.setUrls([QUrl.fromLocalFile(str(images / "a_0.jpg"))])
    event = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    opened.image_view.dropEvent(event)
    assert opened.image_path.text() == str(images / "a_0.jpg")
    qtbot.waitUntil(lambda: len(opened.chart.bars.opts["height"]) == 3, timeout=JOB_TIMEOUT_MS)
    heights = opened.chart.bars.opts["height"]
    assert sum(heights) == pytest.approx(1.0, abs=1e-4)
    dark = [
        i
        for i, b in enumerate(opened.chart.bars.opts["brushes"])
        if b.color().name() == TOP_K_COLOUR
    ]
    assert dark == [max(range(3), key=heights.__getitem__)]  # 3 classes: the top one
    assert not opened.image_view.pixmap().isNull()
    assert "a_0.jpg" in opened.image_answer.text()
    assert opened.image_view.pixmap().width() == 32  # the image itself, not enlarged

    opened.grad_cam.setChecked(True)  # computed on demand for the image shown
    qtbot.waitUntil(
        lambda: opened.answer.overlay is not None or bool(opened.answer.overlay_error),
        timeout=JOB_TIMEOUT_MS,
    )
    assert not opened.answer.overlay_error
    assert opened.image_view.pixmap().width() == IMAGE_SIDE
    opened.grad_cam.setChecked(False)
    assert opened.image_view.pixmap().width() == 32


def test_evaluating_shows_the_confusion_matrix_and_class_metrics(
    qtbot: QtBot, opened: InferenceTab, tmp_path: Path
) -> None:
    labelled = generate_sample_dataset(tmp_path / "labelled", classes=3, per_class=4, size=32)
    _wait(qtbot, opened.evaluate(str(labelled)))
    report = opened.report
    assert report is not None and report.count == 12
    assert opened.confusion.matrix.shape == (3, 3)
    assert opened.confusion.matrix.sum() == 12
    assert opened.class_metrics.table.rowCount() == 3
    assert f"Accuracy {report.accuracy:.1%}" in opened.eval_summary.text()
    assert "top-" not in opened.eval_summary.text()  # 3 classes: top-5 says nothing


def test_a_finished_training_run_is_opened_in_the_inference_tab(
    qtbot: QtBot, run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.tabs.tabText(2) == "Inference"
    tab = window.inference_tab
    window.training_tab.run_finished.emit(shared_run(tmp_path_factory)[1])
    assert tab.model_path.text() == str(run_dir)
    qtbot.waitUntil(lambda: tab.predictor is not None, timeout=JOB_TIMEOUT_MS)
    window.close()


def test_labelled_rows_show_thumbnails_and_corrections_go_into_a_data_set(
    qtbot: QtBot, opened: InferenceTab, images: Path, tmp_path: Path
) -> None:
    opened.show()
    qtbot.waitExposed(opened)
    _label(qtbot, opened, images)
    table = opened.predictions
    placeholder = table.thumbnails.placeholder.cacheKey()
    thumbnails = [table.table.item(row, ReviewTable.THUMBNAIL) for row in range(6)]
    qtbot.waitUntil(
        lambda: all(item.data(DECORATION).cacheKey() != placeholder for item in thumbnails),
        timeout=JOB_TIMEOUT_MS,
    )
    assert all(item.data(DECORATION).width() == ROW_THUMBNAIL_SIZE for item in thumbnails)

    row = 3  # more/b_0.png
    wrong = table.original_label(row)
    right = next(name for name in opened.predictor.class_names if name != wrong)
    table.table.selectRow(row)
    assert table.correct_selected(right)
    assert table.table.item(row, ReviewTable.LABEL).text() == f"{wrong} → {right}"
    dataset = tmp_path / "dataset"
    _wait(qtbot, table.add_corrected_to(dataset))
    assert "Added 1 images" in _dialog(table, "infoDialog").text()
    assert (dataset / right / "b_0.png").read_bytes() == (images / "more" / "b_0.png").read_bytes()
    assert len(list(images.rglob("*.??g"))) == 7  # the originals stay

    opened.shutdown()
    assert table.shutdown()  # already stopped by the tab


def test_a_confusion_cell_lists_its_images_surest_first_for_correction(
    qtbot: QtBot, opened: InferenceTab, tmp_path: Path
) -> None:
    labelled = generate_sample_dataset(tmp_path / "labelled", classes=3, per_class=4, size=32)
    _wait(qtbot, opened.evaluate(str(labelled)))
    report = opened.report
    names = report.class_names
    true_index, predicted_index = _fullest_cell(report)  # so there is something to sort

    opened.confusion.cell_clicked.emit(true_index, predicted_index)

    cell = opened.cell_images
    expected = sorted(report.cell(true_index, predicted_index), key=lambda m: -m.confidence)
    assert [path for path, _ in cell.shown_images()] == [m.path for m in expected]
    confidences = [confidence for _, confidence in cell.shown_images()]
    assert confidences == sorted(confidences, reverse=True) and confidences
    assert {cell.original_label(row) for row in range(cell.table.rowCount())} == {names[true_index]}
    assert cell.table.item(0, ReviewTable.FILE).text().startswith(names[true_index])
    assert f"predicted as <b>{names[predicted_index]}</b>" in opened.cell_caption.text()

    cell.table.selectRow(0)
    assert cell.correct_selected("relabelled")
    _wait(qtbot, cell.add_corrected_to(tmp_path / "fixed"))
    source = Path(cell.path_at(0))
    assert (tmp_path / "fixed" / "relabelled" / source.name).read_bytes() == source.read_bytes()


def _validation_records(run_dir: Path) -> Path:
    """The run's validation ``.rec``, as "Evaluate on the run's validation images" uses it."""
    return run_dir / read_run(run_dir).data["val_rec"]


def _mean_rgb(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    return pixels[:, : rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3).mean(axis=(0, 1))


def test_images_of_a_record_file_are_shown_and_added_to_a_data_set(
    qtbot: QtBot, opened: InferenceTab, run_dir: Path, tmp_path: Path
) -> None:
    opened.eval_path.setText(str(_validation_records(run_dir)))
    _wait(qtbot, opened.evaluate())
    report = opened.report
    names = report.class_names
    true_index, predicted_index = _fullest_cell(report)

    opened.confusion.cell_clicked.emit(true_index, predicted_index)

    cell = opened.cell_images
    rows = range(cell.table.rowCount())
    assert rows
    for row in rows:  # named as in the .lst beside the .rec
        assert cell.table.item(row, ReviewTable.FILE).text().startswith(f"{names[true_index]}/")
    placeholder = cell.thumbnails.placeholder.cacheKey()
    qtbot.waitUntil(
        lambda: all(
            cell.table.item(row, ReviewTable.THUMBNAIL).data(DECORATION).cacheKey() != placeholder
            for row in rows
        ),
        timeout=JOB_TIMEOUT_MS,
    )
    with ImageReader(report.dataset) as reader:
        for row in rows:  # the record's own picture, not the unreadable placeholder
            image = cell.image_at(row)
            data = reader.read(image.sample())
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            shown = cell.table.item(row, ReviewTable.THUMBNAIL).data(DECORATION).toImage()
            expected = decoded[:, :, ::-1].reshape(-1, 3).mean(axis=0)
            assert np.abs(_mean_rgb(shown) - expected).max() < 12

    cell.table.selectRow(0)
    assert cell.correct_selected("relabelled")
    first = cell.image_at(0)
    _wait(qtbot, cell.add_corrected_to(tmp_path / "fixed"))
    added = tmp_path / "fixed" / "relabelled" / Path(first.path).name
    with ImageReader(report.dataset) as reader:
        original = reader.read(first.sample())
    assert added.read_bytes() == original
    decoded = cv2.imdecode(np.frombuffer(added.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded, cv2.imdecode(np.frombuffer(original, np.uint8), 1))


def _question(tab: InferenceTab) -> QMessageBox:
    shown = [
        box for box in tab.findChildren(QMessageBox, "discardCorrectionsDialog") if box.isVisible()
    ]
    assert len(shown) == 1, "no discard question shown"
    return shown[0]


def test_labelling_again_asks_before_corrections_are_lost(
    qtbot: QtBot, opened: InferenceTab, images: Path
) -> None:
    _label(qtbot, opened, images)
    table = opened.predictions
    table.table.selectRow(0)
    assert table.correct_selected("relabelled")
    table.table.selectRow(1)
    assert table.correct_selected("relabelled")
    result = opened.labelling

    assert opened.label() is None
    question = _question(opened)
    assert question.text() == (
        "2 corrected labels have not been added to a data set. Discard them?"
    )
    question.button(QMessageBox.StandardButton.Cancel).click()  # Keep
    assert question.button(QMessageBox.StandardButton.Cancel).text() == "Keep"
    assert len(table.corrections()) == 2
    assert opened.labelling is result and not opened.cancel_button.isEnabled()  # no job

    assert opened.label() is None
    with qtbot.waitSignal(opened.folder_labelled, timeout=JOB_TIMEOUT_MS):
        _question(opened).button(QMessageBox.StandardButton.Discard).click()
    assert table.corrections() == {}
    assert opened.labelling is not result  # labelled again
    assert "→" not in table.table.item(0, ReviewTable.LABEL).text()


def test_evaluating_again_asks_before_corrections_are_lost(
    qtbot: QtBot, opened: InferenceTab, run_dir: Path
) -> None:
    opened.eval_path.setText(str(_validation_records(run_dir)))
    _wait(qtbot, opened.evaluate())
    opened.confusion.cell_clicked.emit(*_fullest_cell(opened.report))
    opened.cell_images.table.selectRow(0)
    assert opened.cell_images.correct_selected("relabelled")
    report = opened.report

    assert opened.evaluate() is None
    question = _question(opened)
    assert question.text() == "1 corrected label has not been added to a data set. Discard it?"
    with qtbot.waitSignal(
        opened.status_message,
        check_params_cb=lambda message: message.startswith("Accuracy"),
        timeout=JOB_TIMEOUT_MS,
    ):
        question.button(QMessageBox.StandardButton.Discard).click()
    assert opened.report is not report  # evaluated again
    assert opened.cell_images.corrections() == {}
