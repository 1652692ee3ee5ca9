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
- Messages and tables: :func:`display_path`, undecodable bytes shown as ``\\xe9``; the
  command line's output streams do the same (:func:`show_file_names_on`).
"""

from __future__ import annotations

import codecs
import json
import os
import re
import sys
from typing import IO

# The error handler that turns a decoded file name back into its bytes (and back again).
PATH_TEXT_ERRORS = sys.getfilesystemencodeerrors()
_SURROGATE = re.compile("[\ud800-\udfff]")
_DISPLAY_ERRORS = "imgcls-show-file-names"


def show_file_names_on(stream: IO[str]) -> None:
    """Make a text stream (``sys.stdout``, ``sys.stderr``) that would fail on a file name's
    bytes that are not UTF-8, or show them as ``\\udcNN``, print them as ``\\xNN`` instead
    (a stream that writes them as they are, as stdout does under the C locale, is left so);
    other text is unchanged."""
    errors = getattr(stream, "errors", None)
    if errors not in ("strict", "backslashreplace") or not hasattr(stream, "reconfigure"):
        return
    codecs.register_error(_DISPLAY_ERRORS, _display_undecodable)
    stream.reconfigure(errors=_DISPLAY_ERRORS)


def _display_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    shown = "".join(
        f"\\x{ord(c) - 0xDC00:02x}"
        if 0xDC80 <= ord(c) <= 0xDCFF
        else c.encode("ascii", "backslashreplace").decode("ascii")
        for c in error.object[error.start : error.end]
    )
    return shown, error.end


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as printable text: bytes that are not UTF-8 shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def json_text(obj: object, *, indent: int | None = None) -> str:
    """``obj`` as JSON (UTF-8 text as it is), with surrogate escapes of undecodable file names
    written as ``\\udcNN`` escapes, so the text encodes as UTF-8 and reads back unchanged."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
