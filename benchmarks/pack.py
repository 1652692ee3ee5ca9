"""Packing photos into RecordIO: ``imgcls dataset pack`` against MXNet's ``tools/im2rec.py``.

Generates a folder of photo-sized JPEGs (smooth colour gradients plus sensor-like noise,
quality 90, one sub-folder per class) in a temporary folder, then times, side by side:

  (a) whole process, cold start included: ``imgcls dataset pack PHOTOS OUT --resize R
      --workers T`` (scan, split 80/20, pack) against ``python im2rec.py --resize R
      --num-thread T PREFIX PHOTOS`` packing the same 80/20 lists (written beforehand by
      ``im2rec.py --list``, not timed); target >= 1.5x;
  (b) in one process, MXNet already imported: ``export_recordio`` with the same resize on
      ``T`` threads against im2rec's single-process loop (``cv2.imread``, its resize,
      ``mx.recordio.pack_img``); target >= 1.8x on 2 cores;
  (c) the same with pass-through and no resize (the original bytes stored); target >= 10x;
  (d) the peak memory of ``imgcls dataset pack`` on all the photos against a quarter of
      them (a ``.lst``; Linux's ``VmHWM``): flat in the number of images, target >= 0.9x.

The runs alternate between the two sides; each figure is the best of ``--repeat``, each
into a fresh folder after ``os.sync()`` (so one run's disk write-back does not slow the
next). On a busy machine the absolute figures fall; the ratios, measured side by side, are
what count. Run: ``python benchmarks/pack.py [--images 200] [--size 1600x1200]
[--resize 256] [--workers 2] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from report import Figure, add_json_argument, write_figures

from imgcls_desktop.core.dataset.lst import format_lst_line
from imgcls_desktop.core.dataset.recordio_export import ExportOptions, export_recordio
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.dataset.split import split_dataset
from imgcls_desktop.core.runtime import mxnet

CLASSES = ("alpha", "beta", "gamma", "delta")
REPOSITORY = Path(__file__).resolve().parent.parent
_IMGCLS = "import sys; from imgcls_desktop.cli import main; sys.exit(main())"
_IMGCLS_PEAK = (
    "import sys; from imgcls_desktop.cli import main; code = main(); "
    "print(open('/proc/self/status').read(), file=sys.stderr); sys.exit(code)"
)
# MXNet's scripts run after the app's compatibility layer (README, Development), as in the tests
_IM2REC = (
    "import runpy, sys; from imgcls_desktop.core.runtime import mxnet; mxnet(); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _photo(width: int, height: int, seed: int) -> np.ndarray:
    """A photo-like BGR image: smooth random colour fields plus fine noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def generate(root: Path, count: int, width: int, height: int) -> list[Path]:
    """Write ``count`` JPEGs (quality 90) into one sub-folder per class; returns their paths."""
    paths = [root / CLASSES[i % len(CLASSES)] / f"img_{i:05d}.jpg" for i in range(count)]
    for class_name in CLASSES:
        (root / class_name).mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        ok, encoded = cv2.imencode(".jpg", _photo(width, height, i), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        paths[i].write_bytes(encoded.tobytes())

    with ThreadPoolExecutor() as pool:
        list(pool.map(write, range(count)))
    return paths


def im2rec_script() -> Path:
    """MXNet's ``tools/im2rec.py`` as the installed wheel ships it (MXNet not imported)."""
    spec = importlib.util.find_spec("mxnet")
    locations = spec.submodule_search_locations if spec else None
    script = Path(next(iter(locations or []), "")) / "tools" / "im2rec.py"
    if not script.is_file():
        raise SystemExit("this MXNet wheel has no tools/im2rec.py to compare with")
    return script


def baseline(paths: list[Path], out: Path, resize: int) -> None:
    """im2rec's single-process loop: imread, resize as im2rec does, pack_img, write."""
    mx = mxnet()
    out.mkdir()
    record = mx.recordio.MXIndexedRecordIO(str(out / "base.idx"), str(out / "base.rec"), "w")
    for key, path in enumerate(paths):
        image = cv2.imread(str(path))
        height, width = image.shape[:2]
        if height > width:
            new_size = (resize, height * resize // width)
        else:
            new_size = (width * resize // height, resize)
        image = cv2.resize(image, new_size)
        header = mx.recordio.IRHeader(0, float(CLASSES.index(path.parent.name)), key, 0)
        with warnings.catch_warnings():  # pack_img calls numpy's deprecated tostring()
            warnings.simplefilter("ignore", DeprecationWarning)
            record.write_idx(key, mx.recordio.pack_img(header, image, quality=95))
    record.close()


def ours(dataset: Dataset, out: Path, options: ExportOptions) -> None:
    """The app's export of every image (all in train)."""
    result = export_recordio(
        dataset, out, assignment=split_dataset(dataset, val_ratio=0.0), options=options
    )
    assert result.written == len(dataset.samples), result.skipped


def run_process(command: list[str]) -> str:
    """Run ``command`` to completion (this repository's code first); returns its stderr."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(
        command, check=True, capture_output=True, text=True, env=environment
    ).stderr


def peak_megabytes(arguments: list[str]) -> float:
    """The peak resident memory of ``imgcls ARGUMENTS`` in MB (Linux's ``VmHWM``)."""
    errors = run_process([sys.executable, "-c", _IMGCLS_PEAK, *arguments])
    return int(re.findall(r"VmHWM:\s*(\d+) kB", errors)[-1]) / 1024


def best_seconds(runs: list[Callable[[Path], None]], out: Path, repeat: int) -> list[float]:
    """Best wall time of each of ``runs``, run in turn ``repeat`` times, each into a fresh
    ``out`` (removed before, synced to disk, removed after)."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for position, run in enumerate(runs):
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            started = time.perf_counter()
            run(out)
            best[position] = min(best[position], time.perf_counter() - started)
    shutil.rmtree(out, ignore_errors=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", default="1600x1200", help="WIDTHxHEIGHT of the photos")
    parser.add_argument("--resize", type=int, default=256, help="shorter side after resizing")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is shown)")
    parser.add_argument("--dir", help="where to put the photos and records (default: temp)")
    add_json_argument(parser)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    im2rec = im2rec_script()

    with tempfile.TemporaryDirectory(prefix="imgcls-pack-bench-", dir=args.dir) as temp:
        root, out = Path(temp) / "photos", Path(temp) / "out"
        print(f"generating {args.images} JPEGs of {width}x{height} (quality 90) in {temp}")
        paths = generate(root, args.images, width, height)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(f"  {megabytes:.1f} MB, {megabytes / len(paths):.2f} MB per image")
        prefix = Path(temp) / "lists" / "photos"
        prefix.parent.mkdir()
        list_options = ["--list", "--recursive", "--train-ratio", "0.8"]
        run_process(
            [sys.executable, "-c", _IM2REC, str(im2rec), *list_options, str(prefix), str(root)]
        )
        print(
            f"cores: {os.cpu_count()}, workers/threads: {args.workers}, load average "
            f"{os.getloadavg()[0]:.1f}, best of {args.repeat} runs"
        )

        def imgcls_pack(folder: Path) -> None:
            command = [sys.executable, "-c", _IMGCLS, "dataset", "pack", str(root)]
            options = ["--resize", str(args.resize), "--workers", str(args.workers)]
            run_process([*command, str(folder), *options])

        def im2rec_pack(folder: Path) -> None:
            # im2rec writes beside its lists: a copy of them in the fresh folder
            folder.mkdir()
            for lst in prefix.parent.iterdir():
                shutil.copy(lst, folder / lst.name)
            options = ["--resize", str(args.resize), "--num-thread", str(args.workers)]
            command = [sys.executable, "-c", _IM2REC, str(im2rec), *options]
            run_process([*command, str(folder / "photos"), str(root)])

        whole_ours, whole_im2rec = best_seconds([imgcls_pack, im2rec_pack], out, args.repeat)
        quarter = Path(temp) / "quarter.lst"
        with quarter.open("w", encoding="utf-8") as lst:
            for index, path in enumerate(paths[: max(1, len(paths) // 4)]):
                label = CLASSES.index(path.parent.name)
                lst.write(format_lst_line(index, [label], str(path.relative_to(root))))
        command = ["dataset", "pack", "--resize", str(args.resize)]
        memory_all = peak_megabytes([*command, str(root), str(out / "all")])
        memory_quarter = peak_megabytes(
            [*command, str(quarter), str(out / "quarter"), "--root", str(root)]
        )
        shutil.rmtree(out)

        dataset = Dataset(
            class_names=list(CLASSES),
            samples=[Sample(str(p), (CLASSES.index(p.parent.name),)) for p in paths],
            kind=SourceKind.FOLDER,
            source=root,
            root=root,
        )
        mxnet()  # imported outside the in-process timings
        resized_options = ExportOptions(resize=args.resize, workers=args.workers)
        passing_options = ExportOptions(pass_through=True, workers=args.workers)
        base, resized, passed = best_seconds(
            [
                lambda folder: baseline(paths, folder, args.resize),
                lambda folder: ours(dataset, folder, resized_options),
                lambda folder: ours(dataset, folder, passing_options),
            ],
            out,
            args.repeat,
        )

    count = len(paths)
    figures = [
        Figure(
            f"imgcls dataset pack, whole process, resize {args.resize}, {args.workers} threads",
            whole_ours,
            "s",
            f"im2rec.py --num-thread {args.workers}",
            whole_im2rec,
            target=1.5,
            lower_is_better=True,
        ),
        Figure(
            f"export_recordio in process, resize {args.resize}, {args.workers} threads",
            count / resized,
            "images/s",
            "im2rec's loop, 1 process",
            count / base,
            target=1.8,
        ),
        Figure(
            f"export_recordio in process, pass-through, {args.workers} threads",
            count / passed,
            "images/s",
            "im2rec's loop, 1 process",
            count / base,
            target=10,
        ),
        Figure(
            f"peak memory of imgcls dataset pack, {count} photos",
            memory_all,
            "MB",
            f"with {max(1, count // 4)} photos",
            memory_quarter,
            target=0.9,
            lower_is_better=True,
        ),
    ]
    for figure in figures:
        print(
            f"{figure.name}: {figure.value:.2f} {figure.unit} against {figure.anchor:.2f} "
            f"({figure.anchor_name}): {figure.ratio:.2f}x (target >= {figure.target:g}x)"
        )
    write_figures(args.json, figures)


if __name__ == "__main__":
    main()
