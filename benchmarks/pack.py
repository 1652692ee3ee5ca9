"""Images per second of the RecordIO export against im2rec's single-process way of packing.

Generates a folder of photo-sized JPEGs (smooth colour gradients plus sensor-like noise,
quality 90) in a temporary folder, then times:

  (a) baseline: one loop of ``cv2.imread`` + resize of the shorter side (as im2rec does) +
      ``mx.recordio.pack_img`` into a ``.rec``;
  (b) ``export_recordio`` with the same resize, on every core;
  (c) ``export_recordio`` with pass-through and no resize.

Each figure is the best of ``--repeat`` runs, each into a fresh folder after ``os.sync()``
(so one run's disk write-back does not slow the next). Run:
``python benchmarks/pack.py [--images 300] [--size 1600x1200] [--resize 256] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from imgcls_desktop.core.dataset.recordio_export import ExportOptions, export_recordio
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.dataset.split import split_dataset
from imgcls_desktop.core.runtime import mxnet

CLASSES = ("alpha", "beta", "gamma", "delta")


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


def images_per_second(run: Callable[[Path], None], out: Path, count: int, repeat: int) -> float:
    """Best images/s of ``repeat`` runs of ``run(folder)``, each into a fresh folder."""
    best = 0.0
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        os.sync()
        started = time.perf_counter()
        run(out)
        best = max(best, count / (time.perf_counter() - started))
    shutil.rmtree(out, ignore_errors=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="1600x1200", help="WIDTHxHEIGHT of the photos")
    parser.add_argument("--resize", type=int, default=256, help="shorter side after resizing")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is shown)")
    parser.add_argument("--dir", help="where to put the photos and records (default: temp)")
    parser.add_argument(
        "--opencv-threads", type=int, help="cv2.setNumThreads before timing (default: as is)"
    )
    args = parser.parse_args()
    if args.opencv_threads is not None:
        cv2.setNumThreads(args.opencv_threads)
    width, height = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="imgcls-pack-bench-", dir=args.dir) as temp:
        root, out = Path(temp) / "photos", Path(temp) / "out"
        print(f"generating {args.images} JPEGs of {width}x{height} (quality 90) in {temp}")
        paths = generate(root, args.images, width, height)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(f"  {megabytes:.1f} MB, {megabytes / len(paths):.2f} MB per image")
        dataset = Dataset(
            class_names=list(CLASSES),
            samples=[Sample(str(p), (CLASSES.index(p.parent.name),)) for p in paths],
            kind=SourceKind.FOLDER,
            source=root,
            root=root,
        )
        mxnet()  # imported outside the timings
        print(
            f"cores: {os.cpu_count()}, export workers: {args.workers}, "
            f"OpenCV threads: {cv2.getNumThreads()}, best of {args.repeat} runs"
        )

        def measure(run: Callable[[Path], None]) -> float:
            return images_per_second(run, out, len(paths), args.repeat)

        base = measure(lambda folder: baseline(paths, folder, args.resize))
        resized = measure(
            lambda folder: ours(
                dataset, folder, ExportOptions(resize=args.resize, workers=args.workers)
            )
        )
        passed = measure(
            lambda folder: ours(
                dataset, folder, ExportOptions(pass_through=True, workers=args.workers)
            )
        )
        rows = [
            (f"(a) baseline: imread + resize {args.resize} + pack_img, 1 process", base),
            (f"(b) export_recordio, resize {args.resize}, {args.workers} workers", resized),
            (f"(c) export_recordio, pass-through, {args.workers} workers", passed),
        ]
        for label, figure in rows:
            print(f"{label:<60} {figure:8.1f} images/s")
        print(f"(b)/(a) = {resized / base:5.2f}x  (target >= 1.8x on 2 cores)")
        print(f"(c)/(a) = {passed / base:5.2f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
