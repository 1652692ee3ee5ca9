"""The ResNet classifier: depths, raw-pixel normalisation inside, logits out, its symbols."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training import network
from imgcls_desktop.core.training.network import (
    CIFAR_DEPTHS,
    IMAGENET_DEPTHS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_network,
    classifier_symbol,
    logits_symbol,
    probability_symbol,
    recommended_depth,
)

mx = mxnet()


def ready(net, shape=(2, 3, 32, 32), seed=0):
    """Initialise ``net`` and run it once on random raw pixels; returns those pixels."""
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier())
    pixels = mx.nd.random.uniform(0, 255, shape)
    net(pixels)
    return pixels


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS + CIFAR_DEPTHS)
def test_depth_counts_the_weighted_layers(depth: int) -> None:
    net = build_network(depth, 4, (3, 224, 224))
    structural = net.features._collect_params_with_prefix()
    convolutions = [
        key
        for key, param in structural.items()
        if key.endswith("weight") and len(param.shape) == 4 and "downsample" not in key
    ]
    assert len(convolutions) + 1 == depth  # + the dense output layer
    assert net.output.weight.shape[0] == 4
    assert (net.num_layers, net.num_classes, net.image_shape) == (depth, 4, (3, 224, 224))
    assert isinstance(net, network.ImageClassifier)


@pytest.mark.parametrize("depth", [20, 18])
def test_normalises_raw_pixels_inside_and_returns_logits(depth: int) -> None:
    net = build_network(depth, 3, (3, 32, 32))
    pixels = ready(net)
    mean = mx.nd.array(IMAGENET_MEAN).reshape((1, 3, 1, 1))
    std = mx.nd.array(IMAGENET_STD).reshape((1, 3, 1, 1))
    expected = net.output(net.features(mx.nd.broadcast_div(pixels - mean, std)))
    logits = net(pixels)
    assert logits.shape == (2, 3)
    np.testing.assert_allclose(logits.asnumpy(), expected.asnumpy(), rtol=1e-5, atol=1e-5)


def test_gray_images_use_the_mean_statistics() -> None:
    net = build_network(20, 2, (1, 32, 32))
    ready(net, shape=(2, 1, 32, 32))
    assert net.mean.data().shape == (1, 1, 1, 1)
    assert net.mean.data().asscalar() == pytest.approx(np.mean(IMAGENET_MEAN), rel=1e-6)
    assert net.std.data().asscalar() == pytest.approx(np.mean(IMAGENET_STD), rel=1e-6)
    assert net(mx.nd.zeros((3, 1, 32, 32))).shape == (3, 2)


def test_parameter_names_are_the_same_for_every_network_of_a_structure() -> None:
    first = list(build_network(20, 3, (3, 32, 32)).collect_params())
    second = list(build_network(20, 3, (3, 32, 32)).collect_params())
    assert first == second
    assert first[:2] == ["classifier_mean", "classifier_std"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((19, 3, (3, 32, 32)), "num_layers must be one of 18, 34"),
        ((20, 0, (3, 32, 32)), "num_classes"),
        ((20, 3, (2, 32, 32)), "C 1 or 3"),
    ],
)
def test_refuses_what_it_cannot_build(args, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_network(*args)


def test_recommended_depth() -> None:
    assert recommended_depth((3, 32, 32)) == 20
    assert recommended_depth((1, 64, 48)) == 20
    assert recommended_depth((3, 224, 224)) == 18


def test_classifier_symbol_is_sagemakers() -> None:
    net = build_network(20, 3, (3, 32, 32))
    symbol = classifier_symbol(net)
    assert symbol.list_outputs() == ["softmax_output"]
    arguments = symbol.list_arguments()
    assert arguments[0] == "data"
    assert arguments[-1] == "softmax_label"
    assert {"classifier_mean", "classifier_std"} <= set(arguments)
    assert output_op(symbol) == "SoftmaxOutput"
    assert output_op(classifier_symbol(net, multi_label=True)) == "LogisticRegressionOutput"
    assert output_op(probability_symbol(net)) == "softmax"
    assert output_op(probability_symbol(net, multi_label=True)) == "sigmoid"


def output_op(symbol) -> str:
    graph = json.loads(symbol.tojson())
    return graph["nodes"][graph["heads"][0][0]]["op"]


@pytest.mark.parametrize("multi_label", [False, True])
def test_probability_symbol_gives_the_probabilities_without_a_label(multi_label: bool) -> None:
    net = build_network(20, 3, (3, 32, 32), multi_label=multi_label)
    pixels = ready(net)
    symbol = probability_symbol(net)
    assert symbol.list_outputs() == ["softmax_output"]
    assert "softmax_label" not in symbol.list_arguments()
    block = mx.gluon.SymbolBlock(
        symbol, mx.sym.var("data", dtype="float32"), params=net.collect_params()
    )
    logits = net(pixels)
    expected = mx.nd.sigmoid(logits) if multi_label else mx.nd.softmax(logits)
    np.testing.assert_allclose(block(pixels).asnumpy(), expected.asnumpy(), atol=1e-6)
    logits_block = mx.gluon.SymbolBlock(
        logits_symbol(net), mx.sym.var("data", dtype="float32"), params=net.collect_params()
    )
    np.testing.assert_allclose(logits_block(pixels).asnumpy(), logits.asnumpy(), atol=1e-5)
