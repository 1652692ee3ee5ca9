"""The Dataset tab and the main window, driven as a user would (offscreen)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.project import ItemKind, load_project
from imgcls_desktop.gui.dataset import DatasetTab
from imgcls_desktop.gui.dataset.class_summary import bar_labels
from imgcls_desktop.gui.main_window import MainWindow
from tests.conftest import CLASS_COLOURS, write_image

JOB_TIMEOUT_MS = 120_000


def _open(qtbot: QtBot, tab: DatasetTab, path: Path) -> None:
    job = tab.open_path(str(path))
    assert job is not None
    qtbot.waitSignal(job.finished, timeout=JOB_TIMEOUT_MS).wait()


def _dialog(tab: DatasetTab, name: str) -> QMessageBox:
    shown = [dialog for dialog in tab.findChildren(QMessageBox, name) if dialog.isVisible()]
    assert len(shown) == 1, f"no {name} shown"
    return shown[0]


def test_opening_a_folder_fills_classes_problems_and_thumbnails(
    qtbot: QtBot, window: MainWindow, class_folder: Path
) -> None:
    (class_folder / "dog" / "broken.jpg").write_bytes(b"")
    (class_folder / "dog" / "cat_0.jpg").write_bytes(
        (class_folder / "cat" / "cat_0.jpg").read_bytes()
    )
    tab = window.dataset_tab
    assert tab.stack.currentWidget() is tab.empty_state
    _open(qtbot, tab, class_folder)

    assert tab.stack.currentIndex() == 1
    table = tab.classes.table
    rows = [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]
    assert rows == [("cat", "6"), ("dog", "7"), ("owl", "6")]
    problems = tab.problems.tree
    categories = [problems.topLevelItem(i).text(0) for i in range(problems.topLevelItemCount())]
    assert "Unusable files, skipped (1)" in categories
    unusable = problems.topLevelItem(categories.index("Unusable files, skipped (1)"))
    assert unusable.child(0).text(0).startswith("dog/broken.jpg: empty file")
    # Duplicates by their place in the data set: every class may have a cat_0.jpg.
    duplicates = problems.topLevelItem(categories.index("Exact duplicates (1)"))
    assert duplicates.child(0).text(0).startswith("2 copies: cat/cat_0.jpg, dog/cat_0.jpg")
    assert tab.thumbnails.model().rowCount() == 20
    assert window.state.recent(ItemKind.DATASET) == [str(class_folder)]
    assert load_project().recent(ItemKind.DATASET) == [str(class_folder)]


def test_clicking_a_problem_shows_the_file(
    qtbot: QtBot, window: MainWindow, class_folder: Path
) -> None:
    (class_folder / "owl" / "short.jpg").write_bytes(
        (class_folder / "owl" / "owl_0.jpg").read_bytes()[:200]
    )
    tab = window.dataset_tab
    _open(qtbot, tab, class_folder)
    item = tab.problems.tree.topLevelItem(0).child(0)
    tab.problems.tree.itemClicked.emit(item, 0)
    assert tab.preview.isVisible()
    assert "short.jpg" in tab.preview.caption.text()
    assert "truncated" in tab.preview.caption.text()


def test_export_writes_recordio_and_reports(
    qtbot: QtBot, window: MainWindow, class_folder: Path, tmp_path: Path
) -> None:
    tab = window.dataset_tab
    _open(qtbot, tab, class_folder)
    out = tmp_path / "exported"
    tab.export_panel.out_dir.setText(str(out))
    tab.export_panel.name.setText("pets")
    tab.export_panel.val_percent.setValue(50)
    with qtbot.waitSignal(tab.dataset_exported, timeout=JOB_TIMEOUT_MS) as exported:
        assert tab.export() is not None
    assert exported.args == [str(out / "pets-train.rec"), str(out / "pets-val.rec")]
    names = sorted(p.name for p in out.iterdir())
    assert {
        "pets-train.rec",
        "pets-train.idx",
        "pets-train.lst",
        "pets-val.rec",
        "classes.json",
        "labels.txt",
    } <= set(names)
    assert "Wrote 18 images (9 train, 9 val)" in _dialog(tab, "infoDialog").text()


def test_cancelled_export_leaves_nothing(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    root = tmp_path / "many"
    for class_index, (name, colour) in enumerate(CLASS_COLOURS.items()):
        for i in range(150):
            write_image(root / name / f"{i}.png", colour, size=(48, 48), seed=class_index + i)
    tab = window.dataset_tab
    _open(qtbot, tab, root)
    out = tmp_path / "out"
    tab.export_panel.out_dir.setText(str(out))
    job = tab.export()
    with qtbot.waitSignals([job.cancelled, job.finished], order="strict", timeout=JOB_TIMEOUT_MS):
        job.cancel()
    assert not out.exists() or list(out.iterdir()) == []
    assert tab.export_panel.export_button.isEnabled()


def test_invalid_export_settings_are_refused_with_the_reason(
    qtbot: QtBot, window: MainWindow, class_folder: Path
) -> None:
    tab = window.dataset_tab
    _open(qtbot, tab, class_folder)
    tab.export_panel.out_dir.setText("")
    assert tab.export() is None
    assert "output folder" in _dialog(tab, "errorDialog").text()


def test_a_broken_data_set_shows_an_error_and_the_app_goes_on(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, class_folder: Path
) -> None:
    broken = tmp_path / "broken.lst"
    broken.write_text("0\tnot-a-number\tcat.jpg\n")
    tab = window.dataset_tab
    _open(qtbot, tab, broken)
    dialog = _dialog(tab, "errorDialog")
    assert "line 1" in dialog.text()
    assert "Traceback" in dialog.detailedText()
    assert tab.stack.currentWidget() is tab.empty_state
    dialog.close()
    _open(qtbot, tab, class_folder)
    assert tab.stack.currentIndex() == 1


def test_sample_data_set_from_the_empty_state(qtbot: QtBot, window: MainWindow) -> None:
    tab = window.dataset_tab
    job = tab.generate_sample()
    assert job is not None
    qtbot.waitUntil(lambda: window.state.dataset is not None, timeout=JOB_TIMEOUT_MS * 2)
    assert window.state.dataset.dataset.num_classes == 4
    assert len(window.state.dataset.report.usable_indices) == 400


def test_dropping_a_folder_opens_it(qtbot: QtBot, window: MainWindow, class_folder: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(class_folder))])
    event = QDropEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.state.dataset is not None, timeout=JOB_TIMEOUT_MS)
    assert window.state.dataset.path == class_folder


def test_closing_during_a_job_cancels_it(qtbot: QtBot, tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    job = window.dataset_tab.generate_sample()
    assert job is not None
    window.close()
    assert window.jobs.shutdown(timeout_ms=0), "a job thread outlived the window"


def test_png_export_uses_the_compression_range(
    qtbot: QtBot, window: MainWindow, class_folder: Path, tmp_path: Path
) -> None:
    tab = window.dataset_tab
    _open(qtbot, tab, class_folder)
    tab.export_panel.encoding.setCurrentText(".png")
    assert (tab.export_panel.quality.minimum(), tab.export_panel.quality.maximum()) == (0, 9)
    tab.export_panel.out_dir.setText(str(tmp_path / "png"))
    job = tab.export()
    qtbot.waitSignal(job.finished, timeout=JOB_TIMEOUT_MS).wait()
    assert "Wrote 18 images" in _dialog(tab, "infoDialog").text()


def _export_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _export(qtbot: QtBot, tab: DatasetTab) -> None:
    job = tab.export()
    assert job is not None
    qtbot.waitSignal(job.finished, timeout=JOB_TIMEOUT_MS).wait()


def test_the_output_folder_follows_the_opened_data_set(
    qtbot: QtBot, window: MainWindow, class_folder: Path, tmp_path: Path
) -> None:
    tab = window.dataset_tab
    _open(qtbot, tab, class_folder)
    assert tab.export_panel.out_dir.text() == str(tmp_path / "images-recordio")
    tab.export_panel.out_dir.setText(str(tmp_path / "mine"))
    tab.rescan()
    qtbot.waitUntil(lambda: tab.export_panel.export_button.isEnabled(), timeout=JOB_TIMEOUT_MS)
    assert tab.export_panel.out_dir.text() == str(tmp_path / "mine")  # the same data set

    _export(qtbot, tab)
    other = tmp_path / "other"
    write_image(other / "a" / "1.jpg", (0, 0, 0))
    write_image(other / "b" / "1.jpg", (255, 255, 255))
    _open(qtbot, tab, other)
    assert tab.export_panel.out_dir.text() == str(tmp_path / "other-recordio")
    _open(qtbot, tab, tmp_path / "mine" / "dataset-train.rec")
    assert tab.export_panel.out_dir.text() == str(tmp_path / "mine" / "dataset-train-recordio")


def test_export_asks_before_replacing_an_earlier_export(
    qtbot: QtBot, window: MainWindow, class_folder: Path, tmp_path: Path
) -> None:
    tab = window.dataset_tab
    _open(qtbot, tab, class_folder)
    out = tmp_path / "images-recordio"
    _export(qtbot, tab)
    _dialog(tab, "infoDialog").close()
    first = _export_files(out)

    tab.export_panel.val_percent.setValue(50)
    assert tab.export() is None
    question = _dialog(tab, "confirmReplaceExportDialog")
    assert str(out) in question.text() and "dataset-train.rec" in question.text()
    question.button(QMessageBox.StandardButton.No).click()  # Keep Them
    assert _export_files(out) == first
    assert tab.export_panel.export_button.isEnabled()

    assert tab.export() is None
    with qtbot.waitSignal(tab.dataset_exported, timeout=JOB_TIMEOUT_MS):
        _dialog(tab, "confirmReplaceExportDialog").button(QMessageBox.StandardButton.Yes).click()
    assert "(9 train, 9 val)" in _dialog(tab, "infoDialog").text()
    assert _export_files(out)["dataset-train.rec"] != first["dataset-train.rec"]


def test_an_export_into_the_files_it_reads_is_refused_with_the_reason(
    qtbot: QtBot, window: MainWindow, class_folder: Path, tmp_path: Path
) -> None:
    tab = window.dataset_tab
    _open(qtbot, tab, class_folder)
    _export(qtbot, tab)
    packed = tmp_path / "images-recordio"
    before = _export_files(packed)
    _open(qtbot, tab, packed / "dataset-train.rec")
    tab.export_panel.out_dir.setText(str(packed))

    tab.export()
    _dialog(tab, "confirmReplaceExportDialog").button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(
        lambda: bool(tab.findChildren(QMessageBox, "errorDialog")), timeout=JOB_TIMEOUT_MS
    )
    assert "part of the data set being exported" in _dialog(tab, "errorDialog").text()
    assert _export_files(packed) == before


def test_class_names_under_the_bars_never_overlap() -> None:
    names = [f"class {index}" for index in range(30)]
    width = 7  # pixels per character

    def text_width(text: str) -> int:
        return width * len(text)

    assert bar_labels(names[:4], 100, text_width) == list(enumerate(names[:4]))  # all fit
    shown = bar_labels(names, 20, text_width)  # 30 bars in 600 px: one name of every 4
    assert [position for position, _name in shown] == list(range(2, 30, 4))
    gaps = [b - a for (a, _), (b, _) in zip(shown, shown[1:])]
    assert all(gap * 20 >= text_width("class 29") for gap in gaps)
    (_, long_name), *_ = bar_labels(["a rather long class name"], 400, text_width)
    assert long_name == "a rather long…"


def test_the_classes_and_problems_have_room_for_many_rows(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    root = tmp_path / "many classes"
    for index in range(12):
        write_image(root / f"class {index:02d}" / "IMG_1001.jpg", (index * 20, 90, 90), seed=index)
    tab = window.dataset_tab
    _open(qtbot, tab, root)
    table, tree = tab.classes.table, tab.problems.tree
    qtbot.waitUntil(lambda: table.isVisible() and tree.isVisible())
    visible_rows = table.viewport().height() // table.rowHeight(0)
    visible_lines = tree.viewport().height() // tree.visualItemRect(tree.topLevelItem(0)).height()
    assert visible_rows >= 5 and visible_lines >= 6
