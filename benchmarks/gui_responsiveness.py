"""How responsive the window stays: event-loop stalls while training and scrolling, and
how long closing a training window takes.

The tests assert the behaviour (the loop keeps running between training events, training
threads run below the GUI thread, closing stops the run resumably, thumbnails arrive);
how long each takes depends on the machine and its load, so it is measured here:

  (a) training a ResNet-20 on a generated 3-class set (32 px) for ``--epochs`` in the
      window: the longest gap between ticks of a 10 ms timer in the GUI thread;
  (b) closing the window while it trains (the question answered Yes): seconds from the
      answer until the window is closed, the run stopped resumably;
  (c) the thumbnail grid given 10,000 images: milliseconds to set the data set and to
      filter it by class, and the longest event-loop stall while scrolling through it in
      40 jumps, each screen painted.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py [--epochs 3] [--json F]``
(``IMGCLS_HOME`` is pointed at a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from report import Figure, add_json_argument, write_figures

from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.training.run import RunStatus, read_run

TINY = {"num_layers": "20", "image_shape": "3,32,32", "mini_batch_size": "16"}


class GapProbe:
    """The longest gap, in ms, between ticks of a timer in the GUI thread while it runs."""

    def __init__(self, interval_ms: int) -> None:
        self.longest_ms = 0
        self._clock = QElapsedTimer()
        self._timer = QTimer(interval=interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.longest_ms = max(self.longest_ms, self._clock.restart())

    def start(self) -> None:
        self._clock.start()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 600) -> None:
    """Run the event loop until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        QTimer.singleShot(10, loop.quit)
        loop.exec()


def training_figures(data: Path, folder: Path, epochs: int) -> tuple[int, float]:
    """(a) and (b): the longest event-loop gap while training, and the seconds to close."""
    from imgcls_desktop.core.training.callbacks import EpochDone
    from imgcls_desktop.gui.main_window import MainWindow
    from imgcls_desktop.gui.workers import JobHandle

    window = MainWindow()
    window.show()
    tab = window.training_tab
    window.tabs.setCurrentWidget(tab)
    wait_until(lambda: not window.jobs.running())  # MXNet loaded in the background
    state = window.state
    started: list[JobHandle] = []
    window.jobs.job_started.connect(started.append)

    def start_training(epochs: int) -> JobHandle:
        """Train ``data`` with :data:`TINY` for ``epochs``, as a user would: the data, the
        settings loaded from a file, Start (and Start Anyway if the tab asks)."""
        state.set_training_data(data, None)
        wait_until(lambda: state.training_data is not None and state.training_data.summary)
        settings = folder / f"hyperparameters-{epochs}.json"
        settings.write_text(json.dumps({**TINY, "epochs": str(epochs)}), encoding="utf-8")
        tab.load_hyperparameters_from(settings)
        started.clear()
        if tab.start() is None:
            question = window.findChild(QMessageBox, "confirmStartDialog")
            question.button(QMessageBox.StandardButton.Yes).click()
        wait_until(lambda: bool(started))
        return started[-1]

    job = start_training(epochs)
    probe = GapProbe(10)
    finished: list[bool] = []
    job.finished.connect(lambda: finished.append(True))
    probe.start()
    wait_until(lambda: bool(finished))
    probe.stop()

    job = start_training(40)
    run = state.run.path
    epochs_done: list[EpochDone] = []

    def on_event(event: object) -> None:
        if isinstance(event, EpochDone):
            epochs_done.append(event)

    job.event.connect(on_event)
    wait_until(lambda: bool(epochs_done))
    window.close()
    question = window.findChild(QMessageBox, "confirmCloseDialog")
    answered = time.perf_counter()
    question.button(QMessageBox.StandardButton.Yes).click()
    wait_until(lambda: not window.isVisible())
    closing = time.perf_counter() - answered
    assert read_run(run).status == RunStatus.STOPPED, read_run(run).status
    return probe.longest_ms, closing


def thumbnail_figures(data: Path) -> tuple[int, int, int]:
    """(c): set_dataset ms, filter ms and the longest stall while scrolling 10,000 images."""
    from imgcls_desktop.gui.thumbnails import ThumbnailGrid

    dataset = load_dataset(data)
    paths = [sample.path for sample in dataset.samples]
    classes = len(dataset.class_names)
    samples = [Sample(paths[i % len(paths)], (i % classes,)) for i in range(10_000)]
    big = Dataset(dataset.class_names, samples, SourceKind.LST, dataset.source)
    grid = ThumbnailGrid()
    grid.resize(900, 700)
    grid.show()
    view = grid.view()
    bar = view.verticalScrollBar()
    clock = QElapsedTimer()
    clock.start()
    grid.set_dataset(big)
    QCoreApplication.processEvents()
    set_ms = clock.elapsed()
    probe = GapProbe(5)
    probe.start()
    for step in range(1, 41):
        bar.setValue(bar.maximum() * step // 40)
        QCoreApplication.processEvents()
    probe.stop()
    clock.restart()
    grid.set_class_filter(classes - 1)
    QCoreApplication.processEvents()
    filter_ms = clock.elapsed()
    grid.shutdown()
    return set_ms, filter_ms, probe.longest_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    add_json_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["IMGCLS_HOME"] = str(Path(folder) / "home")
        app = QApplication(["imgcls-desktop"])
        data = generate_sample_dataset(Path(folder) / "shapes", classes=3, per_class=24, size=32)
        gap, closing = training_figures(data, Path(folder), args.epochs)
        set_ms, filter_ms, stall = thumbnail_figures(data)
        app.quit()
    print(f"training {args.epochs} epochs: longest event-loop gap {gap} ms (10 ms timer)")
    print(f"closing while training: {closing:.2f} s from 'Yes' to the window closed")
    print(
        f"10,000 thumbnails: set_dataset {set_ms} ms, filter {filter_ms} ms, "
        f"longest stall while scrolling {stall} ms"
    )
    figures = [
        Figure(f"training {args.epochs} epochs: longest event-loop gap", gap, "ms"),
        Figure("closing while training", closing, "s"),
        Figure("10,000 thumbnails: set_dataset", set_ms, "ms"),
        Figure("10,000 thumbnails: filter", filter_ms, "ms"),
        Figure("10,000 thumbnails: longest stall while scrolling", stall, "ms"),
    ]
    write_figures(args.json, figures)


if __name__ == "__main__":
    main()
