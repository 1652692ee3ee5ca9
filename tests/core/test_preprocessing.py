"""The one preprocessing record: written by training, read by inference, old files too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imgcls_desktop.core.preprocessing import Interpolation, Preprocessing, PreprocessingError

ROOT = Path(__file__).resolve().parents[2]

# preprocessing.json as earlier versions wrote it: a packed run, a .rec read where it was.
OLD_PACKED = {
    "resize_shorter_side": 37,
    "interpolation": "linear, area below half size",
    "crop": "center",
    "height": 32,
    "width": 32,
    "channels": 3,
    "color": "RGB",
    "value_range": [0, 255],
    "normalization": "inside the network",
    "layout": "NCHW",
    "dtype": "float32",
    "multi_label": False,
    "output": "softmax",
}
OLD_RECORD_ITER = {**OLD_PACKED, "interpolation": "linear", "multi_label": True}


def test_old_files_read_as_typed_values() -> None:
    packed = Preprocessing.from_json(OLD_PACKED)
    assert packed == Preprocessing(3, 32, 32, shorter_side=37, interpolation=Interpolation.PACKER)
    record_iter = Preprocessing.from_json(OLD_RECORD_ITER)
    assert record_iter.interpolation is Interpolation.LINEAR and record_iter.multi_label


def test_what_is_written_is_what_earlier_versions_wrote() -> None:
    assert Preprocessing.from_json(OLD_PACKED).to_json() == OLD_PACKED
    whole = Preprocessing.whole_image((1, 28, 28), multi_label=True)
    written = json.loads(json.dumps(whole.to_json()))
    assert written["resize"] == "whole image" and written["crop"] == "none"
    assert written["color"] == "grayscale" and written["output"] == "sigmoid per class"
    assert Preprocessing.from_json(written) == whole


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1, 2], "not a JSON object"),
        ({**OLD_PACKED, "interpolation": "cubic"}, "'interpolation' is 'cubic'"),
        ({**OLD_PACKED, "height": "32"}, "'height' is '32'"),
        ({**OLD_PACKED, "channels": 4}, "'channels' is 4"),
        ({k: v for k, v in OLD_PACKED.items() if k != "resize_shorter_side"}, "shorter_side"),
    ],
)
def test_a_damaged_record_says_what_is_wrong(values: object, message: str) -> None:
    with pytest.raises(PreprocessingError, match=message):
        Preprocessing.from_json(values)


def test_opening_a_model_does_not_import_the_packer() -> None:
    """Opening a SageMaker model needs neither the training-data packer nor the exporter."""
    code = (
        "import sys, imgcls_desktop.core.models, imgcls_desktop.core.inference\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('imgcls_desktop'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = result.stdout.split()
    assert "imgcls_desktop.core.models" in loaded
    for packer in (
        "imgcls_desktop.core.training.packing",
        "imgcls_desktop.core.dataset.recordio_export",
        "imgcls_desktop.core.dataset.scan",
        "imgcls_desktop.core.training.iterators",
    ):
        assert packer not in loaded
