"""The wheel stands alone: built from the sources, installed (not editable) into a fresh
virtual environment, it starts the window with its icon, answers ``--version`` and installs
its desktop entry, with no file from the source tree.

Building needs a setuptools that makes wheels (70.1 or later, or an older one with the
``wheel`` package). Where the Python running the tests has one, the module runs offline in
the normal suite (measured on 2 cores: 20 s, 35 s while other jobs kept both busy); where it
has not, pip would fetch setuptools from PyPI into an isolated build (40-80 s, and the
network), so the module is skipped unless ``IMGCLS_TEST_WHEEL=1`` asks for it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from imgcls_desktop import __version__

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300


def _can_build_without_isolation() -> bool:
    """Whether this Python has a build backend for the wheel (setuptools 70.1 or later
    builds wheels alone; before, it needs the ``wheel`` package)."""
    try:
        setuptools = tuple(int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    with_wheel = importlib.util.find_spec("wheel") is not None
    return setuptools >= (70, 1) or (setuptools >= (68, 0) and with_wheel)


pytestmark = pytest.mark.skipif(
    not _can_build_without_isolation() and os.environ.get("IMGCLS_TEST_WHEEL") != "1",
    reason="this Python has no setuptools that builds wheels offline; IMGCLS_TEST_WHEEL=1 "
    "builds with pip's isolated build (downloads setuptools)",
)

# Run by the installed app's Python: the window offscreen, its icon, the About box's text.
WINDOW_SCRIPT = """
from PySide6.QtWidgets import QApplication
import imgcls_desktop
from imgcls_desktop.core.resources import icon_path
from imgcls_desktop.gui.main_window import MainWindow, app_icon

app = QApplication(["imgcls-desktop"])
app.setWindowIcon(app_icon())
window = MainWindow()
window.show()
window.show_about()
print(imgcls_desktop.__file__)
print(icon_path())
print(window.windowIcon().isNull(), window.about_box.iconPixmap().isNull())
print(window.about_box.text())
window.close()
"""


def _run(command: list[str | Path], **options: object) -> str:
    """Run ``command`` without PYTHONPATH (unless ``env`` says otherwise): a source tree on
    it, with an ``.egg-info`` from an editable install, makes pip skip the wheel as installed."""
    options.setdefault("env", _without_pythonpath())
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        **options,  # type: ignore[arg-type]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; its ``bin`` folder."""
    work = tmp_path_factory.mktemp("wheel")
    # Build from a copy of what the wheel is made of, so the build's leftovers (build/,
    # *.egg-info) stay out of the source tree and nothing else of the tree can sneak in.
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source)
    shutil.copytree(
        ROOT / "imgcls_desktop",
        source / "imgcls_desktop",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    isolation = ["--no-build-isolation"] if _can_build_without_isolation() else []
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "wheel", "--no-deps", *isolation, "--wheel-dir", work / "dist", source])
    (wheel,) = (work / "dist").glob("imgcls_desktop-*.whl")

    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel])
    # The dependencies (MXNet, Qt, numpy... over a gigabyte) are borrowed from the Python
    # running the tests instead of being installed again: a .pth file puts its site folders
    # on the path *after* the new environment's own, so the wheel's imgcls_desktop wins over
    # an editable install there (whose own .pth files are not read: only site folders'
    # are, not folders a .pth file adds).
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    borrowed = [
        entry for entry in sys.path if Path(entry).name in ("site-packages", "dist-packages")
    ]
    (Path(purelib.strip()) / "borrowed-dependencies.pth").write_text(
        "\n".join(dict.fromkeys(borrowed)) + "\n", encoding="utf-8"
    )
    return venv / "bin"


def _without_pythonpath() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH to the sources, the app's folders
    in ``tmp_path``, no display."""
    environment = _without_pythonpath()
    environment.update(IMGCLS_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen", **extra)
    return environment


def test_the_installed_wheel_starts_the_window_with_its_icon(
    installed: Path, tmp_path: Path
) -> None:
    output = _run(
        [installed / "python", "-c", WINDOW_SCRIPT], cwd=tmp_path, env=_environment(tmp_path)
    )
    package, icon, icons_null, about = output.split("\n", 3)
    venv = installed.parent
    assert Path(package).is_relative_to(venv) and Path(icon).is_relative_to(venv)
    assert icons_null == "False False"
    assert f"imgcls-desktop {__version__}" in about
    assert "MXNet 1.9.1" in about and str(tmp_path / "home" / "data") in about


def test_the_installed_commands_tell_their_versions(installed: Path, tmp_path: Path) -> None:
    environment = _environment(tmp_path)
    for program in ("imgcls", "imgcls-desktop"):
        answer = _run([installed / program, "--version"], cwd=tmp_path, env=environment)
        assert answer.startswith(f"{program} {__version__} (mxnet 1.9.1, Python ")


def test_the_installed_app_adds_itself_to_the_desktop_menu(installed: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    environment = _environment(tmp_path, XDG_DATA_HOME=str(share))
    _run([installed / "imgcls-desktop", "--install-desktop-entry"], cwd=tmp_path, env=environment)
    entry = (share / "applications" / "imgcls-desktop.desktop").read_text(encoding="utf-8")
    assert f"Exec={installed / 'imgcls-desktop'} %f\n" in entry
    icon = share / "icons" / "hicolor" / "scalable" / "apps" / "imgcls-desktop.svg"
    assert (
        icon.read_bytes()
        == (ROOT / "imgcls_desktop" / "resources" / "icons" / icon.name).read_bytes()
    )
