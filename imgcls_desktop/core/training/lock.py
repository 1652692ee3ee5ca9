"""The run folder's lock: one trainer at a time.

A process that trains a run folder (a new run or a resumed one) first creates ``run.lock``
in it with ``O_CREAT | O_EXCL``, so of two starters exactly one wins, and removes it when
it is done. The lock is JSON: the owner's process id, host name, the time it was taken and,
on Linux, the boot id and the process's start time (to tell a reused process id from the
owner).

A second trainer is refused with :class:`RunLockedError`, which names the owner. A lock
whose owner is gone (same host, and the process no longer exists, is a zombie, started at
another time, or the machine rebooted since) is stale: it is taken over, with a note. A
take-over deletes the lock only if it still holds what was read, then creates its own with
``O_EXCL`` again, so of two processes taking over the same stale lock one wins (short of
both reading, comparing and deleting within the same few microseconds).
A lock from another host is never taken over: only the user can know that machine is no
longer training, and the message says which file to delete. Where a process cannot be
checked safely (not POSIX), a lock is never taken over either.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from imgcls_desktop.core.training.run import RunError

LOCK_FILE = "run.lock"
# A lock file that cannot be read yet is younger than this: it is being written right now.
_WRITING_GRACE_SECONDS = 10.0
_ATTEMPTS = 3


@dataclass(frozen=True)
class LockOwner:
    """Who holds a run folder's lock (the contents of ``run.lock``)."""

    pid: int
    host: str
    started: str
    boot_id: str | None = None
    process_start: str | None = None

    @classmethod
    def this_process(cls) -> LockOwner:
        """The owner record of the calling process, now."""
        pid = os.getpid()
        return cls(
            pid=pid,
            host=socket.gethostname(),
            started=datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
            boot_id=_boot_id(),
            process_start=_process_start(pid),
        )

    def describe(self) -> str:
        """``process 1234 on host lab-pc since 2026-12-02T11:04:14+00:00``."""
        return f"process {self.pid} on host {self.host} since {self.started}"


class RunLockedError(RunError):
    """Another trainer holds the run folder; ``owner`` says who (None: unreadable lock)."""

    def __init__(self, message: str, owner: LockOwner | None) -> None:
        super().__init__(message)
        self.owner = owner


def lock_path(run_dir: Path) -> Path:
    """The lock file of a run folder."""
    return Path(run_dir) / LOCK_FILE


def lock_owner(run_dir: Path) -> LockOwner | None:
    """The live trainer of ``run_dir`` (or one on another host), or None when it is free
    (no lock, or a stale one) or its lock cannot be read. A lock being written right now
    counts as free."""
    with contextlib.suppress(RunError):
        return _live_owner(Path(run_dir))
    return None


def busy_reason(run_dir: Path) -> str | None:
    """Why a trainer would be refused ``run_dir`` now (who trains it), or None."""
    try:
        owner = _live_owner(Path(run_dir))
    except RunError as error:
        return str(error)
    return None if owner is None else _refusal(Path(run_dir), owner)


def _live_owner(run_dir: Path) -> LockOwner | None:
    found = _read(lock_path(run_dir))
    if found is None or found[1] is None:
        return None
    owner = found[1]
    return owner if _stale_reason(owner) is None else None


class RunLock:
    """The lock of one run folder, taken by :meth:`acquire` and given back by :meth:`release`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = lock_path(run_dir)
        self._text: str | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._text is not None

    def acquire(self) -> str | None:
        """Take the lock (the folder must exist); a note when a stale lock was taken over.

        Raises :class:`RunLockedError` naming the owner when another trainer holds it.
        """
        if self.held:
            raise RunLockedError(f"{self.run_dir} is already being trained by this process", None)
        note = None
        for _attempt in range(_ATTEMPTS):
            if self._create():
                return note
            found = _read(self.path)
            if found is None:  # released meanwhile: try again
                continue
            text, owner = found
            reason = _unreadable_reason(self.path) if owner is None else _stale_reason(owner)
            if reason is None:
                raise RunLockedError(_refusal(self.run_dir, owner), owner)
            if _remove_if_unchanged(self.path, text):
                held = "an unreadable record" if owner is None else owner.describe()
                note = f"took over the lock of {self.run_dir} held by {held}: {reason}"
        raise RunLockedError(
            f"{self.run_dir} could not be locked: other processes keep taking its lock "
            f"({self.path}); try again",
            None,
        )

    def release(self) -> None:
        """Give the lock back (nothing happens when not held); a lock that is no longer
        ours (removed and taken by another process meanwhile) is left alone."""
        text, self._text = self._text, None
        if text is not None:
            with contextlib.suppress(OSError, RunError):  # must not hide why a run ended
                _remove_if_unchanged(self.path, text)

    def _create(self) -> bool:
        """Create the lock file holding our record; False when it exists already."""
        text = json.dumps(asdict(LockOwner.this_process()), indent=2) + "\n"
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(descriptor, text.encode("utf-8"))
            os.fsync(descriptor)
        except BaseException:
            os.close(descriptor)
            self.path.unlink(missing_ok=True)
            raise
        os.close(descriptor)
        self._text = text
        return True


def _refusal(run_dir: Path, owner: LockOwner | None) -> str:
    """The reason a trainer is refused: who holds the lock, and what to do."""
    if owner is None:
        return (
            f"{run_dir} is being locked by another process right now ({lock_path(run_dir)} is "
            "still being written); try again in a moment"
        )
    if owner.host != socket.gethostname():
        return (
            f"{run_dir} is being trained by {owner.describe()}. If that machine is no longer "
            f"training it (it crashed or was switched off), delete {lock_path(run_dir)} and try "
            "again."
        )
    if owner.pid == os.getpid():
        return f"{run_dir} is already being trained by this process ({owner.describe()})"
    return (
        f"{run_dir} is being trained by {owner.describe()}; stop that run first, or wait for "
        "it to end"
    )


def _read(path: Path) -> tuple[str, LockOwner | None] | None:
    """The lock file's text and owner (None: not a lock record); None when there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise RunError(f"cannot read the lock file {path}: {error}") from None
    try:
        values = json.loads(text)
        owner = LockOwner(
            pid=values["pid"],
            host=values["host"],
            started=values["started"],
            boot_id=values.get("boot_id"),
            process_start=values.get("process_start"),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return text, None
    valid = (
        type(owner.pid) is int
        and owner.pid > 0
        and all(isinstance(value, str) for value in (owner.host, owner.started))
        and all(
            value is None or isinstance(value, str)
            for value in (owner.boot_id, owner.process_start)
        )
    )
    return text, owner if valid else None


def _stale_reason(owner: LockOwner) -> str | None:
    """Why ``owner``'s lock is stale, or None when its owner may still be training."""
    if owner.host != socket.gethostname():
        return None
    boot_id = _boot_id()
    if owner.boot_id is not None and boot_id is not None and owner.boot_id != boot_id:
        return "the machine has restarted since"
    if os.name != "posix":  # os.kill(pid, 0) would signal, not probe
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return f"process {owner.pid} no longer exists"
    except PermissionError:
        pass  # it exists, under another user
    if _process_state(owner.pid) in ("Z", "X"):
        return f"process {owner.pid} has ended"
    started = _process_start(owner.pid)
    if owner.process_start is not None and started is not None and started != owner.process_start:
        return f"process {owner.pid} is another program now (its number was reused)"
    return None


def _unreadable_reason(path: Path) -> str | None:
    """Why an unreadable lock file is stale (a crash while writing it), or None when it may
    be being written right now."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return "it could not be read"
    if age < _WRITING_GRACE_SECONDS:
        return None
    return "it could not be read (left by a crash while it was written)"


def _remove_if_unchanged(path: Path, text: str) -> bool:
    """Delete ``path`` if it still holds ``text``; whether it is gone."""
    found = _read(path)
    if found is None:
        return True
    if found[0] != text:
        return False
    path.unlink(missing_ok=True)
    return True


def _boot_id() -> str | None:
    """Linux's id of this boot of the machine; None elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name; None without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 1 :].split()


def _process_state(pid: int) -> str | None:
    """The process's state letter (``Z``: a zombie, ``X``: dead), where /proc tells."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _process_start(pid: int) -> str | None:
    """When the process started (clock ticks after boot), where /proc tells."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None
