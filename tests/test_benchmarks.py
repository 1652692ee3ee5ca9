"""``make bench``: every benchmark reports its figures for the table, and the table reads right.

The benchmarks' figures themselves are measured by running them, never in the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from report import Figure, format_table, read_figures, write_figures  # noqa: E402
from run_all import benchmarks  # noqa: E402


@pytest.mark.parametrize("name", benchmarks())
def test_every_benchmark_writes_its_figures_for_the_table(name: str) -> None:
    environment = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)}
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--help"],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    assert "--json FILE" in completed.stdout


def test_ratios_targets_and_the_table(tmp_path: Path) -> None:
    faster = Figure("pack", 2.0, "s", "im2rec", 5.0, target=1.5, lower_is_better=True)
    slower = Figure("labelling", 300.0, "images/s", "forward", 600.0, target=0.8)
    limit = Figure("gap", 120.0, "ms", target=100.0, lower_is_better=True)
    plain = Figure("start-up", 2.1, "s")
    assert (faster.ratio, faster.met) == (2.5, True)
    assert (slower.ratio, slower.met) == (0.5, False)
    assert (limit.ratio, limit.met) == (None, False)
    assert (plain.ratio, plain.met) == (None, None)

    write_figures(tmp_path / "figures.json", [faster, slower, limit, plain])
    assert read_figures(tmp_path / "figures.json") == [faster, slower, limit, plain]

    lines = format_table([("a", faster), ("a", slower), ("b", limit), ("c", plain), ("d", None)])
    rows = lines.splitlines()[1:]
    assert rows[0].split()[-4:] == ["2.50x", ">=", "1.5x", "met"]
    assert "0.50x" in rows[1] and rows[1].endswith("NOT MET")
    assert "<= 100 ms" in rows[2] and rows[2].endswith("NOT MET")
    assert rows[3].endswith("-")
    assert rows[4].startswith("d") and rows[4].endswith("FAILED")
