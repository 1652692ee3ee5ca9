"""File names that are not valid UTF-8, and a child process killed at a chosen step.

``caf\\xe9.jpg`` (Latin-1 bytes) is common on old disks and archives; Python hands it over
as ``caf\\udce9.jpg`` (surrogate escapes).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from imgcls_desktop.core.file_names import PATH_TEXT_ERRORS

UNDECODABLE_NAME = os.fsdecode(b"caf\xe9.jpg")


def undecodable_path(folder: Path, name: str = UNDECODABLE_NAME) -> Path:
    """``folder/caf\\xe9.jpg``; the test is skipped where the file system refuses such names."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o666))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses file names that are not UTF-8")
    os.unlink(path)
    return path


def read_record(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV record, file names as the file system has them."""
    with path.open(encoding="utf-8", errors=PATH_TEXT_ERRORS, newline="") as file:
        return list(csv.DictReader(file))


# Runs ``imgcls ARGS`` and SIGKILLs itself just before the Nth call of ``os.FUNCTION``.
_KILLING_LAUNCHER = textwrap.dedent(
    """
    import os, signal, sys
    from imgcls_desktop.cli import main

    function, kill_at, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    real = getattr(os, function)
    calls = 0

    def counted(*positional, **named):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*positional, **named)

    setattr(os, function, counted)
    sys.exit(main(args))
    """
)


def run_cli(args: list[str], **environment: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``imgcls ARGS`` of this checkout in a child process, with extra ``environment``."""
    return _run([*_LAUNCHER, *args], environment)


def run_cli_killed_at(function: str, call: int, args: list[str]) -> int:
    """Run ``imgcls ARGS`` in a child process that kills itself (SIGKILL) just before its
    ``call``-th call of ``os.<function>``; returns the exit status (``-9`` when killed)."""
    return _run(["-c", _KILLING_LAUNCHER, function, str(call), *args], {}).returncode


_LAUNCHER = ["-c", "import sys; from imgcls_desktop.cli import main; sys.exit(main())"]


def _run(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    repository = str(Path(__file__).resolve().parent.parent)
    return subprocess.run(
        [sys.executable, *arguments],
        env={**os.environ, "PYTHONPATH": repository, **environment},
        capture_output=True,
        timeout=300,
    )


def check_nothing_lost(
    originals: dict[Path, bytes], target: Path, record: Path, source: str, destination: str
) -> list[dict[str, str]]:
    """The invariants of an interrupted copy or move into ``target``: the record's header
    once; every file under a final name (hidden temporary files aside) whole and recorded;
    every original still in place or recorded and present. Returns the record's rows."""
    text = record.read_bytes() if record.exists() else b""
    assert text.count(f"{source},".encode()) <= 1  # the header, once
    rows = read_record(record) if text else []
    recorded = {Path(row[destination]): Path(row[source]) for row in rows}
    assert len(recorded) == len(rows)
    placed = [
        path
        for path in target.rglob("*")
        if path.is_file() and not path.name.startswith(".") and path != record
    ]
    for path in placed:
        assert path in recorded, f"{path} is not in {record.name}"
        assert path.read_bytes() == originals[recorded[path]], f"{path} is not whole"
    for original, content in originals.items():
        if not original.exists():
            copies = [path for path, source_path in recorded.items() if source_path == original]
            assert any(path.is_file() and path.read_bytes() == content for path in copies)
    return rows
