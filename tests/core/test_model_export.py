"""Model export: SageMaker archive, ONNX (checked with ONNX Runtime) and plain checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from inference_fixtures import shared_run, write_sagemaker_archive

from imgcls_desktop.core.artifacts import ModelError, save_checkpoint
from imgcls_desktop.core.model_export import ExistingExportError, export_model
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
        # The "data" filter (3.12+, and later patch releases of 3.9-3.11) refuses links out.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp_path / "extracted", **safe)
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
    # The opset MXNet's translations are written for, whatever onnx's newest is.
    assert [(opset.domain, opset.version) for opset in graph.opset_import] == [("", 13)]
    onnx.checker.check_model(graph, full_check=True)
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


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("fmt", "output", "leftovers"),
    [
        (
            "mxnet",
            "flowers",
            [
                ".flowers-symbol.json.0a1b2c3d.tmp",
                ".flowers-0001.params.deadbeef.tmp",
                ".model-shapes.json.01234567.tmp",
                ".labels.txt.89abcdef.tmp",
            ],
        ),
        ("sagemaker", "model.tar.gz", [".model.tar.gz.0a1b2c3d.tmp"]),
    ],
)
def test_an_export_removes_what_a_killed_export_of_the_same_files_left(
    run: Path, tmp_path: Path, fmt: str, output: str, leftovers: list[str]
) -> None:
    folder = tmp_path / "deploy"
    folder.mkdir()
    others = [".other-symbol.json.0a1b2c3d.tmp", ".model.tar.gz.tmp", ".flowers.0a1b2c3d.tmp"]
    for name in [*leftovers, *others, "notes.txt"]:
        (folder / name).write_bytes(b"left over")

    export_model(run, fmt, folder / output)  # type: ignore[arg-type]

    names = {path.name for path in folder.iterdir()}
    assert names.isdisjoint(leftovers) and {*others, "notes.txt"} <= names


def test_an_mxnet_export_writes_its_symbol_last(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed: list[str] = []
    real_replace = os.replace

    def recording_replace(source: str, destination: str) -> None:
        renamed.append(Path(destination).name)
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", recording_replace)
    export_model(run, "mxnet", tmp_path / "flowers")

    # a kill between two of them never leaves a model that opens with an assumed input shape
    assert renamed == [
        "labels.txt",
        "model-shapes.json",
        "flowers-0001.params",
        "flowers-symbol.json",
    ]


def test_an_export_never_writes_over_the_model_it_exports(run: Path, tmp_path: Path) -> None:
    own = tmp_path / "run"
    shutil.copytree(run, own)
    archive = write_sagemaker_archive(tmp_path / "sm")
    (tmp_path / "link.tar.gz").symlink_to(archive)
    labels = tmp_path / "out" / "labels.txt"
    labels.parent.mkdir()
    labels.write_text("ant\nbee\ncow\n", encoding="utf-8")
    before = file_bytes(tmp_path)

    for model, fmt, output, given_labels in [
        (own, "mxnet", own, None),
        (own, "mxnet", own / "image-classification", None),
        (archive, "sagemaker", archive, None),
        (archive, "sagemaker", tmp_path / "link.tar.gz", None),
        (archive, "mxnet", tmp_path / "out" / "model", labels),
    ]:
        with pytest.raises(ModelError, match="files of the model being exported"):
            export_model(model, fmt, output, labels=given_labels, overwrite=True)  # type: ignore[arg-type]
    assert file_bytes(tmp_path) == before


@pytest.mark.parametrize(
    ("fmt", "output", "names"),
    [
        ("sagemaker", "model.tar.gz", ["model.tar.gz"]),
        (
            "mxnet",
            "flowers",
            ["flowers-symbol.json", "flowers-0001.params", "model-shapes.json", "labels.txt"],
        ),
    ],
)
def test_an_earlier_export_is_replaced_only_when_overwriting_is_allowed(
    run: Path, tmp_path: Path, fmt: str, output: str, names: list[str]
) -> None:
    export_model(run, fmt, tmp_path / output)  # type: ignore[arg-type]
    (tmp_path / names[0]).write_bytes(b"an earlier export")
    before = file_bytes(tmp_path)

    with pytest.raises(ExistingExportError) as refused:
        export_model(run, fmt, tmp_path / output)  # type: ignore[arg-type]
    assert [path.name for path in refused.value.files] == names
    assert file_bytes(tmp_path) == before

    export_model(run, fmt, tmp_path / output, overwrite=True)  # type: ignore[arg-type]
    assert (tmp_path / names[0]).read_bytes() != b"an earlier export"
    assert open_model(tmp_path / names[0]).input_shape == (3, 32, 32)
