"""The pixel budget and bounded resizing: small files that decode (or resize) into gigabytes
are refused from their headers, or prepared in bounded memory, and every other image of the
job goes through."""

from __future__ import annotations

import dataclasses
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from bad_images import (
    BIG_REASON,
    DECLARED_REASON,
    STRIP_LENGTH,
    TRUNCATED_REASON,
    uniform_png,
    write_bad_images,
)
from conftest import write_image
from inference_fixtures import write_plain_checkpoint

from imgcls_desktop.core import inference
from imgcls_desktop.core.dataset.folder import import_folder
from imgcls_desktop.core.dataset.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    max_pixels,
    probe,
)
from imgcls_desktop.core.dataset.recordio_export import ExportError, ExportOptions, export_recordio
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.dataset.scan import scan_dataset
from imgcls_desktop.core.dataset.split import SplitAssignment
from imgcls_desktop.core.evaluation import evaluate_dataset
from imgcls_desktop.core.inference import Predictor
from imgcls_desktop.core.labelling import label_images
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.preprocessing import Interpolation

OVER_BUDGET = "more than the 100-megapixel limit"


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bad_images(tmp_path_factory.mktemp("bad"))


@pytest.fixture
def mixed(tmp_path: Path, bad: dict[str, Path]) -> Path:
    """cat/dog/owl class folders of 3 good JPEGs each, the troublemakers among them."""
    root = tmp_path / "images"
    for class_index, name in enumerate(("cat", "dog", "owl")):
        for number in range(3):
            seed = 10 * class_index + number
            write_image(root / name / f"{name}{number}.jpg", (80 * class_index, 90, 150), seed=seed)
    for name, folder in (("big.png", "cat"), ("declared.jpg", "cat"), ("strip.png", "dog")):
        shutil.copy(bad[name], root / folder / name)
    shutil.copy(bad["truncated.jpg"], root / "owl" / "truncated.jpg")
    return root


def _crop_predictor(tmp_path: Path, side: int = 224) -> Predictor:
    """A tiny network (global pooling takes any size) prepared as one of our runs at
    ``side`` px: shorter side resized to ``side``, the central ``side x side`` cropped."""
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nowl\n", encoding="utf-8")
    model = open_model(write_plain_checkpoint(tmp_path / "model"), labels=labels)
    preprocessing = dataclasses.replace(
        model.preprocessing,
        shorter_side=side,
        interpolation=Interpolation.PACKER,
        height=side,
        width=side,
    )
    return Predictor(dataclasses.replace(model, preprocessing=preprocessing), batch_size=4)


def _names(items: list) -> list[str]:
    return sorted(Path(str(item)).name for item in items)


@pytest.mark.parametrize(
    ("suffix", "parameters"),
    [
        (".bmp", []),
        (".tif", []),
        (".webp", []),  # lossless (VP8L)
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),  # lossy (VP8; VP8X with alpha)
        (".png", []),
        (".jpg", []),
    ],
)
def test_every_accepted_format_gives_its_size_from_its_header(
    suffix: str, parameters: list[int]
) -> None:
    rng = np.random.default_rng(0)
    for shape in ((5, 7, 3), (300, 17), (33, 1000, 4), (1, 4000, 3)):
        if suffix == ".jpg" and shape[-1] == 4:
            continue
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        data = cv2.imencode(suffix, image, parameters)[1].tobytes()
        info = probe(data)
        assert (info.height, info.width) == shape[:2]


def _bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(cv2.imencode(".bmp", np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    data[18:26] = struct.pack("<ii", width, -height)  # negative: rows stored top-down
    return bytes(data)


def _tiff_declaring(width: int, height: int) -> bytes:
    entries = struct.pack(">HHII", 256, 4, 1, width) + struct.pack(">HHIHH", 257, 3, 1, height, 0)
    return b"MM\x00*" + struct.pack(">IH", 8, 2) + entries + b"\x00" * 4


def _webp_declaring(width: int, height: int) -> bytes:
    bits = (width - 1) | (height - 1) << 14
    payload = b"\x2f" + struct.pack("<I", bits)
    return b"RIFF" + struct.pack("<I", 12 + len(payload)) + b"WEBPVP8L" + b"\x05\0\0\0" + payload


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (_bmp_declaring(20_000, 20_000), "20000 x 20000 = 400 megapixels"),
        (_tiff_declaring(30_000, 20_000), "30000 x 20000 = 600 megapixels"),
        (_webp_declaring(16_384, 16_384), "16384 x 16384 = 268 megapixels"),
    ],
    ids=["bmp", "tiff", "webp"],
)
def test_an_image_over_the_budget_is_refused_from_its_header_alone(data: bytes, size: str) -> None:
    """Only the header is there: a decoder would fail with another reason."""
    with pytest.raises(ImageError, match=f"^{size}, {OVER_BUDGET}"):
        probe(data)


def test_the_budget_is_set_by_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    image = cv2.imencode(".png", np.zeros((30, 40), np.uint8))[1].tobytes()
    assert max_pixels() == DEFAULT_MAX_PIXELS == 100_000_000
    monkeypatch.setenv("IMGCLS_MAX_PIXELS", "1200")
    assert probe(image).width == 40
    monkeypatch.setenv("IMGCLS_MAX_PIXELS", "1199")
    with pytest.raises(ImageError, match=r"40 x 30 = 0\.0012 megapixels, more than the 0\.0012"):
        probe(image)
    monkeypatch.setenv("IMGCLS_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="IMGCLS_MAX_PIXELS must be a whole number"):
        probe(image)


def test_scan_reports_the_troublemakers_and_keeps_the_rest(mixed: Path) -> None:
    report = scan_dataset(import_folder(mixed), min_per_class=0, workers=2)
    reasons = {Path(f.path).name: f.reason for f in report.bad_files}
    assert reasons == {
        "big.png": BIG_REASON,
        "declared.jpg": DECLARED_REASON,
        "truncated.jpg": TRUNCATED_REASON,
    }
    assert report.class_counts == [3, 4, 3]  # the strip is one megapixel: usable


def _pack(dataset: Dataset, out: Path, **options: object):
    everything = tuple(range(len(dataset.samples)))
    return export_recordio(
        dataset,
        out,
        assignment=SplitAssignment(everything, (), (), 0.0, 0.0, 0),
        options=ExportOptions(workers=2, **options),
    )


def test_pack_skips_each_troublemaker_with_its_reason(mixed: Path, tmp_path: Path) -> None:
    result = _pack(import_folder(mixed), tmp_path / "packed", resize=32)
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons == {
        "big.png": BIG_REASON,
        "declared.jpg": DECLARED_REASON,
        "truncated.jpg": TRUNCATED_REASON,
        "strip.png": f"resized to a shorter side of 32 px it would be 32 x {32 * STRIP_LENGTH} "
        f"= 1,024 megapixels, {OVER_BUDGET} (IMGCLS_MAX_PIXELS changes it)",
    }
    assert result.counts == {"train": 9}


def test_a_strip_too_long_for_a_jpeg_is_skipped_unless_packed_as_png(
    bad: dict[str, Path], tmp_path: Path
) -> None:
    write_image(tmp_path / "images" / "a" / "good.png", (10, 20, 30))
    (tmp_path / "images" / "b").mkdir()
    shutil.copy(bad["strip.png"], tmp_path / "images" / "b" / "strip.png")
    dataset = import_folder(tmp_path / "images")
    as_jpeg = _pack(dataset, tmp_path / "jpeg")
    assert [(Path(s.path).name, s.reason) for s in as_jpeg.skipped] == [
        (
            "strip.png",
            f"1 x {STRIP_LENGTH} is too long for a JPEG (at most 65,500 pixels a "
            "side): pack it as .png",
        )
    ]
    assert _pack(dataset, tmp_path / "png", encoding=".png").counts == {"train": 2}


def test_an_opencv_failure_on_an_image_is_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the budget lifted, enlarging a strip asks OpenCV for 300 TB, more than any
    address space: OpenCV's error is that image's reason, not a crash. (It is alone: any
    other image would be enlarged to 50000 px too.)"""
    monkeypatch.setenv("IMGCLS_MAX_PIXELS", str(10**15))
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "images" / "a" / "strip.png").write_bytes(uniform_png(1, 40_000))
    with pytest.raises(ExportError) as caught:
        _pack(import_folder(tmp_path / "images"), tmp_path / "packed", resize=50_000)
    assert [(Path(s.path).name, s.reason) for s in caught.value.skipped] == [
        ("strip.png", "OpenCV could not process it (Failed to allocate 300000000000000 bytes)")
    ]


def test_labelling_lists_the_troublemakers_and_labels_the_rest(mixed: Path, tmp_path: Path) -> None:
    predictor = _crop_predictor(tmp_path)
    result = label_images(predictor, [mixed])
    assert _names([p.path for p in result.predictions]) == _names(
        [*(mixed / n / f"{n}{i}.jpg" for n in ("cat", "dog", "owl") for i in range(3)), "strip.png"]
    )
    reasons = {u.path.name: u.reason for u in result.unreadable}
    assert reasons == {
        "big.png": BIG_REASON,
        "declared.jpg": DECLARED_REASON,
        "truncated.jpg": TRUNCATED_REASON,
    }


def test_evaluation_leaves_out_the_troublemakers_with_their_reasons(
    mixed: Path, tmp_path: Path
) -> None:
    report = evaluate_dataset(_crop_predictor(tmp_path), import_folder(mixed))
    assert report.count == 10
    assert {Path(path).name: reason for path, reason in report.skipped} == {
        "big.png": BIG_REASON,
        "declared.jpg": DECLARED_REASON,
        "truncated.jpg": TRUNCATED_REASON,
    }


def test_a_strip_is_prepared_from_the_window_the_crop_sees(tmp_path: Path) -> None:
    predictor = _crop_predictor(tmp_path)
    prepared = predictor.preprocess(uniform_png(1, STRIP_LENGTH))
    assert prepared.shape == (3, 224, 224) and not prepared.any()


@pytest.mark.parametrize("shape", [(6, 2000), (2000, 6), (5000, 150)])
def test_the_window_crop_matches_a_whole_resize_but_for_rounding(
    shape: tuple[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long images (enlarged, and shrunk by area averaging) prepared from the window alone
    and from the whole resized image agree to a few levels of 255."""
    rng = np.random.default_rng(1)
    smooth = cv2.resize(
        rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), shape[::-1], cv2.INTER_CUBIC
    )
    predictor = _crop_predictor(tmp_path, side=64)
    windowed = predictor.preprocess(smooth)
    monkeypatch.setattr(inference, "_WHOLE_RESIZE_LIMIT", 10**9)
    whole = predictor.preprocess(smooth)
    assert windowed.shape == whole.shape == (3, 64, 64)
    assert np.abs(windowed - whole).max() <= 4
