"""The thumbnail grid: lazy loading in a thread, cache, class filter, stale results, speed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
import pytest
from conftest import write_image
from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEvent, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QLabel
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.dataset.images import ImageError
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.gui.imaging import bgr_to_qimage, load_qimage
from imgcls_desktop.gui.thumbnail_loader import THUMBNAIL_SIZE, ThumbnailLoader
from imgcls_desktop.gui.thumbnails import ThumbnailGrid, ThumbnailModel

CLASSES = {"blue": (200, 40, 40), "green": (40, 200, 40), "red": (40, 40, 200)}  # BGR
PER_CLASS = 10
DECORATION = Qt.ItemDataRole.DecorationRole
TOOL_TIP = Qt.ItemDataRole.ToolTipRole
TIMEOUT_MS = 30_000  # a loaded machine can hold the loader's thread back for seconds


def make_dataset(root: Path, classes: dict[str, tuple[int, int, int]] = CLASSES) -> Dataset:
    """PER_CLASS images of 40 x 24 pixels per class, alternately PNG and JPEG."""
    samples = []
    for class_id, (name, colour) in enumerate(classes.items()):
        for i in range(PER_CLASS):
            suffix = ".jpg" if i % 2 else ".png"
            path = write_image(root / name / f"{name}_{i}{suffix}", colour, (24, 40), seed=i)
            samples.append(Sample(str(path), (class_id,)))
    return Dataset(list(classes), samples, SourceKind.FOLDER, root, root=root)


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return make_dataset(tmp_path / "images")


@pytest.fixture
def grid(qtbot: QtBot) -> Iterator[ThumbnailGrid]:
    widget = ThumbnailGrid()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()
    assert not widget.loader().is_running()


def decorations(model: ThumbnailModel) -> list[QPixmap]:
    """Every row's decoration (asking for one also requests its thumbnail)."""
    return [model.data(model.index(row), DECORATION) for row in range(model.rowCount())]


def all_arrived(model: ThumbnailModel) -> bool:
    waiting = model.placeholder.cacheKey()
    return all(pixmap.cacheKey() != waiting for pixmap in decorations(model))


def dominant_colour(pixmap: QPixmap | QImage) -> str:
    image = pixmap.toImage() if isinstance(pixmap, QPixmap) else pixmap
    colour = image.pixelColor(image.width() // 2, image.height() // 2)
    channels = {"red": colour.red(), "green": colour.green(), "blue": colour.blue()}
    return max(channels, key=channels.__getitem__)


def count_label(grid: ThumbnailGrid) -> QLabel:
    return next(label for label in grid.findChildren(QLabel) if "image" in label.text())


# imaging


def test_bgr_to_qimage_is_a_deep_copy_in_rgb_order() -> None:
    array = np.zeros((3, 5, 3), np.uint8)
    array[..., 2] = 255  # red, in BGR order
    image = bgr_to_qimage(array)
    array[...] = 0
    assert (image.width(), image.height()) == (5, 3)
    assert image.pixelColor(4, 2).getRgb() == (255, 0, 0, 255)


def test_bgr_to_qimage_refuses_other_arrays() -> None:
    with pytest.raises(ValueError, match="8-bit BGR"):
        bgr_to_qimage(np.zeros((3, 5), np.uint8))


def test_load_qimage_fits_the_longer_side_and_keeps_small_images(tmp_path: Path) -> None:
    big = write_image(tmp_path / "big.jpg", (40, 40, 200), (400, 1000)).read_bytes()
    small = write_image(tmp_path / "small.png", (40, 40, 200), (20, 30)).read_bytes()
    fitted = load_qimage(big, 96)
    assert (fitted.width(), fitted.height()) == (96, 38)
    assert dominant_colour(fitted) == "red"
    assert (load_qimage(small, 96).width(), load_qimage(small, 96).height()) == (30, 20)


def test_load_qimage_raises_image_error_on_bad_bytes() -> None:
    with pytest.raises(ImageError):
        load_qimage(b"not an image at all", 96)


# the loader


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_loader_serves_the_newest_request_first_and_drops_the_oldest(
    qtbot: QtBot, dataset: Dataset, tmp_path: Path
) -> None:
    # Sample 0 is a named pipe: reading it holds the loader until the test writes the image.
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    image_bytes = Path(dataset.samples[0].path).read_bytes()
    dataset.samples[0] = Sample(str(pipe), (0,))
    loader = ThumbnailLoader(max_pending=3)
    arrived: list[int] = []
    loader.loaded.connect(lambda _generation, index, _image: arrived.append(index))
    try:
        loader.set_dataset(dataset)
        assert loader.request(0) == []
        writer = _open_when_read(qtbot, pipe)  # the loader is now busy with sample 0
        dropped = [index for i in range(1, 6) for index in loader.request(i)]
        loader.promote(3)
        with os.fdopen(writer, "wb") as stream:
            stream.write(image_bytes)
        qtbot.waitUntil(lambda: len(arrived) == 4, timeout=TIMEOUT_MS)
    finally:
        assert loader.shutdown()
    assert dropped == [1, 2]
    assert arrived == [0, 3, 5, 4]
    assert loader.request(7) == [7]  # after shutdown nothing is queued


def _open_when_read(qtbot: QtBot, pipe: Path) -> int:
    """Open a named pipe for writing once a reader has it open; returns the descriptor."""
    descriptors: list[int] = []

    def try_open() -> bool:
        try:
            descriptors.append(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody reads it yet
            return False
        return True

    qtbot.waitUntil(try_open, timeout=TIMEOUT_MS)
    os.set_blocking(descriptors[0], True)
    return descriptors[0]


def test_loader_shutdown_is_quick_idempotent_and_leaves_no_thread(
    qtbot: QtBot, dataset: Dataset
) -> None:
    loader = ThumbnailLoader()
    loader.set_dataset(dataset)
    for index in range(len(dataset.samples)):
        loader.request(index)
    assert loader.shutdown()
    assert not loader.is_running()
    assert loader.shutdown()


# the grid


def test_thumbnails_arrive_fitted_and_in_their_colours(
    qtbot: QtBot, grid: ThumbnailGrid, dataset: Dataset
) -> None:
    grid.set_dataset(dataset)
    model = grid.model()
    assert model.rowCount() == 3 * PER_CLASS
    qtbot.waitUntil(lambda: all_arrived(model), timeout=TIMEOUT_MS)
    for row, pixmap in enumerate(decorations(model)):
        # 40 x 24 images are enlarged to fit the box and centred in a transparent square
        assert (pixmap.width(), pixmap.height()) == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
        image = pixmap.toImage()
        opaque = [y for y in range(THUMBNAIL_SIZE) if image.pixelColor(0, y).alpha() == 255]
        assert len(opaque) == THUMBNAIL_SIZE * 24 // 40
        assert abs(opaque[0] - (THUMBNAIL_SIZE - 1 - opaque[-1])) <= 1
        assert dominant_colour(pixmap) == dataset.class_names[dataset.samples[row].label]
    first = model.index(0)
    assert model.data(first, Qt.ItemDataRole.DisplayRole) == "blue_0.png"
    assert model.data(first, TOOL_TIP) == f"{dataset.samples[0].path}\nClass: blue"
    assert model.data(first, ThumbnailModel.SampleIndexRole) == 0


def test_images_inside_a_record_file_arrive(
    qtbot: QtBot, grid: ThumbnailGrid, tmp_path: Path
) -> None:
    mx = mxnet()
    rec = tmp_path / "data.rec"
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / "data.idx"), str(rec), "w")
    for key, colour in enumerate(CLASSES.values()):
        header = mx.recordio.IRHeader(0, float(key), key, 0)
        image = np.full((24, 40, 3), colour, np.uint8)
        writer.write_idx(key, mx.recordio.pack_img(header, image, img_fmt=".png"))
    writer.close()
    samples = [Sample(f"{rec}#{key}", (key,), record=key) for key in range(len(CLASSES))]
    grid.set_dataset(Dataset(list(CLASSES), samples, SourceKind.RECORDIO, rec, record_file=rec))
    model = grid.model()
    qtbot.waitUntil(lambda: all_arrived(model), timeout=TIMEOUT_MS)
    assert [dominant_colour(pixmap) for pixmap in decorations(model)] == list(CLASSES)
    assert model.data(model.index(2), Qt.ItemDataRole.DisplayRole) == "data.rec#2"


def test_the_class_filter_changes_the_rows_and_the_count(
    grid: ThumbnailGrid, dataset: Dataset
) -> None:
    grid.set_dataset(dataset)
    model = grid.model()
    combo = grid.findChild(QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "All classes",
        "blue (10)",
        "green (10)",
        "red (10)",
    ]
    assert count_label(grid).text() == "30 images"

    combo.setCurrentIndex(3)  # as a user would
    assert model.rowCount() == PER_CLASS
    assert grid.class_filter() == 2
    assert {dataset.samples[model.sample_index(row)].label for row in range(PER_CLASS)} == {2}
    assert count_label(grid).text() == "10 of 30 images"

    grid.set_class_filter(1)
    assert combo.currentIndex() == 2
    assert model.sample_index(0) == PER_CLASS
    grid.set_class_filter(None)
    assert model.rowCount() == 3 * PER_CLASS
    assert combo.currentIndex() == 0
    with pytest.raises(ValueError, match="no class"):
        grid.set_class_filter(3)


def test_multi_label_samples_show_under_each_of_their_classes(
    grid: ThumbnailGrid, dataset: Dataset
) -> None:
    path = dataset.samples[0].path
    samples = [Sample(path, (0, 2)), Sample(path, (1,)), Sample(path, ())]
    grid.set_dataset(Dataset(["a", "b", "c"], samples, SourceKind.MANIFEST, Path(path), True))
    model = grid.model()
    grid.set_class_filter(2)
    assert model.rowCount() == 1
    assert model.data(model.index(0), TOOL_TIP).endswith("Classes: a, c")
    grid.set_class_filter(None)
    assert model.data(model.index(2), TOOL_TIP).endswith("Class: none")


def test_no_data_set_shows_nothing(grid: ThumbnailGrid, dataset: Dataset) -> None:
    grid.set_dataset(dataset)
    grid.set_dataset(None)
    assert grid.model().rowCount() == 0
    assert count_label(grid).text() == "0 images"
    assert not grid.findChild(QComboBox).isEnabled()


def test_an_unreadable_file_gets_the_unreadable_placeholder_and_its_reason(
    qtbot: QtBot, grid: ThumbnailGrid, dataset: Dataset, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is no JPEG")
    dataset.samples[1] = Sample(str(tmp_path / "missing.jpg"), (0,))
    dataset.samples[2] = Sample(str(garbage), (0,))
    grid.set_dataset(dataset)
    model = grid.model()
    qtbot.waitUntil(lambda: all_arrived(model), timeout=TIMEOUT_MS)
    unreadable = model.unreadable_placeholder.cacheKey()
    rows = [row for row, pixmap in enumerate(decorations(model)) if pixmap.cacheKey() == unreadable]
    assert rows == [1, 2]
    assert model.data(model.index(1), TOOL_TIP).endswith("Unreadable: No such file or directory")
    assert model.data(model.index(2), TOOL_TIP).endswith(
        "Unreadable: not an image (unknown file signature)"
    )


def test_a_new_data_set_never_shows_thumbnails_of_the_old_one(
    qtbot: QtBot, grid: ThumbnailGrid, tmp_path: Path
) -> None:
    blue = make_dataset(tmp_path / "blue", {"x": (200, 40, 40), "y": (200, 40, 40)})
    red = make_dataset(tmp_path / "red", {"x": (40, 40, 200), "y": (40, 40, 200)})
    model = grid.model()
    blue_generations = []
    for _ in range(3):  # blue requests queued and in flight when the red set replaces them
        grid.set_dataset(blue)
        blue_generations.append(model.generation())
        decorations(model)
        grid.set_dataset(red)
    late = QImage(THUMBNAIL_SIZE, THUMBNAIL_SIZE, QImage.Format.Format_RGB32)
    late.fill(QColor("blue"))
    for generation in blue_generations:  # results for the blue sets, arriving late
        grid.loader().loaded.emit(generation, 0, late)
    qtbot.waitUntil(lambda: all_arrived(model), timeout=TIMEOUT_MS)
    assert grid.shutdown()  # the loader emits nothing more; what it queued is delivered:
    QCoreApplication.processEvents()
    assert {dominant_colour(pixmap) for pixmap in decorations(model)} == {"red"}


def test_enter_and_double_click_emit_the_sample_index(
    qtbot: QtBot, grid: ThumbnailGrid, dataset: Dataset
) -> None:
    grid.set_dataset(dataset)
    grid.set_class_filter(1)
    view = grid.view()
    view.setFocus()
    view.setCurrentIndex(view.model().index(3))
    with qtbot.waitSignal(grid.sample_activated, timeout=1000) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert blocker.args == [PER_CLASS + 3]
    centre = view.visualRect(view.model().index(0)).center()
    # A click first: offscreen, the very first double-click of a process arrives as a press only.
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    with qtbot.waitSignal(grid.sample_activated, timeout=1000) as blocker:
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert blocker.args == [PER_CLASS]


@pytest.mark.parametrize("width", [500, 700, 985, 1200])
def test_the_cells_share_the_width_so_rows_end_at_the_right_edge(
    qtbot: QtBot, grid: ThumbnailGrid, dataset: Dataset, width: int
) -> None:
    grid.set_dataset(dataset)
    grid.resize(width, 500)
    view, model = grid.view(), grid.model()
    qtbot.waitUntil(lambda: view.visualRect(model.index(1)).x() > 0)
    first_row_y = view.visualRect(model.index(0)).y()
    columns = sum(view.visualRect(model.index(row)).y() == first_row_y for row in range(30))
    cell = view.gridSize().width()
    spare = view.viewport().width() - columns * cell
    assert cell >= THUMBNAIL_SIZE + 24
    assert 0 < spare <= columns


def test_every_control_has_a_tool_tip(grid: ThumbnailGrid) -> None:
    assert grid.findChild(QComboBox).toolTip()
    assert grid.view().toolTip()
    assert count_label(grid).toolTip()


class _LoopProbe:
    """Measures the event loop's longest stall with a 5 ms timer, while in a ``with`` block."""

    def __init__(self) -> None:
        self.longest_ms = 0
        self._clock = QElapsedTimer()
        self._last_ms = 0
        self._timer = QTimer(interval=5)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = self._clock.elapsed()
        self.longest_ms = max(self.longest_ms, now - self._last_ms)
        self._last_ms = now

    def __enter__(self) -> _LoopProbe:
        self._clock.start()
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.stop()


def test_ten_thousand_images_stay_smooth(
    qtbot: QtBot, grid: ThumbnailGrid, dataset: Dataset
) -> None:
    paths = [sample.path for sample in dataset.samples]
    samples = [Sample(paths[i % len(paths)], (i % 3,)) for i in range(10_000)]
    big = Dataset(dataset.class_names, samples, SourceKind.LST, dataset.source)
    view, model = grid.view(), grid.model()
    bar = view.verticalScrollBar()
    clock = QElapsedTimer()

    clock.start()
    grid.set_dataset(big)
    QCoreApplication.processEvents()
    set_ms = clock.elapsed()
    with _LoopProbe() as probe:
        for step in range(1, 41):  # scroll through in 40 jumps, painting each screen
            bar.setValue(bar.maximum() * step // 40)
            QCoreApplication.processEvents()  # paints the screen scrolled to
        view.scrollToTop()
        QCoreApplication.processEvents()
        view.scrollToBottom()
        QCoreApplication.processEvents()
    last = model.index(model.rowCount() - 1)
    assert view.viewport().rect().intersects(view.visualRect(last))
    qtbot.waitUntil(lambda: model.data(last, DECORATION).cacheKey() != model.placeholder.cacheKey())
    clock.restart()
    grid.set_class_filter(2)
    QCoreApplication.processEvents()
    filter_ms = clock.elapsed()

    print(
        f"\n10,000 images: set_dataset {set_ms} ms, filter {filter_ms} ms, "
        f"longest event-loop stall while scrolling {probe.longest_ms} ms"
    )
    assert model.rowCount() == sum(1 for sample in samples if sample.labels == (2,))


def test_destroying_the_grid_stops_its_thread(qtbot: QtBot, dataset: Dataset) -> None:
    grid = ThumbnailGrid()
    grid.set_dataset(dataset)
    decorations(grid.model())
    loader = grid.loader()
    assert loader.is_running()
    grid.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not loader.is_running()
