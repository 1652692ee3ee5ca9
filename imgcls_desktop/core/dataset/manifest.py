"""SageMaker augmented manifests (JSON Lines, as Ground Truth writes them).

One JSON object per line::

    {"source-ref": "images/cat1.jpg", "class": "0", "class-metadata": {"class-name": "cat"}}

The label attribute (``class`` by default; SageMaker's ``AttributeNames``) holds a class id
as a number or a string, or, for multi-label data, a JSON list (or a string holding one)
in one of SageMaker's two formats: multi-hot (``[1, 0, 1]``, one 0/1 value per class; the
default, as in SageMaker) or class ids (``[0, 2]``, what Ground Truth writes).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from imgcls_desktop.core.dataset.class_names import (
    checked_class_names,
    class_id,
    class_names_for,
    default_class_names,
    multi_hot_ids,
    quote,
    read_text,
)
from imgcls_desktop.core.dataset.samples import Dataset, DatasetError, Sample, SourceKind
from imgcls_desktop.core.file_names import PATH_TEXT_ERRORS

MultiLabelFormat = Literal["multi-hot", "class-id"]
MULTI_LABEL_FORMATS: tuple[MultiLabelFormat, ...] = ("multi-hot", "class-id")

_IMAGE_ATTRIBUTES = ("source-ref", "image-ref")
_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass
class _Labels:
    """What the lines have shown so far about the labels and the class names."""

    multi_label_format: MultiLabelFormat | None
    multi_label: bool | None = None
    width: int | None = None
    names: dict[int, str] = field(default_factory=dict)


def import_manifest(
    path: Path,
    *,
    label_attribute: str = "class",
    multi_label_format: MultiLabelFormat | None = None,
    root: Path | None = None,
) -> Dataset:
    """Read an augmented manifest; relative ``source-ref`` paths are relative to ``root``.

    ``root`` defaults to the manifest's folder; ``file://`` URIs are accepted, ``s3://`` ones
    refused (download the images first). With ``multi_label_format`` None, single labels
    are single-label data and lists are multi-hot; give ``"class-id"`` for Ground Truth's
    lists of class ids. Class names come from ``<attribute>-metadata`` (``class-name``,
    or ``class-map`` as Ground Truth writes for multi-label jobs), else from
    ``classes.json`` / ``labels.txt`` beside the manifest, else ``class_0 ..``.
    """
    if multi_label_format not in (None, *MULTI_LABEL_FORMATS):
        raise ValueError(f"multi_label_format must be one of {MULTI_LABEL_FORMATS}")
    path = Path(os.path.abspath(path))
    root = Path(os.path.abspath(root if root is not None else path.parent))
    state = _Labels(multi_label_format)
    samples = []
    for number, text in enumerate(read_text(path).split("\n"), start=1):
        if not text.strip():
            continue
        try:
            samples.append(_parse_line(text, root, label_attribute, state))
        except DatasetError as error:
            raise DatasetError(f"{path}, line {number}: {error}") from None
    if not samples:
        raise DatasetError(f"{path} lists no images (it is empty)")
    return Dataset(
        class_names=_class_names(path, samples, state),
        samples=samples,
        kind=SourceKind.MANIFEST,
        source=path,
        multi_label=bool(state.multi_label),
        root=root,
    )


def _parse_line(text: str, root: Path, attribute: str, state: _Labels) -> Sample:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise DatasetError("not valid JSON (a manifest has one JSON object per line)") from None
    if not isinstance(record, dict):
        raise DatasetError("not a JSON object (a manifest has one JSON object per line)")
    image = _image_path(record, root)
    if attribute not in record:
        found = ", ".join(quote(key) for key in record) or "none"
        raise DatasetError(
            f"no label attribute {attribute!r} (attributes found: {found}); "
            "choose the attribute that holds the labels"
        )
    labels = _labels(record[attribute], state)
    _collect_names(record.get(f"{attribute}-metadata"), f"{attribute}-metadata", labels, state)
    return Sample(path=image, labels=labels)


def _image_path(record: dict[str, object], root: Path) -> str:
    key = next((key for key in _IMAGE_ATTRIBUTES if key in record), None)
    if key is None:
        raise DatasetError('no "source-ref" attribute giving the image')
    reference = record[key]
    if not isinstance(reference, str) or not reference.strip():
        raise DatasetError(f"{key} {quote(reference)} is not a path")
    scheme = _URI_SCHEME.match(reference)
    if scheme is None:
        return os.path.normpath(os.path.join(root, reference))
    if scheme.group(1).lower() == "s3":
        raise DatasetError(
            f"the image {quote(reference)} is in Amazon S3; download the images first "
            "(e.g. `aws s3 sync s3://bucket/prefix images/`) and make source-ref point "
            "at the local copies (relative paths start at the manifest's folder, or at the "
            "root folder when one is given)"
        )
    if scheme.group(1).lower() != "file":
        raise DatasetError(
            f"the image {quote(reference)} is not a local file; "
            "source-ref must be a local path or a file:// URI"
        )
    try:
        parts = urlsplit(reference)
    except ValueError:
        raise DatasetError(f"{quote(reference)} is not a valid file URI") from None
    if parts.netloc not in ("", "localhost"):
        raise DatasetError(f"the file URI {quote(reference)} names another host")
    if os.name == "nt":
        return os.path.normpath(url2pathname(parts.path))
    # %XX escapes are the name's bytes, UTF-8 or not (url2pathname would replace the others).
    return os.path.normpath(unquote(parts.path, errors=PATH_TEXT_ERRORS))


def _labels(value: object, state: _Labels) -> tuple[int, ...]:
    """The class ids of one line's label value, checked against the earlier lines."""
    values = _as_list(value)
    multi_label = values is not None
    if state.multi_label is None:
        if not multi_label and state.multi_label_format is not None:
            raise DatasetError(
                f"the label {quote(value)} is a single value but a multi-label format "
                f"({state.multi_label_format}) was chosen; multi-label labels are lists"
            )
        state.multi_label = multi_label
    elif multi_label != state.multi_label:
        kind = "a list" if multi_label else "a single value"
        earlier = "lists" if state.multi_label else "single values"
        raise DatasetError(f"the label {quote(value)} is {kind} but earlier labels are {earlier}")
    if values is None:
        return (class_id(value),)
    if state.multi_label_format == "class-id":
        return tuple(sorted({class_id(item) for item in values}))
    if state.width is None:
        state.width = len(values)
    elif len(values) != state.width:
        raise DatasetError(
            f"the multi-hot label {quote(value)} has {len(values)} values where earlier "
            f"labels have {state.width}; if the lists hold class ids, choose the class-id "
            "multi-label format"
        )
    try:
        return multi_hot_ids(values)
    except DatasetError as error:
        raise DatasetError(
            f"{error}; if the lists hold class ids, choose the class-id multi-label format"
        ) from None


def _as_list(value: object) -> list[object] | None:
    """A list label (a JSON array, or a string holding one), or None for a single value."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise DatasetError(f"the label {quote(value)} is not a valid JSON list") from None
    return value if isinstance(value, list) else None


def _collect_names(metadata: object, where: str, labels: tuple[int, ...], state: _Labels) -> None:
    """Record the class names a line's metadata gives (``class-name``, ``class-map``)."""
    if not isinstance(metadata, dict):
        return
    given: list[tuple[int, object]] = []
    if "class-name" in metadata and not state.multi_label:
        given.append((labels[0], metadata["class-name"]))
    class_map = metadata.get("class-map", {})
    if not isinstance(class_map, dict):
        raise DatasetError(f"{where}: class-map is not an object of class id -> name")
    for key, name in class_map.items():
        given.append((class_id(key), name))
    for index, name in given:
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(f"{where}: class name {quote(name)} is not a non-empty text")
        if state.names.setdefault(index, name) != name:
            raise DatasetError(
                f"{where}: class {index} is named {name!r} here but {state.names[index]!r} "
                "on an earlier line"
            )


def _class_names(path: Path, samples: list[Sample], state: _Labels) -> list[str]:
    used = max((label + 1 for sample in samples for label in sample.labels), default=0)
    if state.width is not None:
        used = state.width
    if not state.names:
        if used == 0:
            raise DatasetError(f"{path}: no line has a label, so there are no classes")
        return class_names_for(path.parent, used, exact=state.width is not None)
    count = max(used, max(state.names) + 1)
    if state.width is not None and count > state.width:
        raise DatasetError(
            f"{path}: the metadata names class {count - 1} but the multi-hot labels have "
            f"only {state.width} classes"
        )
    names: list[object] = list(default_class_names(count))
    for index, name in state.names.items():
        names[index] = name
    return checked_class_names(names, f"the metadata in {path}")
