"""The im2rec / SageMaker ``.lst`` format: ``index<TAB>label(s)<TAB>path``."""

from __future__ import annotations

from collections.abc import Sequence


def format_lst_line(index: int, labels: Sequence[float], path: str) -> str:
    """One ``.lst`` line exactly as im2rec writes it (labels as ``%f``), newline included."""
    columns = [str(index), *(f"{float(label):f}" for label in labels), path]
    return "\t".join(columns) + "\n"
