"""Figures the benchmarks measure, in a form ``run_all.py`` gathers into one table.

Each benchmark takes ``--json FILE`` (:func:`add_json_argument`) and, besides printing its
own lines, writes its :class:`Figure` list there (:func:`write_figures`). A figure is a value
with, where there is one, its anchor (what it is measured against, side by side in the same
run) and its target: a ratio to the anchor, or a limit of the value itself.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """One measured figure. ``lower_is_better`` for times: the ratio is then anchor/value
    (above 1: faster than the anchor) and a target without an anchor is a maximum."""

    name: str
    value: float
    unit: str
    anchor_name: str = ""
    anchor: float | None = None
    target: float | None = None
    lower_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        """How the value compares with its anchor (above 1 is better), None without one."""
        if self.anchor is None:
            return None
        if self.lower_is_better:
            return self.anchor / self.value if self.value else float("inf")
        return self.value / self.anchor if self.anchor else float("inf")

    @property
    def met(self) -> bool | None:
        """Whether the target is reached (None when the figure has no target)."""
        if self.target is None:
            return None
        if self.ratio is not None:
            return self.ratio >= self.target
        return self.value <= self.target if self.lower_is_better else self.value >= self.target


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json FILE``: where the benchmark writes its figures for ``run_all.py``."""
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")


def write_figures(path: Path | None, figures: list[Figure]) -> None:
    """Write ``figures`` to ``path`` as JSON (nothing when ``path`` is None)."""
    if path is not None:
        path.write_text(json.dumps([asdict(figure) for figure in figures], indent=1) + "\n")


def read_figures(path: Path) -> list[Figure]:
    """The figures a benchmark wrote with :func:`write_figures`."""
    return [Figure(**item) for item in json.loads(path.read_text())]


def format_table(rows: list[tuple[str, Figure | None]]) -> str:
    """One line per (benchmark, figure); a benchmark that failed has the figure None."""
    header = ("benchmark", "figure", "value", "anchor", "ratio", "target", "")
    lines = [header]
    for benchmark, figure in rows:
        if figure is None:
            lines.append((benchmark, "(failed: see its output above)", "", "", "", "", "FAILED"))
            continue
        ratio = figure.ratio
        if figure.target is None:
            target = "-"
        elif ratio is not None:
            target = f">= {figure.target:g}x"
        else:
            target = f"{'<=' if figure.lower_is_better else '>='} {figure.target:g} {figure.unit}"
        anchor = (
            ""
            if figure.anchor is None
            else f"{_number(figure.anchor)} {figure.unit} {figure.anchor_name}"
        )
        status = {None: "", True: "met", False: "NOT MET"}[figure.met]
        lines.append(
            (
                benchmark,
                figure.name,
                f"{_number(figure.value)} {figure.unit}",
                anchor,
                "" if ratio is None else f"{ratio:.2f}x",
                target,
                status,
            )
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines
    )


def _number(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
