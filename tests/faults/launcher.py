"""Run one ``imgcls`` command with faults injected at its file-system commit points.

    python launcher.py --trace FILE [--kill-at N [--after] | --enospc-at N] -- ARGS...
    python launcher.py --serve

Every call that creates, writes, renames, syncs, copies or deletes a file (``os.replace``,
``os.rename``, ``os.fsync``, ``os.unlink``, ``os.remove``, ``os.open`` and ``open`` for
writing, ``shutil.copyfile``/``copy``/``copy2``/``move``) is a *fault point*; they are
numbered from 1 in call order and each is appended to the trace file as
``N<TAB>function<TAB>path[ -> path]`` before it runs (with the real ``os.write``, so the
trace survives a kill). ``--kill-at N`` sends SIGKILL to this process just before fault
point N runs, or just after it returned with ``--after``; ``--enospc-at N`` makes point N
raise ``OSError(ENOSPC)`` instead of running. Then ``imgcls_desktop.cli.main(ARGS)`` runs
and its exit code is this process's. ``--serve`` runs such jobs one after another, each in
a child forked from a process that has already imported MXNet (see :func:`serve`).

Nothing of the application is replaced: the real calls run, only a kill or an error is
added at one of them.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import errno
import functools
import io
import json
import os
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_real_write = os.write


class _Faults:
    """Numbers the fault points and injects the fault at the chosen one."""

    def __init__(self, trace: str, kill_at: int | None, after: bool, enospc_at: int | None):
        self._trace = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._kill_at, self._after, self._enospc_at = kill_at, after, enospc_at
        self._count = 0
        self._lock = threading.RLock()
        self._busy = threading.local()

    def wrap(self, name: str, real: Callable[..., Any], counts: Callable[..., bool]) -> Any:
        """``real`` with a fault point wherever ``counts(*args, **kwargs)`` says so."""

        @functools.wraps(real)
        def hooked(*args: Any, **kwargs: Any) -> Any:
            if getattr(self._busy, "on", False) or not counts(*args, **kwargs):
                return real(*args, **kwargs)
            number = self._enter(name, args)
            self._busy.on = name.startswith("shutil.")  # no points inside a shutil call
            try:
                result = real(*args, **kwargs)
            finally:
                self._busy.on = False
            if number == self._kill_at and self._after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return hooked

    def _enter(self, name: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            self._count += 1
            number = self._count
            two = name.endswith(("replace", "rename", "copy", "copyfile", "copy2", "move"))
            paths = " -> ".join(_describe(arg) for arg in args[: 2 if two else 1])
            _real_write(self._trace, f"{number}\t{name}\t{paths}\n".encode(errors="replace"))
        if number == self._kill_at and not self._after:
            os.kill(os.getpid(), signal.SIGKILL)
        if number == self._enospc_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), paths)
        return number


def _describe(value: Any) -> str:
    """A path argument as text (a file descriptor as the path it has open, on Linux)."""
    if isinstance(value, int):
        try:
            value = os.readlink(f"/proc/self/fd/{value}")
        except OSError:
            return f"fd {value}"
    return os.fsdecode(value).replace("\t", " ").replace("\n", " ")


def _writes(mode: str) -> bool:
    return any(flag in mode for flag in "wax+")


def install(faults: _Faults) -> None:
    """Put the hooks in place (module attributes: callers look them up at call time)."""
    always = lambda *args, **kwargs: True  # noqa: E731
    for name in ("replace", "rename", "fsync", "unlink", "remove"):
        setattr(os, name, faults.wrap(f"os.{name}", getattr(os, name), always))
    real_open = os.open
    os.open = faults.wrap(
        "os.open", real_open, lambda path, flags, *a, **k: bool(flags & _WRITE_FLAGS)
    )
    opener = faults.wrap(
        "open",
        builtins.open,
        lambda file, mode="r", *a, **k: not isinstance(file, int) and _writes(mode),
    )
    builtins.open = io.open = opener
    for name in ("copyfile", "copy", "copy2", "move"):
        setattr(shutil, name, faults.wrap(f"shutil.{name}", getattr(shutil, name), always))


def run(options: argparse.Namespace, arguments: list[str]) -> int:
    """Install the hooks of ``options`` and run ``imgcls ARGUMENTS``; its exit code."""
    from imgcls_desktop.cli import main as imgcls_main

    install(_Faults(options.trace, options.kill_at, options.after, options.enospc_at))
    return imgcls_main(arguments)


def serve() -> int:
    """Run jobs read from stdin, one JSON object a line, each in a child forked from this
    process once it has imported the application and MXNet (which a child would otherwise
    import again, 1-2 s each time). A job: ``{"options": [launcher options], "arguments":
    [...], "env": {...}, "stdout": file, "stderr": file}``; the reply on stdout is
    ``{"returncode": N}`` (-9 when killed). This process never runs MXNet code itself, so
    the children start as a fresh process would.
    """
    from imgcls_desktop.core.runtime import configure_threads, mxnet

    configure_threads()
    mxnet()
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.flush()
        child = os.fork()
        if child == 0:
            os._exit(_child(job))
        _, status = os.waitpid(child, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
    return 0


def _child(job: dict[str, Any]) -> int:
    """Run one job of :func:`serve` in the forked child; its exit code."""
    os.environ.clear()
    os.environ.update(job["env"])
    for descriptor, name in ((1, job["stdout"]), (2, job["stderr"])):
        opened = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(opened, descriptor)
        os.close(opened)
    code = 1
    try:
        options = _parser().parse_args(job["options"])
        code = run(options, job["arguments"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", required=True, help="file listing every fault point")
    parser.add_argument("--kill-at", type=int, help="SIGKILL at this fault point")
    parser.add_argument("--after", action="store_true", help="kill after the call, not before")
    parser.add_argument("--enospc-at", type=int, help="raise ENOSPC at this fault point")
    return parser


def main() -> int:
    """``--serve``, or the launcher's options, ``--`` and ``imgcls``'s arguments."""
    if sys.argv[1:] == ["--serve"]:
        return serve()
    split = sys.argv.index("--") if "--" in sys.argv else len(sys.argv)
    return run(_parser().parse_args(sys.argv[1:split]), sys.argv[split + 1 :])


if __name__ == "__main__":
    sys.exit(main())
