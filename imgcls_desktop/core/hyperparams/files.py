"""Reading and writing hyperparameters: JSON files and the command line's ``NAME=VALUE``.

Files hold SageMaker's string form (:meth:`HyperParameters.to_strings`); reading also
accepts native JSON values and a DescribeTrainingJob response.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from imgcls_desktop.core.atomic import atomic_write_json
from imgcls_desktop.core.hyperparams.table import HyperParameters
from imgcls_desktop.core.hyperparams.values import HyperparameterError, Problem


def apply_overrides(hp: HyperParameters, assignments: Iterable[str]) -> HyperParameters:
    """``hp`` with ``NAME=VALUE`` assignments (the CLI's ``--set``) applied; later ones win.

    Raises :class:`HyperparameterError` listing every malformed assignment and bad value.
    """
    changes: dict[str, object] = {}
    problems = []
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            problems.append(Problem(assignment, "expected NAME=VALUE, e.g. epochs=10"))
        else:
            changes[name.strip()] = value
    try:
        result = hp.replace(**changes)
    except HyperparameterError as error:
        problems.extend(error.problems)
    if problems:
        raise HyperparameterError(problems)
    return result


def load_hyperparameters(path: str | os.PathLike[str]) -> HyperParameters:
    """Read a hyperparameters JSON object (SageMaker's string form or native values).

    A DescribeTrainingJob response (an object with a ``HyperParameters`` object) works too.
    Raises :class:`HyperparameterError`, also for an unreadable file or bad JSON.
    """
    source = Path(path)
    try:
        document = json.loads(source.read_bytes().decode("utf-8-sig"))
    except OSError as error:
        raise _file_error(source, f"cannot read it: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise _file_error(source, f"not UTF-8 text (bad byte at {error.start})") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise _file_error(source, f"not valid JSON: {error.msg} at {where}") from None
    if isinstance(document, dict) and isinstance(document.get("HyperParameters"), dict):
        document = document["HyperParameters"]
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), "a number")
        raise _file_error(source, f"expected a JSON object of name: value pairs, found {kind}")
    return HyperParameters.from_mapping(document)


def save_hyperparameters(path: str | os.PathLike[str], hp: HyperParameters) -> None:
    """Write ``hp`` atomically as JSON in SageMaker's string form, plus our own fields when
    set (:meth:`HyperParameters.to_strings`)."""
    atomic_write_json(path, hp.to_strings())


_JSON_KINDS = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}


def _file_error(path: Path, message: str) -> HyperparameterError:
    return HyperparameterError([Problem(str(path), message)])
