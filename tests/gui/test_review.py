"""Review tables: thumbnails off the GUI thread, corrected labels, corrected images added to a
data set (originals kept, nothing overwritten), and the confusion matrix's clickable cells."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLASS_COLOURS, write_image
from PySide6.QtCore import QItemSelectionModel, QPoint, QPointF, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.corrections import CORRECTIONS_CSV
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.evaluation import evaluate_predictions
from imgcls_desktop.core.labelling import Prediction
from imgcls_desktop.gui.inference.confusion import ConfusionMatrixView
from imgcls_desktop.gui.inference.correct_dialog import CorrectLabelDialog
from imgcls_desktop.gui.inference.review import ReviewTable
from imgcls_desktop.gui.inference.review_tables import CellImagesTable, PredictionTable
from imgcls_desktop.gui.inference.thumbnail_column import ROW_THUMBNAIL_SIZE
from imgcls_desktop.gui.workers import JobRunner, JobSlot
from tests.file_name_fixtures import undecodable_path

CLASSES = sorted(CLASS_COLOURS)  # cat, dog, owl
DECORATION = Qt.ItemDataRole.DecorationRole
TIMEOUT_MS = 30_000


@pytest.fixture
def slot(qtbot: QtBot) -> Iterator[JobSlot]:
    runner = JobRunner()
    yield JobSlot(runner)
    runner.shutdown()


@pytest.fixture
def table(qtbot: QtBot, slot: JobSlot) -> Iterator[PredictionTable]:
    widget = PredictionTable(slot)
    qtbot.addWidget(widget)
    yield widget
    assert widget.shutdown()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """One image per class, named after the class the model will (wrongly, for owl) give."""
    root = tmp_path / "unlabelled"
    for name, colour in CLASS_COLOURS.items():
        write_image(root / f"{name}.jpg", colour, size=(24, 40), seed=len(name))
    return root


def predictions(folder: Path, labels: dict[str, tuple[str, float]]) -> list[Prediction]:
    """A prediction per image of ``folder`` (file stem -> (label, confidence))."""
    result = []
    for stem, (label, confidence) in labels.items():
        probabilities = np.full(len(CLASSES), (1 - confidence) / (len(CLASSES) - 1))
        probabilities[CLASSES.index(label)] = confidence
        top = [(label, confidence)]
        result.append(
            Prediction(folder / f"{stem}.jpg", label, confidence, probabilities, top, (label,))
        )
    return result


@pytest.fixture
def filled(table: PredictionTable, folder: Path) -> PredictionTable:
    answers = {"cat": ("cat", 0.9), "dog": ("dog", 0.8), "owl": ("cat", 0.7)}
    table.show_predictions(predictions(folder, answers), folder, CLASSES)
    return table


def row_of(table: ReviewTable, name: str) -> int:
    rows = range(table.table.rowCount())
    return next(row for row in rows if table.image_at(row).path.endswith(name))


def select(table: ReviewTable, *names: str) -> None:
    table.table.clearSelection()
    selection = table.table.selectionModel()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for name in names:
        selection.select(table.table.model().index(row_of(table, name), 0), flags)


def thumbnail(table: ReviewTable, row: int) -> QPixmap:
    """The row's picture (asking for it requests the thumbnail, as painting does)."""
    return table.table.item(row, ReviewTable.THUMBNAIL).data(DECORATION)


def dialog(parent: QWidget, name: str) -> QMessageBox:
    box = parent.findChild(QMessageBox, name)
    assert box is not None and box.isVisible(), f"no {name} shown"
    return box


def test_rows_get_their_thumbnails_from_the_loader_thread(
    qtbot: QtBot, filled: PredictionTable
) -> None:
    placeholder = filled.thumbnails.placeholder.cacheKey()
    assert all(thumbnail(filled, row).cacheKey() == placeholder for row in range(3))
    qtbot.waitUntil(
        lambda: all(thumbnail(filled, row).cacheKey() != placeholder for row in range(3)),
        timeout=TIMEOUT_MS,
    )
    for name, colour in CLASS_COLOURS.items():  # BGR: the dominant channel of each image
        pixmap = thumbnail(filled, row_of(filled, f"{name}.jpg"))
        assert pixmap.width() == pixmap.height() == ROW_THUMBNAIL_SIZE
        pixel = pixmap.toImage().pixelColor(ROW_THUMBNAIL_SIZE // 2, ROW_THUMBNAIL_SIZE // 2)
        rgb = [pixel.red(), pixel.green(), pixel.blue()]
        assert int(np.argmax(rgb)) == int(np.argmax(colour[::-1]))


def test_an_unreadable_image_gets_the_unreadable_placeholder(
    qtbot: QtBot, table: PredictionTable, folder: Path
) -> None:
    (folder / "broken.jpg").write_bytes(b"not an image")
    table.show_predictions(predictions(folder, {"broken": ("cat", 0.5)}), folder, CLASSES)
    unreadable = table.thumbnails.unreadable_placeholder.cacheKey()
    qtbot.waitUntil(lambda: thumbnail(table, 0).cacheKey() == unreadable, timeout=TIMEOUT_MS)
    assert "Cannot show" in table.table.item(0, ReviewTable.THUMBNAIL).toolTip()


def test_correcting_shows_the_new_label_and_choosing_the_old_one_undoes_it(
    filled: PredictionTable, folder: Path
) -> None:
    assert not filled.correct_button.isEnabled()
    assert not filled.add_button.isEnabled()
    select(filled, "owl.jpg")
    assert filled.correct_button.isEnabled()

    assert filled.correct_selected("owl")

    row = row_of(filled, "owl.jpg")
    label = filled.table.item(row, ReviewTable.LABEL)
    assert label.text() == "cat → owl"
    assert label.font().bold()
    assert "Corrected from cat to owl" in label.toolTip()
    assert filled.corrections.pending() == {str(folder / "owl.jpg"): "owl"}
    assert filled.add_button.isEnabled()
    assert filled.correction_count.text() == "1 corrected, not yet added"
    filled.set_filters("cat", 0.0)  # the model's label still filters
    assert {row[0] for row in filled.visible_rows()} == {"cat.jpg", "owl.jpg"}
    filled.set_filters(None, 0.0)

    select(filled, "owl.jpg")
    assert filled.correct_selected("cat")
    assert filled.table.item(row, ReviewTable.LABEL).text() == "cat"
    assert not filled.table.item(row, ReviewTable.LABEL).font().bold()
    assert filled.corrections.pending() == {}
    assert not filled.add_button.isEnabled()


def test_the_correct_label_dialog_offers_the_classes_and_takes_a_new_name(
    filled: PredictionTable, folder: Path
) -> None:
    select(filled, "cat.jpg", "dog.jpg")
    ask = filled.ask_correction()
    assert ask is filled.findChild(CorrectLabelDialog, "correctLabelDialog") and ask.isVisible()
    choice = ask.choice
    assert [choice.itemText(i) for i in range(choice.count())] == CLASSES
    assert choice.isEditable()
    picture = ask.picture.pixmap()  # the image being corrected (the first selected)
    assert not picture.isNull() and max(picture.width(), picture.height()) >= 40
    ask.choice.setCurrentText("sea lion")
    ask.accept()
    assert filled.corrections.pending() == {
        str(folder / "cat.jpg"): "sea lion",
        str(folder / "dog.jpg"): "sea lion",
    }


# The offscreen platform cannot grab the keyboard for a pop-up menu, and says so.
@pytest.mark.qt_log_ignore("This plugin does not support grabbing the keyboard")
def test_the_context_menu_offers_both_actions(filled: PredictionTable) -> None:
    select(filled, "owl.jpg")
    filled.table.customContextMenuRequested.emit(QPoint(5, 5))
    menu = filled.findChild(QMenu)
    assert menu is not None and menu.isVisible()
    actions = {action.text(): action for action in menu.actions()}
    assert actions.keys() == {"Correct Label…", "Add Corrected to Data Set…"}
    assert actions["Correct Label…"].isEnabled()
    assert not actions["Add Corrected to Data Set…"].isEnabled()  # nothing corrected yet
    menu.close()


def test_an_unusable_class_name_is_refused_with_the_reason(filled: PredictionTable) -> None:
    select(filled, "owl.jpg")
    assert not filled.correct_selected("../owl")
    assert "cannot contain /" in dialog(filled, "errorDialog").text()
    assert filled.corrections.pending() == {}


def test_corrected_images_are_copied_into_their_class_folder_and_never_overwrite(
    qtbot: QtBot, filled: PredictionTable, folder: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "dataset"
    taken = write_image(dataset / "owl" / "owl.jpg", CLASS_COLOURS["cat"], seed=99)
    taken_bytes = taken.read_bytes()
    original = (folder / "owl.jpg").read_bytes()
    select(filled, "owl.jpg")
    filled.correct_selected("owl")
    select(filled, "dog.jpg")
    filled.correct_selected("wolf")

    job = filled.add_corrected_to(dataset)
    assert job is not None
    qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS).wait()

    summary = dialog(filled, "infoDialog")
    assert "Added 2 images" in summary.text()
    assert (dataset / "owl" / "owl (1).jpg").read_bytes() == original
    assert taken.read_bytes() == taken_bytes  # the image already there is kept
    assert (dataset / "wolf" / "dog.jpg").is_file()
    assert (folder / "owl.jpg").read_bytes() == original  # the original stays
    assert (dataset / CORRECTIONS_CSV).is_file()
    assert filled.corrections.pending() == {}
    assert not filled.add_button.isEnabled()
    label = filled.table.item(row_of(filled, "owl.jpg"), ReviewTable.LABEL)
    assert label.text() == "cat → owl" and not label.font().bold()
    assert str(dataset / "owl" / "owl (1).jpg") in label.toolTip()


def test_an_image_gone_before_adding_is_reported_and_stays_corrected(
    qtbot: QtBot, filled: PredictionTable, folder: Path, tmp_path: Path
) -> None:
    select(filled, "owl.jpg", "dog.jpg")
    filled.correct_selected("bird")
    (folder / "owl.jpg").unlink()

    job = filled.add_corrected_to(tmp_path / "dataset")
    qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS).wait()

    error = dialog(filled, "errorDialog")
    assert "Added 1 image to" in error.text() and "1 image could not be added" in error.text()
    assert "owl.jpg" in error.detailedText()
    assert filled.corrections.pending() == {str(folder / "owl.jpg"): "bird"}  # nothing lost


def test_a_cell_lists_its_images_surest_first(qtbot: QtBot, slot: JobSlot, folder: Path) -> None:
    paths = [str(folder / f"{name}.jpg") for name in ("cat", "dog", "owl")]
    # Every image is a cat; the model calls all three dogs, with 0.6, 0.9 and 0.7.
    probabilities = np.array([[0.4, 0.6, 0.0], [0.1, 0.9, 0.0], [0.3, 0.7, 0.0]])
    report = evaluate_predictions([0, 0, 0], probabilities, CLASSES, paths=paths)
    cell = CellImagesTable(slot)
    qtbot.addWidget(cell)

    cell.show_images(report.cell(0, 1), folder, CLASSES)

    assert cell.shown_images() == [(paths[1], 0.9), (paths[2], 0.7), (paths[0], 0.6)]
    select(cell, "owl.jpg")
    assert cell.correct_selected("dog")
    cell.show_images(report.cell(0, 0), folder, CLASSES)  # another cell: empty
    assert cell.table.rowCount() == 0
    cell.show_images(report.cell(0, 1), folder, CLASSES)  # back: the correction is kept
    assert cell.corrections.pending() == {paths[2]: "dog"}
    assert cell.table.item(row_of(cell, "owl.jpg"), ReviewTable.LABEL).text() == "cat → dog"
    assert cell.table.item(0, ReviewTable.FILE).text() == "dog.jpg"
    assert cell.table.item(0, ReviewTable.LABEL).text() == "cat"
    assert cell.table.item(0, CellImagesTable.PREDICTED).text() == "dog"
    placeholder = cell.thumbnails.placeholder.cacheKey()
    qtbot.waitUntil(lambda: thumbnail(cell, 0).cacheKey() != placeholder, timeout=TIMEOUT_MS)
    assert cell.shutdown()


def test_clicking_a_confusion_matrix_cell_names_it(qtbot: QtBot) -> None:
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.resize(400, 400)
    view.show()
    qtbot.waitExposed(view)
    view.show_matrix(CLASSES, np.array([[3, 1, 0], [0, 2, 2], [1, 0, 4]]))
    box = view.getPlotItem().getViewBox()
    scene_point = box.mapViewToScene(QPointF(1.5, 2.5))  # column 1, row 2
    assert view.cell_at(scene_point) == (2, 1)
    assert view.cell_at(box.mapViewToScene(QPointF(3.5, 0.5))) is None

    with qtbot.waitSignal(view.cell_clicked, timeout=TIMEOUT_MS) as clicked:
        qtbot.mouseClick(
            view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(scene_point)
        )
    assert clicked.args == [2, 1]
    assert view.selected_cell == (2, 1) and view.outline.isVisible()  # the cell is outlined
    assert view.outline.rect().topLeft() == QPointF(1, 2)


def test_images_inside_a_record_file_are_shown_and_added_to_a_data_set(
    qtbot: QtBot, slot: JobSlot, records: Dataset, class_folder: Path, tmp_path: Path
) -> None:
    # The model calls every image a cat, the first ones most surely.
    count = len(records.samples)
    cat = np.linspace(0.9, 0.5, count)
    probabilities = np.stack([cat, 1 - cat, np.zeros(count)], axis=1)
    report = evaluate_predictions(
        [sample.label for sample in records.samples],
        probabilities,
        records.class_names,
        paths=[sample.path for sample in records.samples],
        records=[sample.record for sample in records.samples],
    )
    cell = CellImagesTable(slot)
    qtbot.addWidget(cell)

    owl = CLASSES.index("owl")
    cell.show_images(report.cell(owl, 0), tmp_path / "packed", CLASSES, records)

    rows = range(cell.table.rowCount())
    assert len(rows) == 6
    names = [cell.table.item(row, ReviewTable.FILE).text() for row in rows]
    assert names == [f"owl/owl_{i}.jpg" for i in range(6)]  # the records' names, surest first
    placeholder = cell.thumbnails.placeholder.cacheKey()
    qtbot.waitUntil(
        lambda: all(thumbnail(cell, row).cacheKey() != placeholder for row in rows),
        timeout=TIMEOUT_MS,
    )
    blue, green, red = CLASS_COLOURS["owl"]
    for row in rows:  # the real image: the owls' colour, not a placeholder's grey
        centre = ROW_THUMBNAIL_SIZE // 2
        pixel = thumbnail(cell, row).toImage().pixelColor(centre, centre)
        assert pixel.alpha() == 255
        for value, expected in zip((pixel.red(), pixel.green(), pixel.blue()), (red, green, blue)):
            assert abs(value - expected) < 60

    with qtbot.waitSignal(cell.image_activated, timeout=TIMEOUT_MS) as activated:
        cell.table.cellDoubleClicked.emit(0, ReviewTable.FILE)  # a record opens too
    assert activated.args == [cell.image_at(0)] and activated.args[0].record is not None

    select(cell, "owl_2.jpg")
    assert cell.correct_selected("bird")
    record = cell.image_at(row_of(cell, "owl_2.jpg")).record
    source = f"{records.record_file}#{record}"
    assert cell.corrections.pending() == {source: "bird"}
    job = cell.add_corrected_to(tmp_path / "fixed")
    assert job is not None
    qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS).wait()

    assert "Added 1 image to" in dialog(cell, "infoDialog").text()
    added = tmp_path / "fixed" / "bird" / "owl_2.jpg"
    original = class_folder / "owl" / "owl_2.jpg"
    assert added.read_bytes() == original.read_bytes()
    decoded = cv2.imdecode(np.frombuffer(added.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded, cv2.imread(str(original)))
    with (tmp_path / "fixed" / CORRECTIONS_CSV).open(encoding="utf-8", newline="") as file:
        assert list(csv.reader(file))[1] == [source, "bird", str(added)]
    assert cell.corrections.pending() == {}
    assert cell.table.item(row_of(cell, "owl_2.jpg"), ReviewTable.LABEL).text() == "owl → bird"
    assert cell.shutdown()


def test_names_that_differ_only_in_bytes_that_are_not_utf8_stay_apart(
    qtbot: QtBot, table: PredictionTable, tmp_path: Path
) -> None:
    folder = tmp_path / "old disk"
    first = write_image(undecodable_path(folder, os.fsdecode(b"caf\xe9.jpg")), (40, 40, 200))
    second = write_image(undecodable_path(folder, os.fsdecode(b"caf\xe8.jpg")), (40, 200, 40))
    answers = {path.stem: ("cat", 0.9) for path in (first, second)}
    table.show_predictions(predictions(folder, answers), folder, CLASSES)
    shown = {table.table.item(row, ReviewTable.FILE).text() for row in range(2)}
    assert shown == {"caf\\xe9.jpg", "caf\\xe8.jpg"}  # Qt would drop the bytes

    select(table, first.name)
    table.correct_selected("owl")
    select(table, second.name)
    table.correct_selected("dog")
    assert table.corrections.pending() == {str(first): "owl", str(second): "dog"}

    job = table.add_corrected_to(tmp_path / "dataset")
    qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS).wait()
    assert (tmp_path / "dataset" / "owl" / first.name).read_bytes() == first.read_bytes()
    assert (tmp_path / "dataset" / "dog" / second.name).read_bytes() == second.read_bytes()
    assert table.corrections.pending() == {}
