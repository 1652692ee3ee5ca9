"""Terminal output for the command line: one-line errors and a progress bar on a TTY."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class CommandError(Exception):
    """A command cannot go on; the message is printed as one line."""


def print_error(message: str) -> None:
    """Print ``imgcls: error: MESSAGE`` on stderr."""
    print(f"imgcls: error: {message}", file=sys.stderr)


class ProgressBar:
    """A ``progress(done, total)`` callable drawing a bar on stderr, only on a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self._label = label
        self._stream = stream or sys.stderr
        self._width = width
        self._enabled = self._stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        fraction = done / total if total else 1.0
        filled = int(self._width * fraction)
        rate = done / max(now - self._started, 1e-9)
        self._stream.write(
            f"\r{self._label} [{'#' * filled}{'.' * (self._width - filled)}] "
            f"{done}/{total} {rate:.0f}/s"
        )
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()
