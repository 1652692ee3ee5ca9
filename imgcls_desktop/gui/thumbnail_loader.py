"""The thumbnail loader: decodes thumbnails in its own thread, most recent request first,
for :mod:`imgcls_desktop.gui.thumbnails` (the data set grid and the review tables)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap

from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.gui.imaging import load_qimage

THUMBNAIL_SIZE = 96
"""Side of the square box a thumbnail fits in, in pixels."""
MAX_PENDING = 256
"""Requests the loader keeps; older ones (rows scrolled past) are dropped beyond this."""
SHUTDOWN_TIMEOUT_MS = 5000


class ThumbnailLoader(QObject):
    """Decodes thumbnails in its own thread, the most recently requested first.

    Plain method calls from the GUI thread feed it (they only touch a locked queue); results
    come back through signals, each with the generation that :meth:`set_dataset` returned.
    The thread starts at construction and runs until :meth:`shutdown`; ``size`` is the side
    of the square thumbnails it makes.
    """

    loaded = Signal(int, int, QImage)
    """(generation, sample index, thumbnail fitting a ``size`` x ``size`` box)"""
    failed = Signal(int, int, str)
    """(generation, sample index, why the image cannot be shown)"""

    def __init__(self, size: int = THUMBNAIL_SIZE, max_pending: int = MAX_PENDING) -> None:
        super().__init__()  # no parent: the object moves to its own thread
        self.size = size
        self._max_pending = max_pending
        self._condition = threading.Condition()
        self._queue: OrderedDict[int, None] = OrderedDict()
        self._dataset: Dataset | None = None
        self._generation = 0
        self._stopping = False
        self._stopped = False
        self._thread = QThread()
        self._thread.setObjectName("thumbnail-loader")
        self.moveToThread(self._thread)
        self._thread.started.connect(self._run)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown, Qt.ConnectionType.DirectConnection)
        self._thread.start(QThread.Priority.LowPriority)

    def set_dataset(self, dataset: Dataset | None) -> int:
        """Serve this data set from now on, dropping queued requests; returns its generation."""
        with self._condition:
            self._dataset = dataset
            self._generation += 1
            self._queue.clear()
            self._condition.notify()
            return self._generation

    def request(self, index: int) -> list[int]:
        """Queue the sample's thumbnail ahead of earlier requests; returns the requests dropped."""
        with self._condition:
            if self._dataset is None or self._stopping:
                return [index]
            self._queue[index] = None
            self._queue.move_to_end(index)
            dropped = []
            while len(self._queue) > self._max_pending:
                dropped.append(self._queue.popitem(last=False)[0])
            self._condition.notify()
            return dropped

    def promote(self, index: int) -> None:
        """Move a still-queued request ahead of all others (its row is on screen again)."""
        with self._condition:
            if index in self._queue:
                self._queue.move_to_end(index)

    def is_running(self) -> bool:
        """True while the loader's thread runs."""
        return self._thread.isRunning()

    @Slot()
    def shutdown(self) -> bool:
        """Stop the thread and wait for it; True when it ended within the timeout. Final."""
        with self._condition:
            self._stopping = True
            self._queue.clear()
            self._condition.notify()
        if not self._stopped:
            self._thread.quit()
            self._stopped = self._thread.wait(SHUTDOWN_TIMEOUT_MS)
        return self._stopped

    @Slot()
    def _run(self) -> None:
        dataset: Dataset | None = None
        reader: ImageReader | None = None
        try:
            while (job := self._next_job(dataset)) is not None:
                job_dataset, generation, index = job
                if job_dataset is not dataset:  # open the new data set, close the old one now
                    if reader is not None:
                        reader.close()
                    dataset = job_dataset
                    reader = None if dataset is None else ImageReader(dataset)
                if reader is not None and dataset is not None and index is not None:
                    self._load(reader, dataset, generation, index)
        finally:
            if reader is not None:
                reader.close()

    def _next_job(self, current: Dataset | None) -> tuple[Dataset | None, int, int | None] | None:
        """Wait for work: None to stop, else (data set, generation, sample index or None)."""
        with self._condition:
            while not self._stopping and not self._queue and self._dataset is current:
                self._condition.wait()
            if self._stopping:
                return None
            index = self._queue.popitem()[0] if self._queue else None
            return self._dataset, self._generation, index

    def _load(self, reader: ImageReader, dataset: Dataset, generation: int, index: int) -> None:
        try:
            image = _thumbnail(reader.read(dataset.samples[index]), self.size)
        except Exception as error:  # any bad file becomes a placeholder, never a dead loader
            self.failed.emit(generation, index, _reason(error))
        else:
            self.loaded.emit(generation, index, image)


def _thumbnail(data: bytes, size: int) -> QImage:
    """The image fitted (shrunk or enlarged) and centred in a transparent size x size square.

    Square thumbnails keep the file names under them in one line whatever the aspect ratio.
    """
    image = load_qimage(data, size)
    if image.width() < size and image.height() < size:
        image = image.scaled(
            size,
            size,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    square = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    square.fill(Qt.GlobalColor.transparent)
    painter = QPainter(square)
    painter.drawImage((size - image.width()) // 2, (size - image.height()) // 2, image)
    painter.end()
    return square


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def placeholder_pixmap(size: int, unreadable: bool) -> QPixmap:
    """A neutral rounded square; crossed out in red for an image that cannot be read."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor(128, 128, 128, 90), 1))
    painter.setBrush(QColor(128, 128, 128, 40))
    margin = size // 16
    box = pixmap.rect().adjusted(margin, margin, -margin, -margin)
    painter.drawRoundedRect(box, margin, margin)
    if unreadable:
        painter.setPen(QPen(QColor(200, 60, 60), max(2, size // 24)))
        cross = box.adjusted(size // 4, size // 4, -size // 4, -size // 4)
        painter.drawLine(cross.topLeft(), cross.bottomRight())
        painter.drawLine(cross.topRight(), cross.bottomLeft())
    painter.end()
    return pixmap
