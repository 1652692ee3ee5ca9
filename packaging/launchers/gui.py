"""Entry script of the bundle's ``imgcls-desktop`` executable (see ../imgcls-desktop.spec)."""

from __future__ import annotations

import sys

from imgcls_desktop.gui.app import main

sys.exit(main())
