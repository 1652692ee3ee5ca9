"""A launched process ends with its launcher, even when the launcher is killed.

The launcher gives each process a pipe as stdin and never writes to it; when the launcher
exits for any reason (SIGKILL included) the pipe closes, and a process that called
:func:`exit_with_launcher` stops itself and everything it started (its process group). Over
ssh the same holds: the remote stdin is sshd's pipe, closed when the local ssh client ends.
"""

from __future__ import annotations

import os
import signal
import threading

LIFELINE_VARIABLE = "IMGCLS_LAUNCHER_LIFELINE"


def _watch() -> None:
    # The file descriptor, not sys.stdin: a daemon thread blocked inside a buffered reader
    # aborts the interpreter at exit ("could not acquire lock for <stdin>").
    while os.read(0, 4096):
        pass
    # Nothing is printed: stdout led to the launcher, and writing there now fails.
    os.killpg(0, signal.SIGKILL)


def exit_with_launcher() -> None:
    """Under the launcher, stop this process group as soon as the launcher is gone.

    Does nothing for a process started otherwise (its stdin may be the user's terminal).
    """
    if os.environ.get(LIFELINE_VARIABLE) == "1":
        threading.Thread(target=_watch, name="launcher lifeline", daemon=True).start()
