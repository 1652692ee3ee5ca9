"""How fast the window comes up: a fresh Python process from its start to the window shown,
and to MXNet loaded in the background (the window is usable before that).

Each run is a new process, as when a user starts the app; the figures are the median and the
worst of ``--runs``. Run: ``python benchmarks/startup.py [--runs 5] [--json FILE]`` (with a
display, or ``QT_QPA_PLATFORM=offscreen``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from report import Figure, add_json_argument, write_figures

_CHILD = """
import json, time
started = time.perf_counter()
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(["imgcls-desktop"])
from imgcls_desktop.gui.main_window import MainWindow
imported = time.perf_counter()
window = MainWindow()
window.show()
app.processEvents()
shown = time.perf_counter()
marks = {"imports": imported - started, "shown": shown - started}

def wait_for_mxnet():
    if window.jobs.running():
        QTimer.singleShot(5, wait_for_mxnet)
        return
    marks["mxnet"] = time.perf_counter() - started
    window.close()
    app.quit()

QTimer.singleShot(0, wait_for_mxnet)
app.exec()
print(json.dumps(marks))
"""


def one_start(home: str) -> dict[str, float]:
    """Start the window in a new process; the seconds to each mark, Python's start included."""
    began = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "IMGCLS_HOME": home},
    )
    total = time.perf_counter() - began
    marks = json.loads(output.stdout.strip().splitlines()[-1])
    python = total - marks["mxnet"]  # the interpreter's start and exit (an upper bound)
    return {name: seconds + python for name, seconds in marks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        runs = [one_start(home) for _ in range(args.runs)]
    print(f"{args.runs} starts of a fresh process (seconds from the process start)")
    figures = []
    for name, label in (
        ("imports", "Qt and the app imported"),
        ("shown", "window shown"),
        ("mxnet", "MXNet loaded (background)"),
    ):
        values = [run[name] for run in runs]
        print(f"{label:<28} median {statistics.median(values):5.2f}   worst {max(values):5.2f}")
        figures.append(Figure(f"{label}, median", statistics.median(values), "s"))
    write_figures(args.json, figures)


if __name__ == "__main__":
    main()
