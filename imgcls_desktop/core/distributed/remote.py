"""Before an ssh launch: check that every host has the app and the data.

One ``ssh HOST 'test -e P1 || echo P1; test -e P2 || echo P2'`` per host: the paths it
prints are missing there; ssh's own failure (exit 255) means the host cannot be reached.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

CHECK_TIMEOUT = 60.0


class HostsNotReady(RuntimeError):
    """Some host lacks the app or the data, or cannot be reached; the message is one line."""


@dataclass(frozen=True)
class HostCheck:
    """What one host lacks (``missing``), or why it could not be checked (``error``)."""

    host: str
    missing: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ready(self) -> bool:
        """Whether the host has every path."""
        return not self.missing and self.error is None

    def describe(self) -> str:
        """``host lacks A, B`` or ``host: ssh failed ...``."""
        if self.error is not None:
            return f"{self.host}: {self.error}"
        return f"{self.host} lacks {', '.join(self.missing)}"


def check_line(paths: Sequence[str]) -> str:
    """The shell line run on each host: prints each missing path on a line of its own."""
    return "; ".join(f"test -e {shlex.quote(p)} || echo {shlex.quote(p)}" for p in paths)


def check_host(host: str, paths: Sequence[str], ssh: str = "ssh") -> HostCheck:
    """Check one host over ssh (batch mode: it never asks for a password)."""
    argv = [ssh, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", host, check_line(paths)]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return HostCheck(host, error=f"no answer over ssh in {CHECK_TIMEOUT:.0f} s")
    except OSError as error:
        return HostCheck(host, error=f"cannot run {ssh}: {error.strerror}")
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        last = f": {said[-1]}" if said else ""
        return HostCheck(host, error=f"ssh failed (exit {done.returncode}){last}")
    wanted = set(paths)
    return HostCheck(host, tuple(line for line in done.stdout.splitlines() if line in wanted))


def ensure_hosts_ready(hosts: Sequence[str], paths: Sequence[str], ssh: str = "ssh") -> None:
    """Raise :class:`HostsNotReady` naming each host that lacks a path or cannot be reached."""
    problems = [check for check in (check_host(h, paths, ssh) for h in hosts) if not check.ready]
    if problems:
        raise HostsNotReady("; ".join(check.describe() for check in problems))
