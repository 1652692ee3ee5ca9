"""Run every benchmark at a small size and print one table of their figures (``make bench``).

Every ``benchmarks/*.py`` but this file and ``report.py`` is a benchmark: it takes
``--json FILE`` and writes its figures there (``report.py``). Each runs in its own process,
one after the other, its own output shown as it goes; the table at the end has one line per
figure: the value, its anchor (measured side by side in the same run), their ratio, the
target and whether it is met. A new benchmark is picked up as it is; give it a line in
``QUICK`` when its defaults take more than a minute or two. Run:
``python benchmarks/run_all.py [--only pack,predict_throughput] [--full]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from report import Figure, format_table, read_figures

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"report", "run_all"}

# Small sizes, so that the whole table takes minutes (``--full``: each benchmark's defaults).
QUICK = {
    "pack": ["--images", "120", "--repeat", "2"],
    "predict_throughput": ["--images", "128", "--repeat", "2"],
    "train_throughput": [
        *("--epochs", "2", "--small-images", "1024", "--large-images", "64"),
        *("--stream-images", "1000"),
    ],
    "startup": ["--runs", "3"],
    "gui_responsiveness": ["--epochs", "2"],
    "transfer": [*("--images", "120", "--side", "96", "--epochs", "1"), "--source-epochs", "3"],
    "distributed": ["--workers", "1", "2", "--steps", "10"],
    "precision": ["--repeat", "2", "--epochs", "10"],
    "module_baseline": ["--per-class", "48", "--epochs", "3", "--repeat", "1"],
}


def benchmarks() -> list[str]:
    """The names of the benchmark scripts, in order of name."""
    return sorted(path.stem for path in HERE.glob("*.py") if path.stem not in NOT_BENCHMARKS)


def run(name: str, arguments: list[str], folder: Path) -> list[Figure] | None:
    """Run one benchmark; its figures, or None when it failed."""
    output = folder / f"{name}.json"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])
        ),
        "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
    }
    command = [sys.executable, str(HERE / f"{name}.py"), *arguments, "--json", str(output)]
    print(f"=== {name}: {' '.join(command[1:])}", flush=True)
    completed = subprocess.run(command, env=environment, check=False)
    if completed.returncode != 0 or not output.is_file():
        print(f"=== {name} failed (exit code {completed.returncode})", flush=True)
        return None
    return read_figures(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--full", action="store_true", help="each benchmark's default sizes")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else benchmarks()
    unknown = sorted(set(names) - set(benchmarks()))
    if unknown:
        parser.error(
            f"no such benchmark: {', '.join(unknown)} (there are: {', '.join(benchmarks())})"
        )

    rows: list[tuple[str, Figure | None]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="imgcls-bench-") as folder:
        for name in names:
            figures = run(name, [] if args.full else QUICK.get(name, []), Path(folder))
            rows += [(name, None)] if figures is None else [(name, f) for f in figures]
    print()
    print(format_table(rows))
    print(
        f"\nLoad average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
        f"{os.cpu_count()} cores: on a busy machine the figures fall; the ratios, each "
        "measured side by side in one run, are what count."
    )
    return 1 if any(figure is None for _name, figure in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
