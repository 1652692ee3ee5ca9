"""Reduced-precision inference: int8 (and bf16 where the CPU has it) checked against fp32 on
the run's own images, cached beside the model, and refused with the reason when it cannot
be checked or run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.devices import parse_devices
from imgcls_desktop.core.evaluation import evaluate_dataset
from imgcls_desktop.core.inference import Predictor, open_predictor
from imgcls_desktop.core.labelling import label_images, write_csv, write_jsonl
from imgcls_desktop.core.precision import (
    PRECISION_FOLDER,
    PrecisionError,
    choose_precision,
    given_check_data,
    run_check_data,
    unavailable_reason,
)
from tests.conftest import write_image
from tests.core.inference_fixtures import shared_run, write_plain_checkpoint

# int8 against fp32 on the same images: the bound the fast path is held to.
MIN_AGREEMENT = 0.9
MAX_MEAN_PROBABILITY_CHANGE = 0.05


@pytest.fixture
def run_dir(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A copy of the shared run: the precision cache is written into it."""
    return Path(shutil.copytree(shared_run(tmp_path_factory)[0], tmp_path / "run"))


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Predictor]:
    """A copy of the shared run and its int8 predictor, made once for the module."""
    copy = tmp_path_factory.mktemp("int8") / "run"
    shutil.copytree(shared_run(tmp_path_factory)[0], copy)
    return copy, choose_precision(open_predictor(copy), "int8", run_check_data(copy))


def _images(run_dir: Path) -> list[bytes]:
    """The run's validation images, as encoded bytes."""
    data = run_check_data(run_dir)
    assert data is not None
    with ImageReader(data.check) as reader:
        return [reader.read(sample) for sample in data.check.samples]


def test_int8_predicts_as_fp32_does_and_says_what_it_measured(
    int8_run: tuple[Path, Predictor],
) -> None:
    run_dir, int8 = int8_run
    fp32 = open_predictor(run_dir)
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    images = _images(run_dir)
    expected, got = fp32.predict(images), int8.predict(images)
    assert (expected.argmax(axis=1) == got.argmax(axis=1)).mean() >= MIN_AGREEMENT
    assert np.abs(expected - got).mean() <= MAX_MEAN_PROBABILITY_CHANGE
    assert not np.allclose(expected, got, atol=1e-6)  # it really is another network
    note = int8.network.note
    assert "int8: " in note and "fp32's speed" in note and "points" in note
    assert f"on {len(images)} validation images of the run" in note


def test_the_quantized_network_and_its_check_are_cached_in_the_run_folder(
    run_dir: Path,
) -> None:
    first = choose_precision(open_predictor(run_dir), "int8", run_check_data(run_dir))
    entries = list((run_dir / PRECISION_FOLDER).iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("int8-")
    assert {path.name for path in entries[0].iterdir()} == {
        "check.json",
        "network-symbol.json",
        "network.params",
    }
    # A measured speed ratio is never the same twice: the same one means the cached check.
    measured = _cached_speedup(entries[0])
    again = choose_precision(open_predictor(run_dir), "int8", run_check_data(run_dir))
    assert again.network.note == first.network.note and _cached_speedup(entries[0]) == measured
    images = _images(run_dir)
    np.testing.assert_allclose(again.predict(images), first.predict(images), atol=1e-6)

    # A damaged entry is made again.
    (entries[0] / "network.params").write_bytes(b"not an MXNet array file")
    remade = choose_precision(open_predictor(run_dir), "int8", run_check_data(run_dir))
    assert remade.precision == "int8"
    remeasured = _cached_speedup(entries[0])
    assert remeasured != measured
    reread = choose_precision(open_predictor(run_dir), "int8", run_check_data(run_dir))
    assert reread.network.note == remade.network.note and _cached_speedup(entries[0]) == remeasured


def _cached_speedup(entry: Path) -> float:
    """The speed ratio a cached check recorded, at full precision."""
    return json.loads((entry / "check.json").read_text())["speedup"]


def test_auto_takes_a_faster_precision_only_within_half_a_point(run_dir: Path) -> None:
    chosen = choose_precision(open_predictor(run_dir), "auto", run_check_data(run_dir))
    note = chosen.network.note
    assert note.startswith(f"auto chose {chosen.precision}")
    if chosen.precision == "fp32":
        assert "no faster precision kept its accuracy" in note
    else:
        points = float(note.split("(")[1].split(" points")[0])
        assert points >= -0.5


def test_without_labelled_images_auto_keeps_fp32_and_int8_is_refused(tmp_path: Path) -> None:
    prefix = write_plain_checkpoint(tmp_path / "plain")
    auto = choose_precision(open_predictor(prefix), "auto", None)
    assert auto.precision == "fp32"
    assert "no labelled images" in auto.network.note
    with pytest.raises(PrecisionError, match="checked against fp32 on labelled images"):
        choose_precision(open_predictor(prefix), "int8", None)


def test_given_labelled_images_check_a_model_that_is_not_a_run(
    tmp_path: Path, isolated_home: Path
) -> None:
    prefix = write_plain_checkpoint(tmp_path / "plain")
    folder = tmp_path / "labelled"
    for index, name in enumerate(("class_0", "class_1", "class_2")):
        for copy in range(4):
            write_image(folder / name / f"{copy}.png", (80 * index, 60, 200), seed=copy)
    int8 = choose_precision(open_predictor(prefix), "int8", given_check_data(folder))
    assert int8.precision == "int8"
    assert "on 12 images of labelled" in int8.network.note
    # Not a run: cached under the app's cache, not beside the user's files.
    assert not (prefix.parent / PRECISION_FOLDER).exists()
    assert any((isolated_home / "cache").rglob("check.json"))


def test_bf16_runs_where_the_cpu_has_it_and_is_refused_with_the_reason_elsewhere(
    run_dir: Path,
) -> None:
    reason = unavailable_reason("bf16", parse_devices("cpu")[0])
    if reason is not None:
        assert "AVX512-BF16" in reason
        with pytest.raises(PrecisionError, match="bf16 cannot be used here: this CPU"):
            choose_precision(open_predictor(run_dir), "bf16", run_check_data(run_dir))
        return
    fp32 = open_predictor(run_dir)
    bf16 = choose_precision(open_predictor(run_dir), "bf16", run_check_data(run_dir))
    images = _images(run_dir)
    expected, got = fp32.predict(images), bf16.predict(images)
    assert (expected.argmax(axis=1) == got.argmax(axis=1)).mean() >= MIN_AGREEMENT


def test_an_unknown_precision_is_refused(run_dir: Path) -> None:
    with pytest.raises(PrecisionError, match="one of auto, fp32, int8, bf16"):
        choose_precision(open_predictor(run_dir), "fp8", run_check_data(run_dir))


def test_labels_and_evaluations_record_the_precision(
    int8_run: tuple[Path, Predictor], tmp_path: Path
) -> None:
    run_dir, int8 = int8_run
    data = run_check_data(run_dir)
    assert data is not None
    images = tmp_path / "images"
    images.mkdir()
    for index, encoded in enumerate(_images(run_dir)[:3]):
        (images / f"{index}.jpg").write_bytes(encoded)
    result = label_images(int8, [images])
    assert result.numeric_precision == "int8"
    write_csv(result, tmp_path / "labels.csv")
    header, *rows = (tmp_path / "labels.csv").read_text().splitlines()
    assert header.endswith(",numeric_precision") and all(r.endswith(",int8") for r in rows)
    write_jsonl(result, tmp_path / "labels.jsonl")
    assert '"numeric_precision": "int8"' in (tmp_path / "labels.jsonl").read_text()
    report = evaluate_dataset(int8, load_dataset(data.check.source))
    assert report.numeric_precision == "int8"
    assert report.to_dict()["numeric_precision"] == "int8"
