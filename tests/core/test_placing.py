"""Files placed under new names: never overwriting, never leaving a temporary name behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgcls_desktop.core.placing import place_new_file


def test_a_placed_file_has_one_name_and_its_record_line(tmp_path: Path) -> None:
    recorded: list[Path] = []

    final = place_new_file(
        tmp_path / "a.jpg", lambda temporary: temporary.write_bytes(b"image"), recorded.append
    )

    assert final == tmp_path / "a.jpg" and recorded == [final]
    assert final.read_bytes() == b"image" and final.stat().st_nlink == 1
    assert [path.name for path in tmp_path.iterdir()] == ["a.jpg"]


def test_a_name_taken_meanwhile_by_another_program_is_never_overwritten(tmp_path: Path) -> None:
    def taken_after_recording(final: Path) -> None:
        final.write_bytes(b"someone else's")

    with pytest.raises(FileExistsError):
        place_new_file(
            tmp_path / "a.jpg",
            lambda temporary: temporary.write_bytes(b"ours"),
            taken_after_recording,
        )

    assert (tmp_path / "a.jpg").read_bytes() == b"someone else's"
    assert [path.name for path in tmp_path.iterdir()] == ["a.jpg"]  # no temporary left
