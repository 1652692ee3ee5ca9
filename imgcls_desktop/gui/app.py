"""``imgcls-desktop [PATH]``: start the application."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from imgcls_desktop import __version__
from imgcls_desktop.core.runtime import configure_threads


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window (and PATH, when given) and run the event loop."""
    configure_threads()
    parser = argparse.ArgumentParser(prog="imgcls-desktop", description=__doc__)
    parser.add_argument(
        "path", nargs="?", help="a data set to open: folder, .lst, manifest or .rec"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args, qt_args = parser.parse_known_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
