"""The Inference tab, driven as a user would (offscreen) with a real trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QFontMetrics, QImage
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.app_state import AppState
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.evaluation import EvaluationReport
from imgcls_desktop.core.labelling import write_jsonl
from imgcls_desktop.core.models import run_validation_data
from imgcls_desktop.gui.inference import InferenceTab
from imgcls_desktop.gui.inference.charts import TOP_COLOUR, ProbabilityChart
from imgcls_desktop.gui.inference.review import ReviewTable
from imgcls_desktop.gui.inference.review_tables import PredictionTable
from imgcls_desktop.gui.inference.thumbnail_column import ROW_THUMBNAIL_SIZE
from imgcls_desktop.gui.main_window import MainWindow
from imgcls_desktop.gui.workers import JobHandle, JobRunner
from tests.conftest import CLASS_COLOURS, write_image
from tests.core.inference_fixtures import (
    labelled_with_a_class_never_right,
    shared_run,
    write_plain_checkpoint,
)

JOB_TIMEOUT_MS = 120_000
DECORATION = Qt.ItemDataRole.DecorationRole


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_run(tmp_path_factory)[0]


@pytest.fixture
def state() -> AppState:
    return AppState(save=None)


@pytest.fixture
def tab(qtbot: QtBot, state: AppState) -> InferenceTab:
    jobs = JobRunner()
    inference_tab = InferenceTab(jobs, state)
    qtbot.addWidget(inference_tab)
    yield inference_tab
    jobs.shutdown()
    inference_tab.shutdown()


@pytest.fixture
def opened(qtbot: QtBot, tab: InferenceTab, state: AppState, run_dir: Path) -> InferenceTab:
    _wait(qtbot, tab.open_model(str(run_dir)))
    assert state.model is not None and state.model.path == run_dir
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
    qtbot.waitSignal(job.finished, timeout=JOB_TIMEOUT_MS).wait()


def _dialog(tab: QWidget, name: str) -> QMessageBox:
    shown = [dialog for dialog in tab.findChildren(QMessageBox, name) if dialog.isVisible()]
    assert len(shown) == 1, f"no {name} shown"
    return shown[0]


def _fullest_cell(report: EvaluationReport) -> tuple[int, int]:
    """(true, predicted) index of the confusion-matrix cell with the most images."""
    cells = [(i, j) for i in range(3) for j in range(3)]
    return max(cells, key=lambda cell: report.confusion_matrix[cell])


def _label(qtbot: QtBot, tab: InferenceTab, folder: Path) -> None:
    _wait(qtbot, tab.label_folder(str(folder)))


def _report(state: AppState) -> EvaluationReport:
    assert state.evaluation is not None
    return state.evaluation.report


def test_opening_a_run_shows_its_summary_and_proposes_its_validation_images(
    opened: InferenceTab, state: AppState, run_dir: Path
) -> None:
    summary = opened.model_box.summary.text()
    assert "training run" in summary
    assert "3 classes" in summary
    assert "3 x 32 x 32" in summary
    assert opened.label_page.label_button.isEnabled()
    assert opened.evaluate_page.evaluate_button.isEnabled()
    assert not opened.label_page.csv_button.isEnabled()
    validation = run_validation_data(run_dir)
    assert validation is not None and state.model.validation == validation
    # The Evaluate page is not empty: it proposes the model's own validation images.
    assert opened.evaluate_page.eval_path.text() == str(validation)
    assert "validation images" in opened.evaluate_page.summary.text()
    # Dialogs open beside the data: the model's and the validation images' folders.
    assert opened.model_box.model_path.start_folder() == str(run_dir)
    assert opened.model_box.labels_path.start_folder() == str(run_dir)


def test_a_bad_model_path_shows_the_reason(
    qtbot: QtBot, tab: InferenceTab, state: AppState, tmp_path: Path
) -> None:
    _wait(qtbot, tab.open_model(str(tmp_path / "no-such-model")))
    dialog = _dialog(tab, "errorDialog")
    assert "no-such-model" in dialog.text()
    assert "Traceback" not in dialog.text()
    assert state.model is None and tab.model_box.model_path.text() == ""
    assert not tab.label_page.label_button.isEnabled()


def test_a_model_that_fails_to_open_leaves_the_open_one_and_its_path(
    qtbot: QtBot, opened: InferenceTab, state: AppState, run_dir: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("a shopping list")
    _wait(qtbot, opened.open_model(str(text)))
    assert "is not a model: a model is" in _dialog(opened, "errorDialog").text()
    assert state.model is not None and state.model.path == run_dir
    assert opened.model_box.model_path.text() == str(run_dir)
    assert "training run" in opened.model_box.summary.text()
    _dialog(opened, "errorDialog").close()

    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"half a download")
    _wait(qtbot, opened.open_model(str(archive)))
    message = _dialog(opened, "errorDialog").text()
    assert "is not a valid archive" in message and "symbol.json" not in message
    assert opened.model_box.model_path.text() == str(run_dir)


def test_a_model_opened_in_int8_shows_what_was_measured_and_fp32_reopens_it(
    qtbot: QtBot, tab: InferenceTab, state: AppState, run_dir: Path, tmp_path: Path
) -> None:
    run_copy = shutil.copytree(run_dir, tmp_path / "run")  # the check is cached inside
    box = tab.model_box
    box.precision.setCurrentIndex(box.precision.findData("int8"))
    assert state.model is None  # nothing to reopen yet
    _wait(qtbot, tab.open_model(str(run_copy)))
    assert state.model is not None and state.model.predictor.precision == "int8"
    summary = box.summary.text()
    assert "in int8" in summary and "int8: " in summary and "validation images" in summary
    box.precision.setCurrentIndex(box.precision.findData("fp32"))
    qtbot.waitUntil(lambda: state.model.predictor.precision == "fp32", timeout=JOB_TIMEOUT_MS)
    assert "in fp32" in box.summary.text() and "speed" not in box.summary.text()


def test_a_precision_this_computer_cannot_run_is_refused_in_the_window(
    qtbot: QtBot, tab: InferenceTab, state: AppState, tmp_path: Path
) -> None:
    prefix = write_plain_checkpoint(tmp_path / "plain")
    tab.model_box.precision.setCurrentIndex(tab.model_box.precision.findData("int8"))
    _wait(qtbot, tab.open_model(str(prefix)))
    message = _dialog(tab, "errorDialog").text()
    assert "checked against fp32 on labelled images" in message and "Traceback" not in message
    assert state.model is None


def test_opening_another_model_clears_the_evaluation_of_the_previous_one(
    qtbot: QtBot, opened: InferenceTab, state: AppState, tmp_path: Path
) -> None:
    _wait(qtbot, opened.evaluate())
    page = opened.evaluate_page
    assert "Accuracy" in page.summary.text() and page.confusion.matrix.shape == (3, 3)

    checkpoint = write_plain_checkpoint(tmp_path / "other")
    _wait(qtbot, opened.open_model(f"{checkpoint}-symbol.json"))

    assert state.model.path == Path(f"{checkpoint}-symbol.json") and state.evaluation is None
    assert "Accuracy" not in page.summary.text()
    assert page.confusion.matrix.size == 0 and page.class_metrics.table.rowCount() == 0
    assert page.eval_path.text() == ""  # the run's validation images are not this model's
    assert opened.evaluate() is None  # a plain checkpoint has none: said so, no job
    assert state.evaluation is None


def test_evaluating_the_runs_validation_images_keeps_the_open_model(
    qtbot: QtBot, tab: InferenceTab, state: AppState, run_dir: Path
) -> None:
    checkpoint = sorted(run_dir.glob("*.params"))[-1]
    tab.model_box.labels_path.setText(str(run_dir / "classes.json"))
    _wait(qtbot, tab.open_model(str(checkpoint)))  # the run's checkpoint, not the run folder
    assert state.model.validation == run_validation_data(run_dir)
    with qtbot.waitSignal(tab.evaluated, timeout=JOB_TIMEOUT_MS) as evaluated:
        tab.evaluate()
    assert state.model.path == checkpoint  # never swapped for the run
    assert state.evaluation.model == checkpoint and state.evaluation.data == state.model.validation
    assert evaluated.args == [state.evaluation.report]


def test_labelling_a_folder_fills_the_table_and_exports(
    qtbot: QtBot, opened: InferenceTab, state: AppState, images: Path, tmp_path: Path
) -> None:
    _label(qtbot, opened, images)
    page = opened.label_page
    table = page.predictions.table
    assert table.rowCount() == 6
    files = [table.item(row, PredictionTable.FILE).text() for row in range(6)]
    assert files == [f"a_{i}.jpg" for i in range(3)] + [
        str(Path("more", f"b_{i}.png")) for i in range(3)
    ]
    assert page.unreadable.rowCount() == 1 and not page.unreadable.isHidden()
    assert page.unreadable.item(0, 0).text() == "broken.jpg"
    assert page.unreadable.item(0, 1).text()
    class_names = state.model.predictor.class_names
    assert [page.label_filter.itemText(i) for i in range(1, 4)] == class_names

    label = page.predictions.visible_rows()[0][1]
    page.label_filter.setCurrentIndex(page.label_filter.findData(label))
    shown = page.predictions.visible_rows()
    assert shown and {row[1] for row in shown} == {label}
    page.label_filter.setCurrentIndex(0)
    lowest = min(row[2] for row in page.predictions.visible_rows())
    page.min_confidence.setValue(lowest * 100 + 1)
    assert len(page.predictions.visible_rows()) < 6
    page.min_confidence.setValue(0)
    assert len(page.predictions.visible_rows()) == 6

    table.cellDoubleClicked.emit(3, PredictionTable.LABEL)  # more/b_0.png: on One Image
    assert opened.pages.currentWidget() is opened.image_page
    assert opened.image_page.image_path.text() == str(images / "more" / "b_0.png")
    qtbot.waitUntil(lambda: opened.image_page.answer is not None, timeout=JOB_TIMEOUT_MS)

    csv_path = tmp_path / "labels.csv"
    assert page.save_labels(csv_path)
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("path,label,confidence")
    assert len(lines) == 7
    jsonl_path = tmp_path / "labels.jsonl"
    assert page.save_labels(jsonl_path, write_jsonl)
    records = [json.loads(line) for line in jsonl_path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 6 and all(len(r["prediction"]) == 3 for r in records)


def test_after_labelling_the_dialogs_open_beside_the_data_and_evaluate_is_proposed(
    qtbot: QtBot, opened: InferenceTab, state: AppState, images: Path
) -> None:
    _label(qtbot, opened, images)
    assert opened.label_page.folder_path.start_folder() == str(images)  # the text typed
    opened.label_page.folder_path.setText("")
    assert opened.label_page.folder_path.start_folder() == str(images.parent)
    assert opened.image_page.image_path.start_folder() == str(images)
    validation = state.model.validation
    opened.evaluate_page.eval_path.setText("")
    assert opened.evaluate_page.eval_path.start_folder() == str(validation.parent)
    opened.model_box.model_path.setText("")
    assert opened.model_box.model_path.start_folder() == str(state.model.path.parent)
    assert opened.evaluate_page.evaluate_button.isEnabled()


def test_sorting_into_a_new_folder_asks_then_creates_it_and_copies(
    qtbot: QtBot, opened: InferenceTab, state: AppState, images: Path, tmp_path: Path
) -> None:
    _label(qtbot, opened, images)
    page = opened.label_page
    proposed = Path(page.sort_path.text())
    assert proposed == images.with_name("unlabelled-sorted") and not proposed.exists()
    out_dir = tmp_path / "new" / "sorted"
    page.sort_path.setText(str(out_dir))
    page.sort_threshold.setValue(0)
    page.sort_button.click()
    box = _dialog(page, "confirmSortDialog")
    assert f"Copy 6 images into one folder per label in {out_dir}" in box.text()
    assert "will be created" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(
        lambda: page.findChild(QMessageBox, "infoDialog") is not None, timeout=JOB_TIMEOUT_MS
    )
    assert "Copied 6 images" in _dialog(page, "infoDialog").text()
    copied = [p for p in out_dir.rglob("*") if p.suffix in (".jpg", ".png")]
    assert len(copied) == 6
    assert {p.parent.name for p in copied} <= set(state.model.predictor.class_names)
    assert (out_dir / "sorted.csv").is_file()
    assert len(list(images.rglob("*.??g"))) == 7  # the originals stay


def _drop(widget: QWidget, path: Path) -> None:
    mime = QMimeData()  # kept alive while the event is used: the event does not own it
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)


def test_one_dropped_image_shows_its_probabilities_at_the_same_size_with_grad_cam(
    qtbot: QtBot, opened: InferenceTab, tmp_path: Path
) -> None:
    page = opened.image_page
    page.resize(900, 600)
    page.show()
    qtbot.waitExposed(page)
    image = write_image(tmp_path / "small.png", CLASS_COLOURS["cat"], size=(64, 64))
    _drop(page.image_view, image)
    assert page.image_path.text() == str(image)
    qtbot.waitUntil(lambda: page.answer is not None, timeout=JOB_TIMEOUT_MS)
    heights = page.chart.bars.opts["height"]
    assert len(heights) == 3 and sum(heights) == pytest.approx(1.0, abs=1e-4)
    red = [
        i for i, b in enumerate(page.chart.bars.opts["brushes"]) if b.color().name() == TOP_COLOUR
    ]
    assert red == [max(range(3), key=heights.__getitem__)]  # the most probable class
    assert "small.png" in page.image_answer.text()
    plain = page.image_view.pixmap().size()
    assert plain.width() > 64  # a small image is enlarged to the view...

    page.grad_cam.setChecked(True)  # computed on demand for the image shown
    qtbot.waitUntil(
        lambda: page.answer.overlay is not None or bool(page.answer.overlay_error),
        timeout=JOB_TIMEOUT_MS,
    )
    assert not page.answer.overlay_error
    assert page.image_view.pixmap().size() == plain  # ...as its overlay is
    page.grad_cam.setChecked(False)
    assert page.image_view.pixmap().size() == plain


def test_evaluating_shows_the_confusion_matrix_and_class_metrics(
    qtbot: QtBot, opened: InferenceTab, state: AppState, tmp_path: Path
) -> None:
    labelled = generate_sample_dataset(tmp_path / "labelled", classes=3, per_class=4, size=32)
    _wait(qtbot, opened.evaluate(str(labelled)))
    page = opened.evaluate_page
    report = _report(state)
    assert report.count == 12 and state.evaluation.data == labelled
    assert page.confusion.matrix.shape == (3, 3)
    assert page.confusion.matrix.sum() == 12
    assert page.class_metrics.table.rowCount() == 3
    assert f"Accuracy {report.accuracy:.1%}" in page.summary.text()
    assert "top-" not in page.summary.text()  # 3 classes: top-5 says nothing
    assert page.cell_images.proposed_dataset() == labelled  # where corrections go


def test_a_class_the_model_never_gets_right_is_named_in_red(
    qtbot: QtBot, opened: InferenceTab, state: AppState, run_dir: Path, tmp_path: Path
) -> None:
    labelled, second = labelled_with_a_class_never_right(run_dir, tmp_path / "labelled")
    _wait(qtbot, opened.evaluate(str(labelled)))
    report = _report(state)
    failing = [m.name for m in report.failing_classes]
    assert second in failing  # a small model may fail another class too
    summary = opened.evaluate_page.summary.text()
    assert f"failing: {second} (recall 0.000, 6 images)" in summary and "color:" in summary
    table = opened.evaluate_page.class_metrics.table
    row = next(r for r in range(3) if table.item(r, 0).text() == second)
    assert table.item(row, 0).foreground().color().name() == "#c0392b"
    for other in (r for r in range(3) if table.item(r, 0).text() not in failing):
        assert table.item(other, 0).foreground().color().name() != "#c0392b"


def test_a_finished_training_run_is_opened_in_the_inference_tab(
    qtbot: QtBot, run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.tabs.tabText(2) == "Inference"
    window.training_tab.run_finished.emit(shared_run(tmp_path_factory)[1])
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=JOB_TIMEOUT_MS)
    assert window.inference_tab.model_box.model_path.text() == str(run_dir)
    window.close()


def test_labelled_rows_show_thumbnails_and_corrections_go_into_a_data_set(
    qtbot: QtBot, opened: InferenceTab, state: AppState, images: Path, tmp_path: Path
) -> None:
    opened.show()
    qtbot.waitExposed(opened)
    _label(qtbot, opened, images)
    table = opened.label_page.predictions
    placeholder = table.thumbnails.placeholder.cacheKey()
    thumbnails = [table.table.item(row, ReviewTable.THUMBNAIL) for row in range(6)]
    qtbot.waitUntil(
        lambda: all(item.data(DECORATION).cacheKey() != placeholder for item in thumbnails),
        timeout=JOB_TIMEOUT_MS,
    )
    assert all(item.data(DECORATION).width() == ROW_THUMBNAIL_SIZE for item in thumbnails)

    row = 3  # more/b_0.png
    wrong = table.original_label(row)
    right = next(name for name in state.model.predictor.class_names if name != wrong)
    table.table.selectRow(row)
    assert table.correct_selected(right)
    assert table.table.item(row, ReviewTable.LABEL).text() == f"{wrong} → {right}"
    dataset = tmp_path / "dataset"
    _wait(qtbot, table.add_corrected_to(dataset))
    assert "Added 1 image to" in _dialog(table, "infoDialog").text()
    assert (dataset / right / "b_0.png").read_bytes() == (images / "more" / "b_0.png").read_bytes()
    assert len(list(images.rglob("*.??g"))) == 7  # the originals stay

    opened.shutdown()
    assert table.shutdown()  # already stopped by the tab


def test_corrections_of_a_labelled_folder_propose_the_data_set_beside_it(
    qtbot: QtBot, opened: InferenceTab, class_folder: Path
) -> None:
    new = class_folder / "new arrivals"
    for index, colour in enumerate(CLASS_COLOURS.values()):
        write_image(new / f"new_{index}.jpg", colour, seed=index)
    _label(qtbot, opened, new)
    assert opened.label_page.predictions.proposed_dataset() == class_folder


def test_a_confusion_cell_lists_its_images_surest_first_for_correction(
    qtbot: QtBot, opened: InferenceTab, state: AppState, tmp_path: Path
) -> None:
    labelled = generate_sample_dataset(tmp_path / "labelled", classes=3, per_class=4, size=32)
    _wait(qtbot, opened.evaluate(str(labelled)))
    page = opened.evaluate_page
    report = _report(state)
    names = report.class_names
    true_index, predicted_index = _fullest_cell(report)  # so there is something to sort

    page.confusion.cell_clicked.emit(true_index, predicted_index)

    assert page.confusion.selected_cell == (true_index, predicted_index)  # highlighted
    cell = page.cell_images
    expected = sorted(report.cell(true_index, predicted_index), key=lambda m: -m.confidence)
    assert [path for path, _ in cell.shown_images()] == [m.path for m in expected]
    confidences = [confidence for _, confidence in cell.shown_images()]
    assert confidences == sorted(confidences, reverse=True) and confidences
    assert {cell.original_label(row) for row in range(cell.table.rowCount())} == {names[true_index]}
    assert cell.table.item(0, ReviewTable.FILE).text().startswith(names[true_index])
    assert f"predicted as <b>{names[predicted_index]}</b>" in page.cell_caption.text()

    cell.table.selectRow(0)
    assert cell.correct_selected("relabelled")
    _wait(qtbot, cell.add_corrected_to(tmp_path / "fixed"))
    source = Path(cell.path_at(0))
    assert (tmp_path / "fixed" / "relabelled" / source.name).read_bytes() == source.read_bytes()


def _mean_rgb(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    return pixels[:, : rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3).mean(axis=(0, 1))


def test_images_of_a_record_file_are_shown_opened_and_added_to_a_data_set(
    qtbot: QtBot, opened: InferenceTab, state: AppState, tmp_path: Path
) -> None:
    _wait(qtbot, opened.evaluate())  # the run's validation .rec
    page = opened.evaluate_page
    report = _report(state)
    names = report.class_names
    true_index, predicted_index = _fullest_cell(report)

    page.confusion.cell_clicked.emit(true_index, predicted_index)

    cell = page.cell_images
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

    # A double-click opens the record on the One Image page, as in the labelling table.
    first = cell.image_at(0)
    cell.table.cellDoubleClicked.emit(0, ReviewTable.FILE)
    assert opened.pages.currentWidget() is opened.image_page
    qtbot.waitUntil(lambda: opened.image_page.answer is not None, timeout=JOB_TIMEOUT_MS)
    assert opened.image_page.answer.image == first
    assert not opened.image_page.image_view.pixmap().isNull()

    cell.table.selectRow(0)
    dialog = cell.ask_correction()  # Correct Label shows the image being corrected
    assert dialog is not None and not dialog.picture.pixmap().isNull()
    dialog.choice.setCurrentText("relabelled")
    dialog.accept()
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
    page = opened.label_page
    table = page.predictions
    table.table.selectRow(0)
    assert table.correct_selected("relabelled")
    table.table.selectRow(1)
    assert table.correct_selected("relabelled")
    result = page.labelling

    assert opened.label_folder(str(images)) is None
    question = _question(opened)
    assert question.text() == (
        "2 corrected labels have not been added to a data set. Discard them?"
    )
    question.button(QMessageBox.StandardButton.Cancel).click()  # Keep
    assert question.button(QMessageBox.StandardButton.Cancel).text() == "Keep"
    assert len(table.corrections) == 2
    assert page.labelling is result and not page.cancel_button.isEnabled()  # no job

    assert opened.label_folder(str(images)) is None
    with qtbot.waitSignal(opened.folder_labelled, timeout=JOB_TIMEOUT_MS):
        _question(opened).button(QMessageBox.StandardButton.Discard).click()
    assert table.corrections.pending() == {}
    assert page.labelling is not result  # labelled again
    assert "→" not in table.table.item(0, ReviewTable.LABEL).text()


def test_evaluating_again_asks_before_corrections_are_lost(
    qtbot: QtBot, opened: InferenceTab, state: AppState
) -> None:
    _wait(qtbot, opened.evaluate())
    page = opened.evaluate_page
    page.confusion.cell_clicked.emit(*_fullest_cell(_report(state)))
    page.cell_images.table.selectRow(0)
    assert page.cell_images.correct_selected("relabelled")
    report = _report(state)

    assert opened.evaluate() is None
    question = _question(opened)
    assert question.text() == "1 corrected label has not been added to a data set. Discard it?"
    with qtbot.waitSignal(opened.evaluated, timeout=JOB_TIMEOUT_MS):
        question.button(QMessageBox.StandardButton.Discard).click()
    assert _report(state) is not report  # evaluated again
    assert page.cell_images.corrections.pending() == {}


def test_the_chart_gives_the_top_class_its_own_colour_and_names_that_fit(qtbot: QtBot) -> None:
    chart = ProbabilityChart()
    qtbot.addWidget(chart)
    chart.resize(420, 240)
    chart.show()
    qtbot.waitExposed(chart)
    names = [f"a rather long class name {index}" for index in range(12)]
    probabilities = np.linspace(0.02, 0.2, 12)
    probabilities /= probabilities.sum()
    chart.show_probabilities(names, probabilities, 3)
    colours = [brush.color().name() for brush in chart.bars.opts["brushes"]]
    assert colours[11] == TOP_COLOUR and colours[10] == colours[9] != TOP_COLOUR
    assert len(set(colours[:9])) == 1 and colours[0] not in (colours[10], TOP_COLOUR)
    metrics = QFontMetrics(chart.font())
    shown = chart.shown_names()
    assert len(shown) == 12 and shown != names  # shortened: 12 long names cannot fit
    assert all(metrics.horizontalAdvance(name) <= chart.bar_width() + 2 for name in shown)
