"""File names as the file system has them, in the text files we write.

A name that is not valid UTF-8 (``caf\\xe9.jpg`` from an old disk or archive) reaches Python
as a ``str`` holding surrogate escapes (:func:`os.fsdecode`: the byte ``0xE9`` becomes the
code point ``U+DCE9``). Such a name is kept, never dropped, and written so that reading it
back gives the same path, which opens the same file:

- ``.lst`` and CSV: UTF-8 with the file system's error handler (``surrogateescape`` on
  POSIX), so the line holds the name's own bytes, as the file system and MXNet's C++ readers
  have them. Read them back with :data:`PATH_TEXT_ERRORS`.
- JSON: the escaped code point (``"caf\\udce9.jpg"``); :func:`json.loads` gives the same
  ``str`` back, and :func:`os.fsencode` the original bytes.
- Messages and tables: :func:`display_path`, undecodable bytes shown as ``\\xe9``.
"""

from __future__ import annotations

import json
import os
import re
import sys

# The error handler that turns a decoded file name back into its bytes (and back again).
PATH_TEXT_ERRORS = sys.getfilesystemencodeerrors()
_SURROGATE = re.compile("[\ud800-\udfff]")


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as printable text: bytes that are not UTF-8 shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def json_text(obj: object, *, indent: int | None = None) -> str:
    """``obj`` as JSON (UTF-8 text as it is), with surrogate escapes of undecodable file names
    written as ``\\udcNN`` escapes, so the text encodes as UTF-8 and reads back unchanged."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
