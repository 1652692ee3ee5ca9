"""Class ids and class names, shared by the importers.

Label values arrive as text (``.lst``), JSON numbers or strings (manifests) or floats
(``.rec`` headers); :func:`class_id` and :func:`multi_hot_ids` turn any of them into class
ids or refuse them with a reason. Class names may sit beside a data set in ``classes.json``
or ``labels.txt`` (what our export writes); :func:`class_names_for` reads them or falls
back to ``class_0 .. class_{n-1}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from imgcls_desktop.core.dataset.samples import DatasetError

CLASSES_JSON = "classes.json"
LABELS_TXT = "labels.txt"
# Class ids at or above this are refused: a typo such as 1e9 would ask for a billion classes.
MAX_CLASSES = 100_000


def read_text(path: Path, errors: str = "strict") -> str:
    """The text of a UTF-8 file (a byte-order mark is allowed); :class:`DatasetError` if not.

    ``errors``: the decoding error handler (``surrogateescape`` keeps file names that are not
    UTF-8, see :mod:`imgcls_desktop.core.file_names`)."""
    try:
        return path.read_bytes().decode("utf-8-sig", errors)
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"{path} is not UTF-8 text (undecodable byte at position {error.start})"
        ) from None


def class_id(value: object) -> int:
    """A class id from an int, an integral float (``3.0``) or such a number as text.

    Raises :class:`DatasetError` (without a location; callers add it) for anything else.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DatasetError(f"label {quote(value)} is not a number")
    if isinstance(value, int):
        number: int | float = value
    else:
        try:
            number = float(value)
        except ValueError:
            raise DatasetError(f"label {quote(value)} is not a number") from None
        if not math.isfinite(number) or number != int(number):
            raise DatasetError(
                f"label {quote(value)} is not a whole number (class ids are 0, 1, 2...)"
            )
    if number < 0:
        raise DatasetError(f"label {quote(value)} is negative (class ids start at 0)")
    if number >= MAX_CLASSES:
        raise DatasetError(f"label {quote(value)} is too large (at most {MAX_CLASSES - 1})")
    return int(number)


def multi_hot_ids(values: Sequence[object]) -> tuple[int, ...]:
    """The class ids set in a multi-hot vector; every value must be 0 or 1 (``1.0`` is fine)."""
    if len(values) > MAX_CLASSES:
        raise DatasetError(f"multi-hot label has {len(values)} values (at most {MAX_CLASSES})")
    ids = []
    for position, value in enumerate(values):
        flag = None if isinstance(value, bool) else _as_float(value)
        if flag not in (0.0, 1.0):
            raise DatasetError(f"multi-hot value {quote(value)} for class {position} is not 0 or 1")
        if flag == 1.0:
            ids.append(position)
    return tuple(ids)


def default_class_names(count: int) -> list[str]:
    """``class_0 .. class_{count-1}``, for data sets that do not name their classes."""
    return [f"class_{index}" for index in range(count)]


def class_names_for(folder: Path, used: int, *, exact: bool = False) -> list[str]:
    """The class names of a data set in ``folder`` whose labels need ``used`` classes.

    Names come from ``classes.json`` or else ``labels.txt`` in ``folder``; such a file may
    name more classes than the labels use (a split may lack some), never fewer; with
    ``exact`` (multi-hot vectors, whose width is the class count) it must name exactly
    ``used``. Without either file the names are ``class_0 .. class_{used-1}``.
    """
    found = read_class_names_file(folder)
    if found is None:
        return default_class_names(used)
    names, source = found
    if len(names) < used or (exact and len(names) != used):
        raise DatasetError(
            f"{source} names {len(names)} classes but the labels use {used}; "
            f"fix or remove {source.name}"
        )
    return names


def read_class_names_file(folder: Path) -> tuple[list[str], Path] | None:
    """Class names from ``classes.json`` or ``labels.txt`` in ``folder`` and the file read.

    ``classes.json`` holds a JSON list of names in id order (what our export writes); an
    object mapping ids to names (``{"0": "cat"}``) or names to ids (``{"cat": 0}``) is also
    accepted. ``labels.txt`` holds one name per line in id order. None when neither exists.
    """
    json_path = folder / CLASSES_JSON
    if json_path.is_file():
        return _names_from_json(json_path), json_path
    txt_path = folder / LABELS_TXT
    if txt_path.is_file():
        return _names_from_txt(txt_path), txt_path
    return None


def _names_from_json(path: Path) -> list[str]:
    try:
        data = json.loads(read_text(path))
    except (ValueError, RecursionError):
        raise DatasetError(f"{path} is not valid JSON") from None
    if isinstance(data, list):
        names = data
    elif isinstance(data, dict) and data and all(_is_int_text(key) for key in data):
        names = _names_by_id(path, [(int(key), name) for key, name in data.items()])
    elif isinstance(data, dict) and all(_is_int(value) for value in data.values()):
        names = _names_by_id(path, [(value, name) for name, value in data.items()])
    else:
        raise DatasetError(
            f'{path} must hold a JSON list of class names in id order, e.g. ["cat", "dog"]'
        )
    return checked_class_names(names, path)


def _names_by_id(path: Path, pairs: list[tuple[int, object]]) -> list[object]:
    pairs.sort(key=lambda pair: pair[0])
    if [index for index, _name in pairs] != list(range(len(pairs))):
        raise DatasetError(f"{path}: class ids must run from 0 to {len(pairs) - 1}, each used once")
    return [name for _index, name in pairs]


def _names_from_txt(path: Path) -> list[str]:
    lines = [line.strip() for line in read_text(path).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line:
            raise DatasetError(f"{path}, line {number}: blank line (one class name per line)")
    return checked_class_names(lines, path)


def checked_class_names(names: list[object], source: object) -> list[str]:
    """``names`` if they are distinct, non-empty texts; :class:`DatasetError` naming ``source``."""
    if not names:
        raise DatasetError(f"{source} names no classes")
    if len(names) > MAX_CLASSES:
        raise DatasetError(f"{source} names {len(names)} classes (at most {MAX_CLASSES})")
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(f"{source}: class name {quote(name)} is not a non-empty text")
        if name in seen:
            raise DatasetError(f"{source} names the class {name!r} twice")
        seen.add(name)
    return [str(name) for name in names]


def _as_float(value: object) -> float | None:
    if isinstance(value, (int, float, str)):
        try:
            return float(value)
        except (ValueError, OverflowError):
            return None
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int_text(text: str) -> bool:
    return text.isascii() and text.isdigit()


def quote(value: object) -> str:
    """A value as shown in an error message (its repr, cut short when long)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
