"""The app in the desktop's menu, for the current user (freedesktop.org paths).

:func:`install_desktop_entry` writes the icon to ``icons/hicolor/scalable/apps/`` and the
desktop entry to ``applications/`` under ``$XDG_DATA_HOME`` (``~/.local/share`` when unset),
the entry's ``Exec`` naming the program that runs now by its absolute path, so the menu
starts this very install (a virtual environment, a bundle) whatever the ``PATH`` holds.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from imgcls_desktop.core.atomic import atomic_write_bytes, atomic_write_text
from imgcls_desktop.core.resources import APP_ID, desktop_entry_path, icon_path

# Characters that make the Desktop Entry Specification quote an Exec argument.
_RESERVED = set(" \t\"'\\><~|&;$*?#()`")


class DesktopEntryError(ValueError):
    """The desktop entry cannot be made; the message says why."""


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute (the XDG
    Base Directory rule)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def entry_files(home: Path) -> tuple[Path, Path]:
    """Where the desktop entry and the icon go under the data folder ``home``."""
    return (
        home / "applications" / f"{APP_ID}.desktop",
        home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
    )


def app_launcher() -> Path:
    """The program that starts this install of the app: a bundle's executable, else the
    ``imgcls-desktop`` script that runs now or the one beside this Python."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable)
    for candidate in (Path(sys.argv[0]), Path(sys.executable).with_name(APP_ID)):
        if candidate.name == APP_ID and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.absolute()
    raise DesktopEntryError(
        f"cannot find the {APP_ID} program of this install: run {APP_ID} "
        "--install-desktop-entry as installed (e.g. .venv/bin/imgcls-desktop)"
    )


def install_desktop_entry(launcher: Path, home: Path | None = None) -> list[Path]:
    """Write the desktop entry (``Exec`` and ``TryExec`` naming ``launcher``) and the icon
    under ``home`` (default :func:`data_home`), atomically; the paths written."""
    entry, icon = entry_files(home or data_home())
    text = desktop_entry_path().read_text(encoding="utf-8")
    program = f"TryExec={_string_value(str(launcher))}\nExec={_exec_argument(launcher)}"
    text = re.sub(r"^Exec=\S+", lambda _: program, text, flags=re.MULTILINE)
    for path in (entry, icon):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(icon, icon_path().read_bytes())
    atomic_write_text(entry, text)
    return [entry, icon]


def uninstall_desktop_entry(home: Path | None = None) -> list[Path]:
    """Remove what :func:`install_desktop_entry` wrote under ``home``; the paths removed."""
    removed = []
    for path in entry_files(home or data_home()):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _exec_argument(program: Path) -> str:
    """``program`` as the first argument of an ``Exec`` value: ``%`` doubled, quoted when it
    holds a reserved character, then escaped as a string value (so ``\\`` becomes four)."""
    argument = str(program).replace("%", "%%")
    if any(character in _RESERVED for character in argument):
        argument = '"' + re.sub(r'(["`$\\])', r"\\\1", argument) + '"'
    return _string_value(argument)


def _string_value(text: str) -> str:
    """``text`` escaped as a desktop entry's string value (one line)."""
    if "\n" in text or "\r" in text:
        raise DesktopEntryError(f"a desktop entry cannot hold a line break: {text!r}")
    return text.replace("\\", "\\\\")
