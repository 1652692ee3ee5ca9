"""What must hold in the user's folders after a job was killed, ran out of space or lost its
output pipe, and after it was run again.

Each check adds its violations to a :class:`Checks` (one per fault point) instead of
raising, so a test lists every violation at every point it tried, then fails once with all
of them. Files are read as the user's tools would: JSON with ``json``, images with OpenCV,
``.params`` with MXNet, RecordIO byte by byte, models with the app's own ``open_model``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import struct
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from .harness import TALLY, TRACEBACK, Outcome

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_RECORD_MAGIC = 0xCED7230A
_LENGTH_MASK = (1 << 29) - 1
_CHECKPOINT = re.compile(r"image-classification-(\d{4,})\.params")
T = TypeVar("T")


class Checks:
    """The invariant checks made at one fault point, and the ones that failed."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.violations: list[str] = []

    def that(self, holds: bool, message: str) -> bool:
        """Count one invariant; note ``message`` when it does not hold."""
        TALLY.invariants += 1
        if not holds and f"{self.where}: {message}" not in self.violations:
            TALLY.violations += 1
            self.violations.append(f"{self.where}: {message}")
        return holds

    def same(self, got: dict[str, Any], expected: dict[str, Any], what: str) -> bool:
        """``got`` equals ``expected``; the message names the keys that differ."""
        differences = [
            f"{key}: {_short(got.get(key))} instead of {_short(expected.get(key))}"
            for key in sorted(set(got) | set(expected))
            if got.get(key) != expected.get(key)
        ]
        return self.that(not differences, f"{what}: " + "; ".join(differences))

    def runs(self, what: str, action: Callable[[], T]) -> T | None:
        """``action()``'s result; an exception is a violation (``what`` failed: why)."""
        try:
            result = action()
        except Exception as error:
            self.that(False, f"{what} failed: {type(error).__name__}: {error}")
            return None
        self.that(True, what)
        return result


def _short(value: Any) -> str:
    """A value for a message: a long list as its length and a few items."""
    if isinstance(value, list) and len(value) > 6:
        return f"{len(value)} items {value[:3]}..."
    if isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value):
        return value[:10]  # a SHA-256
    return repr(value)


def report(violations: list[str]) -> str:
    """The assertion message listing every violation."""
    return f"{len(violations)} invariant violation(s):\n" + "\n".join(violations)


def check_clear_failure(outcome: Outcome, checks: Checks, reason: str) -> None:
    """A job that met an error exits by itself without a traceback; when it failed, its
    message says ``reason`` (a job may also go past the error, e.g. to another temporary
    folder, and succeed: the checks of its files then judge it)."""
    checks.that(not outcome.killed, "the process was killed")
    if outcome.returncode != 0:
        checks.that(
            reason in outcome.stderr,
            f"it failed ({outcome.returncode}) without saying {reason!r}: "
            f"{outcome.stderr[-400:]!r}",
        )
    for noise in (TRACEBACK, "Exception ignored"):
        checks.that(noise not in outcome.stderr, f"stderr has {noise!r}: {outcome.stderr[-1200:]}")


# --- files --------------------------------------------------------------------------------


def is_temporary(path: Path) -> bool:
    """A name a writer uses before the rename into place (hidden, ``.tmp``, ``.partial``)."""
    return path.name.startswith(".") or path.suffix in (".tmp", ".partial")


def final_files(folder: Path) -> Iterator[Path]:
    """The files under ``folder`` under their final names (temporary ones left out)."""
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not is_temporary(path):
                yield path


def temporaries(folder: Path) -> list[str]:
    """Temporary files left under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if is_temporary(p))


def sha(path: Path) -> str:
    """The file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every final file under ``folder``."""
    return {str(p.relative_to(folder)): sha(p) for p in final_files(folder)}


def check_images_decode(folder: Path, checks: Checks) -> None:
    """Every image file under a final name in ``folder`` is whole: OpenCV decodes it."""
    broken = []
    for path in final_files(folder):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
            if data.size == 0 or cv2.imdecode(data, cv2.IMREAD_UNCHANGED) is None:
                broken.append(f"{path.relative_to(folder)} ({data.size} bytes)")
    checks.that(not broken, f"not whole images under their final names: {broken}")


def check_json_files(folder: Path, checks: Checks) -> None:
    """Every ``.json`` file under a final name in ``folder`` parses."""
    for path in final_files(folder):
        if path.suffix == ".json":
            checks.runs(f"reading {path.name} as JSON", lambda p=path: json.loads(p.read_text()))


# --- RecordIO -----------------------------------------------------------------------------


def record_offsets(rec: Path) -> tuple[list[int], bytes | None]:
    """The offsets of the records of a ``.rec`` and the first record's payload; raises
    ValueError when the file does not end on a whole record."""
    data = rec.read_bytes()
    offsets, position, first = [], 0, None
    while position < len(data):
        if len(data) - position < 8:
            raise ValueError(f"{len(data) - position} stray bytes at offset {position}")
        magic, word = struct.unpack_from("<II", data, position)
        if magic != _RECORD_MAGIC:
            raise ValueError(f"no record magic at offset {position}")
        length = word & _LENGTH_MASK
        end = position + 8 + length
        if end > len(data):
            raise ValueError(f"the record at offset {position} is cut short")
        if word >> 29 in (0, 1):
            offsets.append(position)
            if first is None:
                first = data[position + 8 : end]
        position = end + (-length % 4)
    return offsets, first


def check_recordio(folder: Path, checks: Checks) -> dict[str, int]:
    """Every ``.rec``/``.idx``/``.lst`` under a final name is whole and agrees with the
    others of its split, and ``dataset.json`` (written last) names only complete splits.
    Returns records per split stem."""
    counts: dict[str, int] = {}
    for rec in sorted(p for p in final_files(folder) if p.suffix == ".rec"):
        found = checks.runs(f"reading {rec.name} record by record", lambda r=rec: record_offsets(r))
        if found is None:
            continue
        offsets, first = found
        counts[rec.stem] = len(offsets)
        if first is not None:  # IRHeader (24 bytes, + label vector when flag > 0), image
            flag = struct.unpack_from("<I", first)[0]
            image = cv2.imdecode(np.frombuffer(first[24 + 4 * flag :], np.uint8), 1)
            checks.that(image is not None, f"the first record of {rec.name} is not an image")
        idx = rec.with_suffix(".idx")
        if idx.is_file():
            rows = [line.split("\t") for line in idx.read_text().splitlines()]
            checks.that(
                sorted(int(offset) for _key, offset in rows) == offsets,
                f"{idx.name} does not point at the {len(offsets)} records of {rec.name}",
            )
        lst = rec.with_suffix(".lst")
        if lst.is_file():
            lines = lst.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
            checks.that(
                len(lines) == len(offsets),
                f"{lst.name} has {len(lines)} lines for {len(offsets)} records in {rec.name}",
            )
    for path in final_files(folder):
        if path.suffix in (".idx", ".lst") and not path.with_suffix(".rec").is_file():
            checks.that(False, f"{path.name} is there without its .rec")
    description = folder / "dataset.json"
    if description.is_file():
        written = checks.runs("reading dataset.json", lambda: json.loads(description.read_text()))
        name = (written or {}).get("name", "dataset")
        for split, count in (written or {}).get("counts", {}).items():
            checks.that(
                counts.get(f"{name}-{split}") == count,
                f"dataset.json says {count} {split} images; {name}-{split}.rec holds "
                f"{counts.get(f'{name}-{split}')}",
            )
    return counts


# --- models and runs ----------------------------------------------------------------------


def check_model_predicts(
    path: Path, probe_image: Path, checks: Checks, *, epoch: int | None = None
) -> None:
    """The app opens the model at ``path`` (of ``epoch`` when given) and predicts."""
    from imgcls_desktop.core.inference import Predictor
    from imgcls_desktop.core.models import open_model

    model = checks.runs(f"opening the model {path.name}", lambda: open_model(path))
    if model is None:
        return
    if epoch is not None:
        checks.that(
            model.epoch == epoch,
            f"opening {path.name} gives epoch {model.epoch}'s model, not the recorded best "
            f"epoch {epoch}",
        )
    predictor = Predictor(model, device="cpu", batch_size=1)
    probabilities = checks.runs(
        f"predicting with {path.name}", lambda: predictor.predict([probe_image])
    )
    if probabilities is not None:
        checks.that(
            probabilities.shape == (1, model.num_classes)
            and abs(float(probabilities.sum()) - 1) < 1e-3,
            f"{path.name} gives probabilities {probabilities!r}",
        )


def check_params_load(path: Path, checks: Checks) -> None:
    """An MXNet ``.params`` file loads as named arrays."""
    from imgcls_desktop.core.runtime import mxnet

    arrays = checks.runs(f"loading {path.name}", lambda: mxnet().nd.load(str(path)))
    checks.that(isinstance(arrays, dict) and bool(arrays), f"{path.name} holds no named arrays")


def read_run_json(run: Path, checks: Checks) -> dict[str, Any] | None:
    """``run.json`` as a dict, or None (a violation unless there is none yet)."""
    path = run / "run.json"
    if not path.exists():
        return None
    info = checks.runs("reading run.json", lambda: json.loads(path.read_text(encoding="utf-8")))
    if not checks.that(isinstance(info, dict), f"run.json holds {info!r}, not a record"):
        return None
    return info


def checkpoint_epochs(run: Path) -> list[int]:
    """The epochs with an ``image-classification-NNNN.params`` file under its final name."""
    found = (_CHECKPOINT.fullmatch(p.name) for p in run.iterdir()) if run.is_dir() else ()
    return sorted(int(match.group(1)) for match in found if match)


def check_run_folder(run: Path, probe_image: Path, checks: Checks) -> dict[str, Any] | None:
    """A run folder after any interruption: ``run.json`` parses; what it records is on disk
    (the best epoch's checkpoint, which the app opens and predicts with; the last completed
    epoch's resume state and metrics); every file under a final name is whole."""
    check_json_files(run, checks)
    for params in (p for p in final_files(run) if p.suffix == ".params"):
        check_params_load(params, checks)
    check_recordio(run / "data" / "train", checks)
    info = read_run_json(run, checks)
    if info is None:
        return None
    best, last = info.get("best_epoch"), info.get("last_completed_epoch", 0)
    for name in ("classes.json", "hyperparameters.json", "preprocessing.json"):
        checks.that((run / name).is_file(), f"run.json is written but {name} is missing")
    if best is not None:
        checks.that(
            best in checkpoint_epochs(run),
            f"run.json records best_epoch {best} but image-classification-{best:04d}.params "
            f"is missing (checkpoints on disk: {checkpoint_epochs(run)})",
        )
        check_model_predicts(run, probe_image, checks, epoch=best)
    if last:
        resume = sorted(p.name for p in (run / "resume").glob(f"epoch-{last:04d}.*"))
        checks.that(
            len(resume) >= 2,
            f"run.json records last_completed_epoch {last} but its resume state has {resume}",
        )
        epochs = [json.loads(line)["epoch"] for line in _whole_lines(run / "metrics.jsonl")]
        checks.that(
            epochs[:last] == list(range(1, last + 1)),
            f"metrics.jsonl holds epochs {epochs}, run.json says {last} completed",
        )
    return info


def _whole_lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [
        line for line in path.read_text(encoding="utf-8").splitlines(True) if line.endswith("\n")
    ]


def run_outcome(run: Path) -> dict[str, Any]:
    """What a finished run must look like whatever interrupted it: its final files (the
    checkpoint's epoch left open, as a resumed run may pick another best), status and
    epochs."""
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    names = sorted(
        _CHECKPOINT.sub("image-classification-BEST.params", str(p.relative_to(run)))
        for p in final_files(run)
    )
    epochs = [json.loads(line)["epoch"] for line in _whole_lines(run / "metrics.jsonl")]
    return {
        "files": names,
        "status": info["status"],
        "last_completed_epoch": info["last_completed_epoch"],
        "metrics_epochs": epochs,
    }


# --- sorting and corrections --------------------------------------------------------------


def read_csv_rows(paths: list[Path], checks: Checks) -> list[dict[str, str]]:
    """The rows of every CSV in ``paths`` (a CSV that does not parse is a violation)."""
    rows: list[dict[str, str]] = []
    for path in paths:
        read = checks.runs(
            f"reading {path.name}",
            lambda p=path: list(csv.DictReader(p.read_text(encoding="utf-8").splitlines())),
        )
        rows += read or []
    return rows


def check_sorted(
    inbox: Path, out: Path, originals: dict[str, str], checks: Checks, *, move: bool
) -> None:
    """After ``predict --sort-into OUT [--move]``: every file in OUT's class folders is a
    whole image recorded in a ``sorted*.csv`` at its destination; with ``--move``, every
    original (name -> SHA-256) is still in the inbox or at its recorded destination. A row
    written ahead of its move (the destination not there yet) is allowed while the source
    is still in place."""
    check_images_decode(out, checks)
    rows = read_csv_rows(sorted(out.glob("sorted*.csv")), checks)
    recorded = {Path(row["destination"]).resolve() for row in rows}
    missing = [
        row["destination"]
        for row in rows
        if not Path(row["destination"]).is_file() and not Path(row["source"]).is_file()
    ]
    checks.that(not missing, f"sorted.csv leads from nowhere to nothing: {missing}")
    unrecorded = [
        str(path.relative_to(out))
        for path in final_files(out)
        if path.suffix.lower() in IMAGE_SUFFIXES and path.resolve() not in recorded
    ]
    checks.that(not unrecorded, f"sorted images in no sorted.csv: {unrecorded}")
    if move:
        lost = []
        for name, digest in originals.items():
            at_source = (inbox / name).is_file() and sha(inbox / name) == digest
            moved = [
                Path(r["destination"])
                for r in rows
                if Path(r["source"]).name == name and Path(r["destination"]).is_file()
            ]
            if not (at_source or any(sha(path) == digest for path in moved)):
                lost.append(name)
        checks.that(not lost, f"images lost (not in the inbox, no sorted.csv row): {lost}")


def sorted_outcome(out: Path) -> dict[str, Any]:
    """The images a sort left, by class folder and content, and how many rows record them
    where they are."""
    images = sorted(
        (path.parent.name, sha(path))
        for path in final_files(out)
        if path.suffix.lower() in IMAGE_SUFFIXES
    )
    return {"images": images, "recorded": len(done_rows(sorted(out.glob("sorted*.csv"))))}


def done_rows(paths: list[Path], destination: str = "destination") -> list[dict[str, str]]:
    """The rows of the CSVs whose ``destination`` column names a file that is there (a row
    written ahead of a copy or move that did not happen is not done)."""
    rows = read_csv_rows([path for path in paths if path.is_file()], Checks("reading"))
    return [row for row in rows if Path(row[destination]).is_file()]


def check_corrections(dataset: Path, class_name: str, before: set[str], checks: Checks) -> None:
    """After ``dataset add``: every file of the class folder is a whole image, and every one
    not there before is listed in ``corrections.csv`` at its destination (a row may be
    written ahead of its copy)."""
    folder = dataset / class_name
    check_images_decode(folder, checks)
    csv_path = dataset / "corrections.csv"
    rows = read_csv_rows([csv_path] if csv_path.is_file() else [], checks)
    recorded = {Path(row["copied_to"]).resolve() for row in rows}
    unrecorded = [
        str(path.relative_to(dataset))
        for path in final_files(folder)
        if path.name not in before and path.resolve() not in recorded
    ]
    checks.that(not unrecorded, f"copies in no corrections.csv: {unrecorded}")


# --- exports ------------------------------------------------------------------------------


def archive_members(archive: Path) -> dict[str, str]:
    """Member name -> SHA-256 of a ``model.tar.gz``."""
    members = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            if extracted is not None:
                members[member.name] = hashlib.sha256(extracted.read()).hexdigest()
    return members


def check_export(folder: Path, probe_image: Path, checks: Checks) -> None:
    """Every exported file under a final name is whole; an archive opens and predicts; a
    checkpoint whose symbol is there opens and predicts."""
    check_json_files(folder, checks)
    for path in final_files(folder):
        if path.suffix == ".params":
            check_params_load(path, checks)
        elif path.name.endswith(".tar.gz"):
            members = checks.runs(f"reading {path.name}", lambda p=path: archive_members(p))
            checks.that(
                members is not None and len(members) == 3,
                f"{path.name} holds {sorted(members or {})}, not symbol, params and shapes",
            )
            if members:
                check_model_predicts(path, probe_image, checks)
        elif path.name.endswith("-symbol.json"):
            prefix = path.with_name(path.name[: -len("-symbol.json")])
            if list(folder.glob(f"{prefix.name}-*.params")):
                check_model_predicts(path, probe_image, checks)


def export_outcome(folder: Path) -> dict[str, str]:
    """The exported files and their contents (an archive by its members: the gzip and tar
    headers hold times)."""
    outcome = {}
    for path in final_files(folder):
        name = str(path.relative_to(folder))
        if name.endswith(".tar.gz"):
            outcome.update({f"{name}:{m}": digest for m, digest in archive_members(path).items()})
        else:
            outcome[name] = sha(path)
    return outcome
