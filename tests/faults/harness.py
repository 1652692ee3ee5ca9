"""Running ``imgcls`` under the fault launcher, choosing fault points, and counting them.

A job is first run without a fault: its trace lists every fault point (see
``launcher.py``). The tests then kill it at a deterministic sample of those points
(:func:`sample_points`), check the invariants (``invariants.py``) and run the job again.
:data:`TALLY` counts the faults injected and the invariants checked, for the summary line
``conftest.py`` prints at the end of the session.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

LAUNCHER = Path(__file__).with_name("launcher.py")
REPOSITORY = Path(__file__).resolve().parents[2]
TRACEBACK = "Traceback (most recent call last)"


@dataclass
class Tally:
    """What the suite did: faults injected by kind, invariants checked, violations found."""

    faults: Counter[str] = field(default_factory=Counter)
    invariants: int = 0
    violations: int = 0

    def summary(self) -> str:
        """One line for the end of the test session."""
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.faults.items()))
        return (
            f"fault injection: {sum(self.faults.values())} fault points tried ({kinds or 'none'}), "
            f"{self.invariants} invariant checks, {self.violations} violations"
        )


TALLY = Tally()
#: The app's folders for jobs run outside a test (set by ``conftest.py``'s fixture).
SESSION_HOME: list[Path] = []


@dataclass(frozen=True)
class FaultPoint:
    """One call the launcher counted: its number, the function and the path(s) it got."""

    number: int
    function: str
    paths: str

    def describe(self, after: bool | None = None) -> str:
        """``#17 before os.replace(a -> b)`` (paths shortened to their last two parts)."""
        short = " -> ".join("/".join(Path(p).parts[-2:]) for p in self.paths.split(" -> ") if p)
        side = "" if after is None else (" after" if after else " before")
        return f"#{self.number}{side} {self.function}({short})"


@dataclass
class Outcome:
    """How one launcher run ended: exit code (-9 when killed), output and fault points."""

    returncode: int
    stdout: str
    stderr: str
    trace: list[FaultPoint]

    def describe(self, point: FaultPoint, after: bool) -> str:
        """``point`` (found by the counting run) as this run met it, with its own paths."""
        met = next((p for p in self.trace if p.number == point.number), point)
        return met.describe(after)

    @property
    def killed(self) -> bool:
        """Whether the injected SIGKILL ended it."""
        return self.returncode == -signal.SIGKILL


def environment() -> dict[str, str]:
    """This process's environment with the repository first on ``PYTHONPATH`` and the app's
    folders in ``IMGCLS_HOME``: the test's (set by an autouse fixture), else the session's
    (for jobs run by module fixtures, before the test's is set)."""
    env = dict(os.environ)
    env.setdefault("IMGCLS_HOME", str(SESSION_HOME[0]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")]))
    return env


def launcher_command(
    args: Sequence[str],
    trace: Path,
    *,
    kill_at: int | None = None,
    after: bool = False,
    enospc_at: int | None = None,
) -> list[str]:
    """The command line that runs ``imgcls ARGS`` under the launcher."""
    command = [sys.executable, str(LAUNCHER), "--trace", str(trace)]
    if kill_at is not None:
        command += ["--kill-at", str(kill_at)] + (["--after"] if after else [])
    if enospc_at is not None:
        command += ["--enospc-at", str(enospc_at)]
    return [*command, "--", *map(str, args)]


def run_imgcls(
    args: Sequence[str],
    trace: Path,
    *,
    kill_at: int | None = None,
    after: bool = False,
    enospc_at: int | None = None,
) -> Outcome:
    """Run ``imgcls ARGS`` to its end (or to the injected kill) and read its trace.

    The job runs in a child of the launcher's server (see ``launcher.py --serve``), which
    spares each job the import of MXNet; ``trace``'s folder receives its output."""
    if kill_at is not None:
        TALLY.faults["kill -9"] += 1
    if enospc_at is not None:
        TALLY.faults["ENOSPC"] += 1
    options = launcher_command(args, trace, kill_at=kill_at, after=after, enospc_at=enospc_at)
    stdout, stderr = trace.with_suffix(".out"), trace.with_suffix(".err")
    returncode = _server().run(
        {
            "options": options[2 : options.index("--")],
            "arguments": list(map(str, args)),
            "env": environment(),
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
    )
    return Outcome(
        returncode,
        stdout.read_text(encoding="utf-8", errors="replace"),
        stderr.read_text(encoding="utf-8", errors="replace"),
        read_trace(trace),
    )


class _Server:
    """``launcher.py --serve``: forks a child with MXNet imported for every job."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment(),
        )

    def run(self, job: dict[str, object]) -> int:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(job) + "\n")
        self._process.stdin.flush()
        reply = self._process.stdout.readline()
        if not reply:
            raise RuntimeError("the fault launcher's server ended")
        return int(json.loads(reply)["returncode"])

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=60)


_SERVERS: list[_Server] = []


def _server() -> _Server:
    if not _SERVERS:
        _SERVERS.append(_Server())
    return _SERVERS[0]


def stop_server() -> None:
    """End the launcher's server, if one was started."""
    while _SERVERS:
        _SERVERS.pop().close()


def read_trace(path: Path) -> list[FaultPoint]:
    """The fault points a launcher run listed (up to the kill, when killed)."""
    points = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        number, function, paths = [*line.split("\t"), "", ""][:3]
        points.append(FaultPoint(int(number), function, paths))
    return points


def sample_points(
    trace: Sequence[FaultPoint],
    spread: int,
    focus: Sequence[tuple[str, int, Sequence[bool]]] = (),
) -> list[tuple[FaultPoint, bool]]:
    """A deterministic sample of (fault point, kill after it?) pairs.

    Every point when there are at most ``spread``; else ``spread`` points evenly spaced
    from the first to the last, alternately before and after the call. ``focus`` adds
    chosen points: (regular expression searched in ``"function paths"``, which match
    counting from 1, the sides to try).
    """
    count = len(trace)
    if count <= spread:
        chosen = {(point.number, index % 2 == 1) for index, point in enumerate(trace)}
    else:
        positions = [round(i * (count - 1) / (spread - 1)) for i in range(spread)]
        chosen = {(trace[p].number, index % 2 == 1) for index, p in enumerate(positions)}
    for pattern, occurrence, sides in focus:
        matches = [p for p in trace if re.search(pattern, f"{p.function} {p.paths}")]
        if len(matches) < occurrence:
            raise AssertionError(f"the job has no fault point {pattern!r} #{occurrence}")
        chosen |= {(matches[occurrence - 1].number, after) for after in sides}
    by_number = {point.number: point for point in trace}
    return [(by_number[number], after) for number, after in sorted(chosen)]


def clean_exit(outcome: Outcome) -> str | None:
    """Why a run that was not killed did not end cleanly (a traceback), or None."""
    if outcome.killed:
        return "the process was killed although no kill was asked"
    if TRACEBACK in outcome.stderr:
        return "it printed a traceback:\n" + outcome.stderr[-1500:]
    return None


def enospc_points(trace: Sequence[FaultPoint], count: int) -> list[FaultPoint]:
    """``count`` points evenly spread over the ones that write data (where a full disk
    shows: opening for writing, syncing, copying), first and last included."""
    writes = [p for p in trace if p.function in ("open", "os.open", "os.fsync")]
    writes += [p for p in trace if p.function.startswith("shutil.")]
    writes.sort(key=lambda point: point.number)
    if len(writes) <= count:
        return writes
    return [writes[round(i * (len(writes) - 1) / (count - 1))] for i in range(count)]


_SMALL_DISK_SCRIPT = (
    'size=$1 mount_point=$2 keep=$3; shift 3; mount -t tmpfs -o "size=$size" tmpfs '
    '"$mount_point" || exit 97; "$@"; code=$?; cp -a "$mount_point"/. "$keep"/; exit $code'
)


def _on_small_disk(size: str, mount_point: Path, keep: Path, command: Sequence[str]) -> list[str]:
    """``command`` run with a ``size`` tmpfs mounted on ``mount_point`` (in a user and mount
    namespace of its own, so no root is needed and the mount goes with the process); what
    it left there is copied into ``keep``."""
    return [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        _SMALL_DISK_SCRIPT,
        "sh",
        size,
        str(mount_point),
        str(keep),
        *command,
    ]


def small_disk_available(folder: Path) -> bool:
    """Whether this system lets a process mount a small tmpfs of its own (``unshare``)."""
    mount_point = folder / "probe-mount"
    mount_point.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            _on_small_disk("64k", mount_point, folder, ["true"]),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_on_small_disk(args: Sequence[str], size: str, mount_point: Path, keep: Path) -> Outcome:
    """Run ``imgcls ARGS`` with a real, full-able ``size`` file system on ``mount_point``;
    its files are then in ``keep`` (the mount ends with the process)."""
    TALLY.faults["full disk"] += 1
    keep.mkdir(parents=True, exist_ok=True)
    trace = keep.parent / f"{keep.name}.trace"
    command = _on_small_disk(size, mount_point, keep, launcher_command(args, trace))
    done = subprocess.run(
        command, capture_output=True, text=True, env=environment(), timeout=240, check=False
    )
    return Outcome(done.returncode, done.stdout, done.stderr, read_trace(trace))
