"""Entry script of the bundle's ``imgcls`` executable (see ../imgcls-desktop.spec)."""

from __future__ import annotations

import sys

from imgcls_desktop.cli import main

sys.exit(main())
