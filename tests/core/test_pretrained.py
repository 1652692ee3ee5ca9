"""Offline transfer learning from local Gluon model-zoo files made here (no network access)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgcls_desktop.core.artifacts import ModelError
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network
from imgcls_desktop.core.training.pretrained import (
    PretrainedWeightsMissing,
    find_pretrained_weights,
    load_pretrained,
    model_cache_folder,
    model_zoo_file_names,
)

mx = mxnet()
PIXELS = (1, 3, 32, 32)


def save_run(net, path: Path, shape=PIXELS) -> Path:
    """Initialise ``net`` randomly, run it once (shapes become known) and save it Gluon's way."""
    net.initialize(mx.init.Xavier())
    net(mx.nd.random.uniform(0, 255, shape))
    net.save_parameters(str(path))
    return path


@pytest.fixture(scope="module")
def zoo_resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file laid out like the model zoo's ``resnet18_v1-a0666292.params``, random weights."""
    folder = tmp_path_factory.mktemp("zoo")
    zoo = mx.gluon.model_zoo.vision.get_model("resnet18_v1", classes=1000)
    return save_run(zoo, folder / "resnet18_v1-a0666292.params")


def features_of(path: Path) -> dict[str, np.ndarray]:
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items() if k.startswith("features.")}


def settled_value(param) -> np.ndarray:
    """A parameter's value once every pass queued so far has finished.

    MXNet's oneDNN convolutions change the memory layout of their weight in place after an
    inference or training pass, in an operation the convolution queues only when it runs;
    ``asnumpy()`` waits for queued writes, not for that one, and so can copy the array in
    the middle of its reordering (see tests/core/test_weights_after_a_pass.py).
    """
    mx.nd.waitall()
    return param.data().asnumpy()


def assert_features_loaded(net, path: Path) -> None:
    expected = features_of(path)
    loaded = net.features._collect_params_with_prefix("features")
    assert sorted(loaded) == sorted(expected)
    for key, param in loaded.items():
        np.testing.assert_array_equal(settled_value(param), expected[key], err_msg=key)


def test_file_names_follow_the_model_zoo() -> None:
    assert model_zoo_file_names(18) == ["resnet18_v1-a0666292.params", "resnet18_v1.params"]
    assert model_zoo_file_names(152) == ["resnet152_v1-671c637a.params", "resnet152_v1.params"]
    assert model_zoo_file_names(200) == ["resnet200_v1.params"]
    assert model_zoo_file_names(20) == ["cifar_resnet20_v1.params"]


def test_finds_weights_in_mxnets_model_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    assert model_cache_folder() == tmp_path / "models"
    (tmp_path / "models").mkdir()
    plain = tmp_path / "models" / "resnet18_v1.params"
    plain.write_bytes(b"")
    assert find_pretrained_weights(18) == plain
    hashed = tmp_path / "models" / "resnet18_v1-a0666292.params"
    hashed.write_bytes(b"")
    assert find_pretrained_weights(18) == hashed


def test_an_explicit_file_or_folder_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "empty"))
    chosen = tmp_path / "my weights.params"
    chosen.write_bytes(b"")
    assert find_pretrained_weights(34, chosen) == chosen
    (tmp_path / "resnet34_v1.params").write_bytes(b"")
    assert find_pretrained_weights(34, tmp_path) == tmp_path / "resnet34_v1.params"


def test_missing_weights_say_how_to_get_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsMissing) as raised:
        find_pretrained_weights(50)
    message = str(raised.value)
    assert "imgcls weights download resnet50_v1" in message
    assert "Training > Pretrained Weights" in message
    assert "imgcls weights import" in message
    with pytest.raises(PretrainedWeightsMissing) as raised:
        find_pretrained_weights(50, tmp_path)
    assert "resnet50_v1-0aee57f9.params or resnet50_v1.params" in str(raised.value)
    assert str(tmp_path) in str(raised.value)
    with pytest.raises(PretrainedWeightsMissing, match=r"cifar_resnet20_v1\.params in"):
        find_pretrained_weights(20)
    assert isinstance(raised.value, ModelError)
    assert isinstance(raised.value, ValueError)  # the command line reports it in one line
    with pytest.raises(PretrainedWeightsMissing, match="does not exist"):
        find_pretrained_weights(50, tmp_path / "nowhere.params")


def test_loads_the_features_and_keeps_a_fresh_head(zoo_resnet18: Path) -> None:
    net = build_network(18, 5, (3, 32, 32))
    net.initialize(mx.init.Xavier())
    load_pretrained(net, zoo_resnet18)
    assert net(mx.nd.random.uniform(0, 255, (2, 3, 32, 32))).shape == (2, 5)
    assert_features_loaded(net, zoo_resnet18)
    assert net.output.weight.shape == (5, 512)
    assert net.output.bias.data().shape == (5,)


def test_loads_a_cifar_style_network(tmp_path: Path) -> None:
    source = save_run(build_network(20, 10, (3, 32, 32)), tmp_path / "cifar_resnet20_v1.params")
    net = build_network(20, 3, (3, 32, 32))
    net.initialize(mx.init.Xavier())
    load_pretrained(net, source)
    net(mx.nd.zeros(PIXELS))
    assert_features_loaded(net, source)
    assert net.output.weight.shape == (3, 64)


def test_a_file_of_another_shape_is_refused_naming_the_difference(zoo_resnet18: Path) -> None:
    net = build_network(18, 5, (1, 32, 32))
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 1, 32, 32)))
    before = settled_value(net.features[0].weight)
    with pytest.raises(ModelError, match=r"'features\.0\.weight' has shape \(64, 3, 7, 7\)"):
        load_pretrained(net, zoo_resnet18)
    np.testing.assert_array_equal(settled_value(net.features[0].weight), before)


def test_a_file_of_another_depth_is_refused(tmp_path: Path) -> None:
    deeper = mx.gluon.model_zoo.vision.get_model("resnet34_v1")
    path = save_run(deeper, tmp_path / "resnet34_v1.params")
    net = build_network(18, 5, (3, 32, 32))
    net.initialize()
    with pytest.raises(ModelError, match=r"'features\.4\.2\..*a different depth"):
        load_pretrained(net, path)


def test_files_that_are_not_model_zoo_resnets_are_refused(tmp_path: Path) -> None:
    net = build_network(18, 5, (3, 32, 32))
    net.initialize()
    garbage = tmp_path / "garbage.params"
    garbage.write_bytes(b"not an MXNet file")
    with pytest.raises(ModelError, match="cannot read"):
        load_pretrained(net, garbage)
    other = tmp_path / "other.params"
    mx.nd.save(str(other), {"weight": mx.nd.zeros(3)})
    with pytest.raises(ModelError, match="no features"):
        load_pretrained(net, other)
