"""The project: the data sets, training data, runs and models the user worked with.

Kept as ``project.json`` in the app's data folder, so the window reopens where the user left
off. Each list holds paths newest first, without repeats, and at most :data:`MAX_ITEMS`.
Reading never fails: a missing or damaged file is an empty project (the damaged file is kept
beside it as ``project.json.damaged`` so nothing is lost).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path

from imgcls_desktop.core.atomic import atomic_write_json
from imgcls_desktop.core.paths import data_dir

PROJECT_FILE = "project.json"
MAX_ITEMS = 10


class ItemKind(Enum):
    """The kinds of paths a project remembers."""

    DATASET = "datasets"
    TRAINING_DATA = "training_data"
    RUN = "runs"
    MODEL = "models"


@dataclass
class Project:
    """Recently used paths of each kind, newest first.

    ``training_data`` entries are ``train`` or ``train|validation`` pairs (what the Training
    tab trained on), so both channels come back together.
    """

    datasets: list[str] = field(default_factory=list)
    training_data: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def remember(self, kind: ItemKind, path: str | Path) -> None:
        """Put ``path`` first in the list of ``kind``."""
        items = getattr(self, kind.value)
        entry = str(path)
        setattr(self, kind.value, [entry, *(item for item in items if item != entry)][:MAX_ITEMS])

    def recent(self, kind: ItemKind) -> list[str]:
        """The paths of ``kind`` that still exist, newest first."""
        return [item for item in getattr(self, kind.value) if _exists(item)]

    def last(self, kind: ItemKind) -> str | None:
        """The newest path of ``kind`` that still exists."""
        items = self.recent(kind)
        return items[0] if items else None

    def remember_run(self, run_dir: Path, train: Path, validation: Path | None) -> None:
        """Put a run first, and the training data it trains on (the window reopens both)."""
        pair = training_pair(str(train), None if validation is None else str(validation))
        self.remember(ItemKind.TRAINING_DATA, pair)
        self.remember(ItemKind.RUN, run_dir)


def training_pair(train: str, validation: str | None) -> str:
    """One ``training_data`` entry for these channels."""
    return f"{train}|{validation}" if validation else train


def split_training_pair(entry: str) -> tuple[str, str | None]:
    """The ``(train, validation)`` channels of a ``training_data`` entry."""
    train, _, validation = entry.partition("|")
    return train, validation or None


def _exists(entry: str) -> bool:
    return all(Path(part).exists() for part in entry.split("|") if part)


def project_file() -> Path:
    """Where the project is kept."""
    return data_dir() / PROJECT_FILE


def load_project(path: Path | None = None) -> Project:
    """The saved project, or an empty one when there is none or it cannot be read."""
    path = path or project_file()
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        known = {spec.name for spec in fields(Project)}
        lists = {
            name: [str(item) for item in items]
            for name, items in values.items()
            if name in known and isinstance(items, list)
        }
        return Project(**lists)
    except FileNotFoundError:
        return Project()
    except (OSError, ValueError, AttributeError, TypeError):
        with contextlib.suppress(OSError):
            path.replace(path.with_name(path.name + ".damaged"))
        return Project()


def save_project(project: Project, path: Path | None = None) -> None:
    """Write the project atomically."""
    path = path or project_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(project))
