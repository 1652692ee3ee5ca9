"""The desktop entry and icon, installed for the current user at freedesktop.org paths."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from imgcls_desktop.core.desktop_entry import (
    data_home,
    entry_files,
    install_desktop_entry,
    uninstall_desktop_entry,
)
from imgcls_desktop.core.resources import desktop_entry_path, icon_path


@pytest.fixture
def share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$XDG_DATA_HOME`` in ``tmp_path``."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    return tmp_path / "share"


def _entry(share: Path) -> dict[str, str]:
    lines = (share / "applications" / "imgcls-desktop.desktop").read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in lines.splitlines() if "=" in line)


def test_the_entry_starts_this_install_and_the_icon_is_the_apps(share: Path) -> None:
    launcher = Path("/opt/imgcls/.venv/bin/imgcls-desktop")
    written = install_desktop_entry(launcher)
    entry_file, icon_file = entry_files(share)
    assert written == [entry_file, icon_file]
    assert icon_file == share / "icons" / "hicolor" / "scalable" / "apps" / "imgcls-desktop.svg"
    assert icon_file.read_bytes() == icon_path().read_bytes()
    entry = _entry(share)
    assert entry["Exec"] == f"{launcher} %f" and entry["TryExec"] == str(launcher)
    shipped = dict(
        line.split("=", 1)
        for line in desktop_entry_path().read_text(encoding="utf-8").splitlines()
        if "=" in line
    )
    assert {**shipped, "Exec": entry["Exec"], "TryExec": entry["TryExec"]} == entry
    assert [path.name for path in entry_file.parent.iterdir()] == [entry_file.name]


@pytest.mark.parametrize(
    ("folder", "exec_value"),
    [
        ("/home/ann/my apps", '"/home/ann/my apps/imgcls-desktop" %f'),
        ("/srv/$HOME/100%", '"/srv/\\\\$HOME/100%%/imgcls-desktop" %f'),
        ('/a"b\\c', '"/a\\\\"b\\\\\\\\c/imgcls-desktop" %f'),
    ],
)
def test_a_program_path_is_quoted_as_the_specification_says(
    share: Path, folder: str, exec_value: str
) -> None:
    """Reserved characters quote the path; inside quotes ``"``, `` ` ``, ``$`` and ``\\`` get a
    backslash, then every backslash is doubled (a string value); ``%`` is written ``%%``."""
    install_desktop_entry(Path(folder) / "imgcls-desktop")
    assert _entry(share)["Exec"] == exec_value


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils")
def test_the_installed_entry_is_valid(share: Path) -> None:
    install_desktop_entry(Path("/home/ann/my apps/imgcls-desktop"))
    entry_file, _icon = entry_files(share)
    result = subprocess.run(
        ["desktop-file-validate", str(entry_file)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout, result.stdout


def test_uninstalling_removes_what_was_installed_and_only_that(share: Path) -> None:
    install_desktop_entry(Path("/usr/bin/imgcls-desktop"))
    other = share / "applications" / "other.desktop"
    other.write_text("[Desktop Entry]\n", encoding="utf-8")
    assert uninstall_desktop_entry() == list(entry_files(share))
    assert [path.name for path in share.rglob("*") if path.is_file()] == ["other.desktop"]
    assert uninstall_desktop_entry() == []


def test_the_data_folder_follows_xdg_data_home_when_it_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg"
    for ignored in ("", "relative/share"):  # the XDG rule: only absolute paths count
        monkeypatch.setenv("XDG_DATA_HOME", ignored)
        assert data_home() == tmp_path / ".local" / "share"
