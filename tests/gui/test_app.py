"""``imgcls-desktop``'s options that answer without opening the window."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from imgcls_desktop import __version__
from imgcls_desktop.gui import app
from imgcls_desktop.gui.app import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith(f"imgcls-desktop {__version__} (mxnet ")


def _program(folder: Path) -> Path:
    """An executable ``imgcls-desktop`` in ``folder``, as an install has."""
    program = folder / "imgcls-desktop"
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text("#!/bin/sh\n", encoding="utf-8")
    program.chmod(0o755)
    return program


def test_the_desktop_entry_names_the_running_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's steps: run the installed ``imgcls-desktop --install-desktop-entry``, later
    ``--uninstall-desktop-entry``."""
    program = _program(tmp_path / "venv" / "bin")
    monkeypatch.setattr(sys, "argv", [str(program)])
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    entry = tmp_path / "share" / "applications" / "imgcls-desktop.desktop"
    icon = tmp_path / "share" / "icons" / "hicolor" / "scalable" / "apps" / "imgcls-desktop.svg"

    assert main(["--install-desktop-entry"]) == 0
    assert capsys.readouterr().out == f"installed {entry}\ninstalled {icon}\n"
    assert f"\nExec={program} %f\n" in entry.read_text(encoding="utf-8")
    assert main(["--uninstall-desktop-entry"]) == 0
    assert capsys.readouterr().out == f"removed {entry}\nremoved {icon}\n"
    assert not entry.exists() and not icon.exists()


def test_the_program_is_found_beside_python_when_started_as_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m imgcls_desktop.gui.app --install-desktop-entry`` names the venv's script."""
    program = _program(tmp_path / "venv" / "bin")
    monkeypatch.setattr(sys, "executable", str(program.with_name("python")))
    monkeypatch.setattr(sys, "argv", [app.__file__])
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert main(["--install-desktop-entry"]) == 0
    entry = tmp_path / "share" / "applications" / "imgcls-desktop.desktop"
    assert f"\nExec={program} %f\n" in entry.read_text(encoding="utf-8")


@pytest.mark.parametrize("cause", ["no program", "data folder is a file"])
def test_a_desktop_entry_that_cannot_be_made_is_a_one_line_error(
    cause: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    share = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(share))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    if cause == "no program":
        monkeypatch.setattr(sys, "argv", [str(tmp_path / "app.py")])
        expected = "cannot find the imgcls-desktop program"
    else:
        monkeypatch.setattr(sys, "argv", [str(_program(tmp_path / "bin"))])
        share.write_text("a file where the data folder should be", encoding="utf-8")
        expected = str(share)
    assert main(["--install-desktop-entry"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("imgcls-desktop: error: ") and error.count("\n") == 1
    assert expected in error
    assert not (share / "applications").exists()
