"""Atomic writes replace files whole and leave nothing behind when they fail."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from imgcls_desktop.core.atomic import (
    atomic_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    remove_leftover_temporaries,
)


def test_writes_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"\x00\x01\r\n")
    assert target.read_bytes() == b"\x00\x01\r\n"
    assert sorted(tmp_path.iterdir()) == [target]


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("old and much longer text", encoding="utf-8")
    atomic_write_text(str(target), "nouveau ✓\n")
    assert target.read_bytes() == "nouveau ✓\n".encode()
    assert sorted(tmp_path.iterdir()) == [target]


def test_json_is_utf8_with_a_final_newline(tmp_path: Path) -> None:
    target = tmp_path / "classes.json"
    atomic_write_json(target, {"names": ["chat", "chien", "hibou ü"]})
    text = target.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "hibou ü" in text
    assert json.loads(text) == {"names": ["chat", "chien", "hibou ü"]}


def test_unserialisable_json_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "hyperparameters.json"
    target.write_text('{"epochs": "30"}', encoding="utf-8")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"epochs": object()})
    assert target.read_text(encoding="utf-8") == '{"epochs": "30"}'
    assert sorted(tmp_path.iterdir()) == [target]


def test_failure_while_writing_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.params"
    target.write_bytes(b"good checkpoint")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "text is not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"good checkpoint"
    assert sorted(tmp_path.iterdir()) == [target]


def test_failure_to_rename_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    (target / "inner").mkdir(parents=True)  # a non-empty folder cannot be replaced by a file
    with pytest.raises(OSError):
        atomic_write_text(target, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "absent" / "file.txt", "x")


def test_permissions_match_an_ordinary_new_file(tmp_path: Path) -> None:
    ordinary = tmp_path / "ordinary.txt"
    ordinary.write_text("x", encoding="utf-8")
    atomic = tmp_path / "atomic.txt"
    atomic_write_text(atomic, "x")
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(ordinary.stat().st_mode)


def test_atomic_save_replaces_through_a_writer_that_wants_a_file_name(tmp_path: Path) -> None:
    target = tmp_path / "weights.params"
    target.write_bytes(b"old")
    atomic_save(target, lambda name: Path(name).write_bytes(b"new"))
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.params"]


def test_atomic_save_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "weights.params"
    target.write_bytes(b"old")

    def failing(name: str) -> None:
        Path(name).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_save(target, failing)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.params"]


def test_leftover_temporaries_of_named_files_only_are_removed(tmp_path: Path) -> None:
    names = [".a.json.0a1b2c3d.tmp", ".b.json.0a1b2c3d.tmp", ".a.json.tmp", "a.json"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")

    removed = remove_leftover_temporaries(tmp_path, names={"a.json"})

    assert removed == [tmp_path / ".a.json.0a1b2c3d.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
    assert remove_leftover_temporaries(tmp_path) == [tmp_path / ".b.json.0a1b2c3d.tmp"]
