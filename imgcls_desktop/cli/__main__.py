"""``python -m imgcls_desktop.cli``: the ``imgcls`` command (how launched workers start)."""

from __future__ import annotations

import sys

from imgcls_desktop.cli import main

sys.exit(main())
