"""Model export: SageMaker archive, ONNX (checked with ONNX Runtime) and plain checkpoints."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from inference_fixtures import shared_run, write_sagemaker_archive

from imgcls_desktop.core.artifacts import ModelError, save_checkpoint
from imgcls_desktop.core.export import export_model
from imgcls_desktop.core.models import LoadedModel, open_model
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network

ONNX_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_run(tmp_path_factory)[0]


@pytest.fixture(scope="module")
def fresh_model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """A newly initialised ResNet-20 in SageMaker's layout: its probabilities are far from
    0 and 1, so the ONNX comparison tests more than saturated outputs."""
    mx = mxnet()
    net = build_network(20, 3, (3, 32, 32))
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    folder = tmp_path_factory.mktemp("fresh")
    save_checkpoint(folder, net, 1, batch_size=1)
    return open_model(folder)


def sample_pixels(run: Path, count: int = 4) -> np.ndarray:
    """Raw RGB pixels (N, 3, 32, 32) of images the run was trained on."""
    data = json.loads((run / "run.json").read_text(encoding="utf-8"))["train"]
    files = sorted(Path(data).rglob("*.jpg"))[::7][:count]
    images = [cv2.resize(cv2.imread(str(f))[:, :, ::-1], (32, 32)) for f in files]
    return np.stack(images).transpose(0, 3, 1, 2).astype(np.float32)


def forward(symbol, arg_params, aux_params, x: np.ndarray) -> np.ndarray:
    """The symbol's output for ``x`` (a loss layer's label input is left at zeros)."""
    mx = mxnet()
    executor = symbol.simple_bind(mx.cpu(), data=x.shape, grad_req="null")
    executor.copy_params_from(arg_params, aux_params, allow_extra_params=True)
    executor.arg_dict["data"][:] = x
    return executor.forward(is_train=False)[0].asnumpy()


def onnx_output(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"data": x})[0]


def no_leftovers(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".") or "tmp" in p.name]


def test_sagemaker_archive_loads_with_load_checkpoint(run: Path, tmp_path: Path) -> None:
    model = open_model(run)
    archive = export_model(run, "sagemaker", tmp_path)

    assert archive == tmp_path / "model.tar.gz"
    params = f"image-classification-{model.epoch:04d}.params"
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(
            ["image-classification-symbol.json", params, "model-shapes.json"]
        )
        tar.extractall(tmp_path / "extracted")
    extracted = tmp_path / "extracted"
    shapes = json.loads((extracted / "model-shapes.json").read_text(encoding="utf-8"))
    assert shapes == [{"name": "data", "shape": [1, 3, 32, 32]}]
    symbol, arg_params, aux_params = mxnet().model.load_checkpoint(
        str(extracted / "image-classification"), model.epoch
    )
    assert symbol.list_outputs() == ["softmax_output"]
    x = sample_pixels(run)
    np.testing.assert_array_equal(
        forward(symbol, arg_params, aux_params, x),
        forward(model.symbol, model.arg_params, model.aux_params, x),
    )
    assert no_leftovers(tmp_path / "extracted") and sorted(tmp_path.iterdir())[0] == extracted


@pytest.mark.parametrize("which", ["trained run", "fresh network"])
def test_onnx_matches_mxnet(
    which: str, run: Path, fresh_model: LoadedModel, tmp_path: Path
) -> None:
    model = open_model(run) if which == "trained run" else fresh_model
    x = sample_pixels(run)
    path = export_model(model, "onnx", tmp_path / "out" / "resnet.onnx")

    assert path == tmp_path / "out" / "resnet.onnx"
    graph = onnx.load(str(path))
    assert [value.name for value in graph.graph.input] == ["data"]
    batch = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert not batch.HasField("dim_value")  # a dynamic batch: 4 images at once
    metadata = {entry.key: entry.value for entry in graph.metadata_props}
    assert json.loads(metadata["class_names"]) == model.class_names
    expected = forward(model.probability_symbol(), model.arg_params, model.aux_params, x)
    got = onnx_output(path, x)
    difference = float(np.abs(got - expected).max())
    print(f"ONNX vs MXNet ({which}): max abs difference {difference:.2e}")
    assert difference < ONNX_TOLERANCE
    if which == "fresh network":
        assert expected.min() > 0.01 and expected.max() < 0.99
    assert no_leftovers(tmp_path)


def test_onnx_of_a_multi_label_sagemaker_archive(tmp_path: Path) -> None:
    archive = write_sagemaker_archive(tmp_path / "sm", multi_label=True)
    model = open_model(archive)
    path = export_model(archive, "onnx", tmp_path)

    assert path == tmp_path / "model.onnx"
    x = np.random.default_rng(0).uniform(0, 1, (3, *model.input_shape)).astype(np.float32)
    expected = forward(model.probability_symbol(), model.arg_params, model.aux_params, x)
    got = onnx_output(path, x)
    assert got.shape == (3, model.num_classes)
    np.testing.assert_allclose(got, expected, atol=ONNX_TOLERANCE)
    assert not np.allclose(got.sum(axis=1), 1.0)  # sigmoid per class, not softmax


def test_mxnet_checkpoint_with_a_chosen_prefix(run: Path, tmp_path: Path) -> None:
    model = open_model(run)
    symbol_file = export_model(run, "mxnet", tmp_path / "deploy" / "flowers")

    folder = tmp_path / "deploy"
    assert symbol_file == folder / "flowers-symbol.json"
    assert sorted(p.name for p in folder.iterdir()) == [
        "flowers-0001.params",
        "flowers-symbol.json",
        "labels.txt",
        "model-shapes.json",
    ]
    assert (folder / "labels.txt").read_text(encoding="utf-8").splitlines() == model.class_names
    symbol, arg_params, aux_params = mxnet().model.load_checkpoint(str(folder / "flowers"), 1)
    x = sample_pixels(run)
    np.testing.assert_array_equal(
        forward(symbol, arg_params, aux_params, x),
        forward(model.symbol, model.arg_params, model.aux_params, x),
    )
    reopened = open_model(symbol_file, labels=folder / "labels.txt")
    assert (reopened.class_names, reopened.input_shape) == (model.class_names, (3, 32, 32))


def test_labels_name_the_classes_of_an_archive(tmp_path: Path) -> None:
    archive = write_sagemaker_archive(tmp_path / "sm")
    labels = tmp_path / "labels.txt"
    labels.write_text("ant\nbee\ncow\n", encoding="utf-8")
    export_model(archive, "mxnet", tmp_path / "out" / "model", labels=labels)
    assert (tmp_path / "out" / "labels.txt").read_text(encoding="utf-8") == "ant\nbee\ncow\n"


def test_unknown_format_and_missing_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export_model(tmp_path, "tflite", tmp_path / "out")  # type: ignore[arg-type]
    with pytest.raises(ModelError):
        export_model(tmp_path / "nothing", "onnx", tmp_path / "out.onnx")
