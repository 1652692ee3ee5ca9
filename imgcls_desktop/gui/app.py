"""``imgcls-desktop [PATH]``: start the application.

``--install-desktop-entry`` adds it to the desktop's menu for the current user instead
(``--uninstall-desktop-entry`` takes it out again).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from imgcls_desktop import __version__
from imgcls_desktop.core.about import version_line
from imgcls_desktop.core.desktop_entry import (
    DesktopEntryError,
    app_launcher,
    install_desktop_entry,
    uninstall_desktop_entry,
)
from imgcls_desktop.core.runtime import configure_threads


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window (and PATH, when given) and run the event loop."""
    configure_threads()
    parser = argparse.ArgumentParser(prog="imgcls-desktop", description=__doc__)
    parser.add_argument(
        "path", nargs="?", help="a data set to open: folder, .lst, manifest or .rec"
    )
    parser.add_argument("--version", action="version", version=version_line(parser.prog))
    entry = parser.add_mutually_exclusive_group()
    entry.add_argument(
        "--install-desktop-entry",
        action="store_true",
        help="add the app (this install of it) to the desktop's menu for the current user",
    )
    entry.add_argument(
        "--uninstall-desktop-entry",
        action="store_true",
        help="take the app out of the desktop's menu again",
    )
    args, qt_args = parser.parse_known_args(argv)
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        return _change_desktop_entry(install=args.install_desktop_entry)

    from PySide6.QtWidgets import QApplication

    from imgcls_desktop.gui.main_window import MainWindow, app_icon

    app = QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("imgcls-desktop")
    app.setApplicationDisplayName("imgcls-desktop")
    app.setOrganizationName("imgcls-desktop")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())
    window = MainWindow(reopen_last_session=not args.path)
    window.show()
    if args.path:
        window.open_dataset(args.path)
    return app.exec()


def _change_desktop_entry(*, install: bool) -> int:
    """Install or remove the desktop entry and icon; say which files, or why not."""
    try:
        paths = install_desktop_entry(app_launcher()) if install else uninstall_desktop_entry()
    except (DesktopEntryError, OSError) as error:
        print(f"imgcls-desktop: error: {error}", file=sys.stderr)
        return 1
    verb = "installed" if install else "removed"
    for path in paths:
        print(f"{verb} {path}")
    if not paths:
        print("no desktop entry was installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
