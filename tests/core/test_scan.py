"""The health scan: every kind of bad file, conversions, duplicates, class checks, jobs."""

from __future__ import annotations

import json
import shutil
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import write_image

from imgcls_desktop.core.dataset.findings import FindingKind, findings, format_text, relative_to
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.dataset.scan import (
    ScanReport,
    cross_split_duplicates,
    scan_dataset,
)
from imgcls_desktop.core.jobs import Cancelled
from tests.core.bad_images import TRUNCATED_REASON, UNDECODABLE_REASON, undecodable_png

_JPEG_DC_COUNTS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)  # JPEG standard, annex K.3


def make_dataset(
    root: Path, files: dict[str, tuple[int, ...]], class_names: list[str], multi_label: bool = False
) -> Dataset:
    """A data set of the given relative paths (existing or not) and their labels."""
    samples = [Sample(path=str(root / name), labels=labels) for name, labels in files.items()]
    return Dataset(
        class_names=class_names,
        samples=samples,
        kind=SourceKind.FOLDER,
        source=root,
        root=root,
        multi_label=multi_label,
    )


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (32, 32)) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def png_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _canonical_huffman(counts: tuple[int, ...], symbols: list[int]) -> dict[int, str]:
    """Symbol -> bit string for a JPEG Huffman table given as code counts per length."""
    codes, code, position = {}, 0, 0
    for length, count in enumerate(counts, 1):
        for _ in range(count):
            codes[symbols[position]] = format(code, f"0{length}b")
            code += 1
            position += 1
        code <<= 1
    return codes


def cmyk_jpeg(values: tuple[int, int, int, int] = (30, 200, 120, 10)) -> bytes:
    """A real 8 x 8 baseline JPEG with four (CMYK) components, each one flat value.

    OpenCV cannot write CMYK and Pillow is not installed, so this encodes one by hand: each
    component is one block holding only a DC coefficient; a DC quantiser of 8 makes the coded
    value exactly ``value - 128``; the AC table holds only end-of-block. libjpeg decodes it
    (and ImageMagick reports its colour space as CMYK).
    """
    dc_codes = _canonical_huffman(_JPEG_DC_COUNTS, list(range(12)))
    bits = ""
    for value in values:
        diff = value - 128
        category = abs(diff).bit_length()
        extra = diff if diff >= 0 else diff + (1 << category) - 1
        bits += dc_codes[category] + (format(extra, f"0{category}b") if category else "") + "0"
    bits += "1" * (-len(bits) % 8)
    entropy = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    components = b"".join(bytes([c, 0x11, 0]) for c in range(1, 5))
    scan_header = bytes([4]) + b"".join(bytes([c, 0x00]) for c in range(1, 5)) + bytes([0, 63, 0])
    return b"".join(
        [
            b"\xff\xd8",
            _jpeg_segment(0xDB, bytes([0, 8] + [1] * 63)),
            _jpeg_segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 4) + components),
            _jpeg_segment(0xC4, bytes([0x00, *_JPEG_DC_COUNTS, *range(12)])),
            _jpeg_segment(0xC4, bytes([0x10, 1, *[0] * 15, 0x00])),
            _jpeg_segment(0xDA, scan_header),
            entropy.replace(b"\xff", b"\xff\x00"),
            b"\xff\xd9",
        ]
    )


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def scan_files(tmp_path: Path, contents: dict[str, bytes], **options: object) -> ScanReport:
    """Write each file (name -> bytes), all of class "a", and scan them."""
    for name, data in contents.items():
        write_bytes(tmp_path / name, data)
    dataset = make_dataset(tmp_path, {name: (0,) for name in contents}, ["a"])
    return scan_dataset(dataset, min_per_class=0, **options)


def reasons(report: ScanReport) -> dict[str, str]:
    return {Path(result.path).name: result.reason for result in report.bad_files}


def test_bad_files_are_skipped_with_their_reason(tmp_path: Path) -> None:
    good = jpeg_bytes()
    png = png_bytes(np.zeros((16, 16, 3), np.uint8))
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
    huge_ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
    contents = {
        "good.jpg": good,
        "empty.jpg": b"",
        "text.jpg": b"just some notes, not a picture\n",
        "truncated.jpg": good[: len(good) - 200],
        "truncated.png": png[: len(png) - 30],
        "random.png": b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(300),
        "bad-data.png": png[:8] + ihdr + png_chunk(b"IDAT", b"not zlib") + png_chunk(b"IEND", b""),
        "huge.png": png[:8] + huge_ihdr + png[33:],
    }
    for name, data in contents.items():
        write_bytes(tmp_path / name, data)
    files = {name: (0,) for name in [*contents, "missing.jpg"]}
    report = scan_dataset(make_dataset(tmp_path, files, ["a"]), min_per_class=0)

    assert reasons(report) == {
        "empty.jpg": "empty file (0 bytes)",
        "text.jpg": "not an image (unknown file signature)",
        "truncated.jpg": "truncated JPEG (no end-of-image marker)",
        "truncated.png": "truncated PNG (no end chunk)",
        "random.png": "truncated or corrupt PNG (no header)",
        "bad-data.png": "cannot be decoded (corrupt or unsupported image data)",
        "huge.png": "100000 x 100000 = 10,000 megapixels, more than the 100-megapixel limit "
        "(IMGCLS_MAX_PIXELS changes it)",
        "missing.jpg": "file not found",
    }
    assert report.usable_indices == [0]
    assert report.class_counts == [1]
    assert report.files[0].format == "jpeg" and report.files[0].ok


def test_without_decoding_only_the_headers_are_checked(tmp_path: Path) -> None:
    write_bytes(tmp_path / "good.jpg", jpeg_bytes())
    write_bytes(tmp_path / "copy.jpg", jpeg_bytes())
    write_bytes(tmp_path / "bad-data.png", undecodable_png())
    write_bytes(tmp_path / "truncated.jpg", jpeg_bytes()[:-200])  # no end-of-image marker
    dataset = make_dataset(
        tmp_path,
        {name: (0,) for name in ["good.jpg", "copy.jpg", "bad-data.png", "truncated.jpg"]},
        ["a"],
    )

    decoded = scan_dataset(dataset, min_per_class=0)
    headers_only = scan_dataset(dataset, min_per_class=0, decode=False)

    assert reasons(decoded) == {
        "bad-data.png": UNDECODABLE_REASON,
        "truncated.jpg": TRUNCATED_REASON,
    }
    assert reasons(headers_only) == {"truncated.jpg": TRUNCATED_REASON}
    assert [group.indices for group in headers_only.duplicate_groups] == [(0, 1)]
    assert headers_only.files[2].width == 16 and headers_only.files[2].format == "png"


def test_a_folder_in_place_of_a_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "folder.jpg").mkdir()
    report = scan_dataset(make_dataset(tmp_path, {"folder.jpg": (0,)}, ["a"]), min_per_class=0)
    assert reasons(report) == {"folder.jpg": "is a folder, not a file"}


def test_images_needing_conversion_are_usable_and_listed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    report = scan_files(
        tmp_path,
        {
            "colour.png": png_bytes(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)),
            "gray.png": png_bytes(rng.integers(0, 256, (8, 8), dtype=np.uint8)),
            "alpha.png": png_bytes(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)),
            "deep.png": png_bytes(rng.integers(0, 65536, (8, 8, 3), dtype=np.uint16)),
            "deep-gray.png": png_bytes(rng.integers(0, 65536, (8, 8), dtype=np.uint16)),
            "cmyk.jpg": cmyk_jpeg(),
        },
    )
    assert report.bad_files == []
    assert {Path(f.path).name: f.conversion for f in report.converted} == {
        "gray.png": "grayscale",
        "alpha.png": "alpha",
        "deep.png": "16-bit",
        "deep-gray.png": "grayscale, 16-bit",
        "cmyk.jpg": "CMYK",
    }
    assert len(report.usable_indices) == 6


def test_small_images_are_those_below_min_size_in_either_side(tmp_path: Path) -> None:
    contents = {
        "big.jpg": jpeg_bytes(size=(40, 40)),
        "short.jpg": jpeg_bytes(size=(20, 40)),
        "narrow.jpg": jpeg_bytes(size=(40, 20)),
        "exact.jpg": jpeg_bytes(size=(30, 25)),
    }
    report = scan_files(tmp_path, contents, min_size=(30, 25))
    assert sorted(Path(f.path).name for f in report.small_images) == ["narrow.jpg", "short.jpg"]
    assert [(f.width, f.height) for f in report.files] == [(40, 40), (40, 20), (20, 40), (25, 30)]
    assert len(report.usable_indices) == 4
    text = format_text(report)
    assert "Smaller than 30 high x 25 wide (2):" in text
    assert f"  {tmp_path / 'short.jpg'}: 20 high x 40 wide" in text
    assert scan_files(tmp_path, contents).small_images == []


def test_exact_duplicates_are_grouped_and_label_conflicts_noted(tmp_path: Path) -> None:
    first, second = jpeg_bytes(1), jpeg_bytes(2)
    for name, data in {
        "cat/a.jpg": first,
        "cat/a-copy.jpg": first,
        "cat/b.jpg": second,
        "dog/b-again.jpg": second,
        "dog/c.jpg": jpeg_bytes(3),
        "dog/empty-1.jpg": b"",
        "dog/empty-2.jpg": b"",
    }.items():
        write_bytes(tmp_path / name, data)
    files = {
        "cat/a.jpg": (0,),
        "cat/a-copy.jpg": (0,),
        "cat/b.jpg": (0,),
        "dog/b-again.jpg": (1,),
        "dog/c.jpg": (1,),
        "dog/empty-1.jpg": (1,),
        "dog/empty-2.jpg": (1,),
    }
    report = scan_dataset(make_dataset(tmp_path, files, ["cat", "dog"]), min_per_class=0)

    groups = {tuple(Path(p).name for p in group.paths): group for group in report.duplicate_groups}
    assert set(groups) == {("a.jpg", "a-copy.jpg"), ("b.jpg", "b-again.jpg")}
    same = groups["a.jpg", "a-copy.jpg"]
    assert not same.labels_differ and same.indices == (0, 1)
    conflict = groups["b.jpg", "b-again.jpg"]
    assert conflict.labels_differ and conflict.labels == ((0,), (1,))
    assert "(labelled differently: cat / dog)" in format_text(report)
    # Duplicates stay usable; unreadable files are never grouped.
    assert report.usable_indices == [0, 1, 2, 3, 4]


def test_duplicates_across_splits(tmp_path: Path) -> None:
    data = jpeg_bytes(1)
    report = scan_files(
        tmp_path, {"a.jpg": data, "b.jpg": data, "c.jpg": jpeg_bytes(2), "d.jpg": data}
    )
    assert cross_split_duplicates(report, ["train", "train", "val", "train"]) == []
    (straddling,) = cross_split_duplicates(report, ["train", "val", "val", "test"])
    assert straddling.indices == (0, 1, 3)
    assert straddling.splits == ("train", "val", "test")
    (in_two,) = cross_split_duplicates(report, ["train", "", "val", "val"])
    assert (in_two.indices, in_two.splits) == ((0, 3), ("train", "val"))
    assert cross_split_duplicates(report, ["", "", "val", "val"]) == []
    text = format_text(report, assignment=["train", "val", "val", "test"])
    assert "Duplicates in more than one split (1):" in text
    assert f"{tmp_path / 'b.jpg'} (val)" in text
    with pytest.raises(ValueError, match="3 entries for 4 samples"):
        cross_split_duplicates(report, ["train"] * 3)


def write_class_images(root: Path, counts: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Write ``count`` small JPEGs per class folder; return relative path -> label."""
    files = {}
    for label, (name, count) in enumerate(counts.items()):
        for i in range(count):
            write_image(root / name / f"{i}.jpg", (0, 0, 0), size=(8, 8), seed=label * 1000 + i)
            files[f"{name}/{i}.jpg"] = (label,)
    return files


def test_few_images_and_imbalance(tmp_path: Path) -> None:
    files = write_class_images(tmp_path, {"big": 23, "mid": 5, "tiny": 2})
    write_bytes(tmp_path / "mid" / "broken.jpg", b"")
    files["mid/broken.jpg"] = (1,)
    dataset = make_dataset(tmp_path, files, ["big", "mid", "tiny", "none"])

    report = scan_dataset(dataset, min_per_class=6)
    assert report.class_counts == [23, 5, 2, 0]
    assert [(c.name, c.count) for c in report.few_images_classes] == [
        ("mid", 5),
        ("tiny", 2),
        ("none", 0),
    ]
    assert report.imbalance is not None
    assert (report.imbalance.largest.name, report.imbalance.smallest.name) == ("big", "tiny")
    assert report.imbalance.ratio == 11.5

    relaxed = scan_dataset(dataset, min_per_class=2, imbalance_ratio=12)
    assert relaxed.imbalance is None
    assert [c.name for c in relaxed.few_images_classes] == ["none"]


def test_multi_label_counts_every_label(tmp_path: Path) -> None:
    files = write_class_images(tmp_path, {"x": 3})
    dataset = make_dataset(
        tmp_path, dict(zip(files, [(0, 1), (1,), ()])), ["sky", "sea"], multi_label=True
    )
    report = scan_dataset(dataset, min_per_class=0)
    assert report.class_counts == [1, 2]
    assert "counts once for each of its labels" in format_text(report)


def test_text_report(tmp_path: Path) -> None:
    files = write_class_images(tmp_path, {"cat": 12, "dog": 11})
    healthy = scan_dataset(make_dataset(tmp_path, files, ["cat", "dog"]))
    assert format_text(healthy).splitlines() == [
        "Scanned 23 images in 2 classes: 23 usable, 0 unusable.",
        "",
        "   id  class   images   share",
        "    0  cat         12   52.2%",
        "    1  dog         11   47.8%",
        "",
        "No problems found.",
    ]

    for i in range(3):
        write_bytes(tmp_path / f"bad{i}.jpg", b"")
    broken = make_dataset(tmp_path, {f"bad{i}.jpg": (0,) for i in range(3)}, ["cat", "dog"])
    text = format_text(scan_dataset(broken, min_size=(10, 20)), limit=2)
    assert "Unusable files, skipped (3):" in text
    assert f"  {tmp_path / 'bad0.jpg'}: empty file (0 bytes)" in text
    assert "  ... and 1 more" in text
    assert "Classes with few images (2):" in text
    assert "No problems found." not in text


def test_to_dict_is_json_serialisable(tmp_path: Path) -> None:
    files = write_class_images(tmp_path, {"a": 12, "b": 1})
    shutil.copy(tmp_path / "a" / "0.jpg", tmp_path / "b" / "copy.jpg")
    write_bytes(tmp_path / "b" / "gray.png", png_bytes(np.zeros((4, 4), np.uint8)))
    files.update({"b/copy.jpg": (1,), "b/gray.png": (1,), "b/gone.jpg": (1,)})
    report = scan_dataset(make_dataset(tmp_path, files, ["a", "b"]), min_size=(16, 16))

    data = json.loads(json.dumps(report.to_dict()))
    assert data["class_counts"] == [12, 3]
    assert data["bad_files"] == [
        {
            "index": 15,
            "path": str(tmp_path / "b" / "gone.jpg"),
            "ok": False,
            "reason": "file not found",
            "width": 0,
            "height": 0,
            "format": "",
            "conversion": "",
        }
    ]
    assert len(data["small_images"]) == 15
    assert [f["conversion"] for f in data["converted"]] == ["grayscale"]
    assert data["duplicate_groups"][0]["labels_differ"] is True
    assert data["imbalance"] is None
    assert data["usable_indices"] == list(range(15))
    assert data["min_size"] == [16, 16]


def test_record_file_images_are_scanned(tmp_path: Path) -> None:
    from imgcls_desktop.core.runtime import mxnet

    mx = mxnet()
    rec, idx = tmp_path / "data.rec", tmp_path / "data.idx"
    writer = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "w")
    payloads = [jpeg_bytes(i) for i in range(6)] + [b"garbage"]
    for key, payload in enumerate(payloads):
        writer.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, key % 2, key, 0), payload))
    writer.close()
    samples = [
        Sample(path=f"{rec}#{key}", labels=(key % 2,), record=key) for key in range(len(payloads))
    ]
    dataset = Dataset(["even", "odd"], samples, SourceKind.RECORDIO, rec, record_file=rec)

    report = scan_dataset(dataset, min_per_class=0, workers=3)
    assert report.usable_indices == list(range(6))
    assert reasons(report) == {"data.rec#6": "not an image (unknown file signature)"}
    assert report.class_counts == [3, 3]


def test_progress_reaches_total_and_results_do_not_depend_on_threads(tmp_path: Path) -> None:
    files = write_class_images(tmp_path, {"a": 30, "b": 25})
    write_bytes(tmp_path / "a" / "0.jpg", b"broken")
    dataset = make_dataset(tmp_path, files, ["a", "b"])
    calls: list[tuple[int, int]] = []

    parallel = scan_dataset(dataset, workers=4, progress=lambda *call: calls.append(call))
    assert calls[0] == (0, 55) and calls[-1] == (55, 55)
    assert [done for done, _ in calls] == list(range(56))
    assert parallel.to_dict() == scan_dataset(dataset, workers=1).to_dict()


def test_cancel_from_progress_stops_promptly_and_leaves_no_threads(tmp_path: Path) -> None:
    files = write_class_images(tmp_path, {"a": 200})
    dataset = make_dataset(tmp_path, files, ["a"])
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 5:
            cancel.set()

    with pytest.raises(Cancelled):
        scan_dataset(dataset, workers=2, progress=progress, cancel=cancel)
    assert 5 <= max(seen) < 5 + 2 * 4 + 1  # at most the images already queued
    assert not [t for t in threading.enumerate() if t.name.startswith("scan")]


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, {}, ["a"])
    with pytest.raises(ValueError, match="height, width"):
        scan_dataset(dataset, min_size=(0, 10))
    with pytest.raises(ValueError, match="workers"):
        scan_dataset(dataset, workers=0)
    with pytest.raises(ValueError, match="imbalance ratio"):
        scan_dataset(dataset, imbalance_ratio=0.5)
    empty = scan_dataset(dataset)
    assert empty.files == [] and [c.count for c in empty.few_images_classes] == [0]


def test_a_class_far_below_the_others_is_found_small(tmp_path: Path) -> None:
    # The user's data set: 12 images of one class among 245 (4.9%), above the floor of 10.
    files = write_class_images(tmp_path, {"a": 78, "b": 78, "c": 77, "rare": 12})
    report = scan_dataset(make_dataset(tmp_path, files, ["a", "b", "c", "rare"]))
    assert [(c.name, c.count) for c in report.few_images_classes] == [("rare", 12)]
    (finding,) = [f for f in findings(report) if f.kind is FindingKind.FEW_IMAGES]
    assert finding.detail.startswith("rare: 12 images (4.9% of the images)")
    assert "Classes with few images (1):" in format_text(report)
    even = scan_dataset(make_dataset(tmp_path, files, ["a", "b", "c", "rare"]), small_class_share=0)
    assert even.few_images_classes == []


def test_findings_show_paths_as_the_face_chooses(tmp_path: Path) -> None:
    same = jpeg_bytes(1)
    write_bytes(tmp_path / "cat" / "IMG_1001.jpg", same)
    write_bytes(tmp_path / "dog" / "IMG_1001.jpg", same)
    write_bytes(tmp_path / "dog" / "empty.jpg", b"")
    files = {"cat/IMG_1001.jpg": (0,), "dog/IMG_1001.jpg": (1,), "dog/empty.jpg": (1,)}
    report = scan_dataset(make_dataset(tmp_path, files, ["cat", "dog"]), min_per_class=0)

    listed = findings(report, show_path=relative_to(tmp_path))
    assert [(f.kind, f.detail) for f in listed] == [
        (FindingKind.UNUSABLE, "dog/empty.jpg: empty file (0 bytes)"),
        (
            FindingKind.DUPLICATES,
            "2 copies: cat/IMG_1001.jpg, dog/IMG_1001.jpg (labelled differently: cat / dog)",
        ),
    ]
    assert listed[1].path == str(tmp_path / "cat" / "IMG_1001.jpg")  # the file, to show it
    in_full = findings(report)  # the command line's: every path in full
    assert in_full[0].detail == f"{tmp_path / 'dog' / 'empty.jpg'}: empty file (0 bytes)"
    assert [line for line in format_text(report).splitlines() if "copies" in line] == [
        f"  {in_full[1].detail}"
    ]
