"""Grad-CAM: where in an image the network looked for a class.

The heatmap comes from the last convolutional stage: the feature map that enters the
network's last global pooling (``net.features`` before its pooling, for our
``ImageClassifier``). The gradient of the class's logit with respect to that feature map,
averaged over space, weighs each channel; the weighted sum of the channels, without its
negative part, is resized to the image's size and scaled to 0..1 (Selvaraju et al., 2017).

The network is split at that feature map into two Gluon blocks (image -> feature map,
feature map -> logits) built from the model's symbol, so every model kind works the same
way: our runs, SageMaker's ResNets and plain checkpoints with a global pooling layer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

import cv2
import numpy as np

from imgcls_desktop.core.artifacts import ModelError
from imgcls_desktop.core.models import LoadedModel
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import DATA_NAME, logits_symbol

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock
    from mxnet.symbol import Symbol

_FEATURE_MAP = "grad_cam_feature_map"


class CamNetwork(NamedTuple):
    """A classifier split at its last convolutional feature map, on the CPU."""

    #: Raw pixels (N x C x H x W) -> the feature map.
    body: HybridBlock
    #: The feature map -> logits.
    head: HybridBlock
    num_classes: int
    channels: int


def explainable_network(net_or_model: HybridBlock | LoadedModel) -> CamNetwork:
    """Split our ``ImageClassifier``, or any opened model, for :func:`grad_cam`.

    Build it once and pass it to :func:`grad_cam` for every image. Raises
    :class:`~imgcls_desktop.core.artifacts.ModelError` for a network without a global
    pooling layer after its convolutions.
    """
    mx = mxnet()
    if isinstance(net_or_model, LoadedModel):
        # Softmax or sigmoid of the logits: the logits are its input.
        logits = net_or_model.probability_symbol().get_children()[0]
        params = {**net_or_model.arg_params, **net_or_model.aux_params}
        input_shape = net_or_model.input_shape
        source = f"the model at {net_or_model.path}"
    else:
        logits = logits_symbol(net_or_model)
        params = {
            name: param.list_data()[0].copyto(mx.cpu())
            for name, param in net_or_model.collect_params().items()
        }
        input_shape = net_or_model.image_shape
        source = "this network"
    graph = json.loads(logits.tojson())
    nodes = graph["nodes"]
    pooling = [index for index, node in enumerate(nodes) if _global_pooling(node)]
    if not pooling:
        raise ModelError(f"Grad-CAM needs a global pooling layer, which {source} lacks")
    feature = nodes[pooling[-1]]["inputs"][0][0]
    body = logits.get_internals()[f"{nodes[feature]['name']}_output"]
    nodes[feature] = {"op": "null", "name": _FEATURE_MAP, "inputs": []}
    head = mx.sym.load_json(json.dumps(graph))
    num_classes = int(logits.infer_shape(**{DATA_NAME: (1, *input_shape)})[1][0][1])
    return CamNetwork(
        _block(body, DATA_NAME, params),
        _block(head, _FEATURE_MAP, params),
        num_classes,
        int(input_shape[0]),
    )


def grad_cam(
    net_or_model: CamNetwork | HybridBlock | LoadedModel,
    image: np.ndarray,
    class_id: int | None = None,
) -> np.ndarray:
    """The Grad-CAM heatmap (H x W floats in 0..1) of ``class_id`` for one image.

    ``image`` holds raw RGB (or grey) pixels, 0-255, as C x H x W (the Predictor's
    ``preprocess`` output) or H x W x C; ``class_id`` defaults to the most probable class.
    A network or model is split on every call: for many images, call
    :func:`explainable_network` once and pass its result.
    """
    mx = mxnet()
    if isinstance(net_or_model, CamNetwork):
        network = net_or_model
    else:
        network = explainable_network(net_or_model)
    pixels = _channels_first(np.asarray(image, dtype=np.float32), network.channels)
    feature_map = network.body(mx.nd.array(pixels[np.newaxis]))
    feature_map.attach_grad()
    with mx.autograd.record(train_mode=False):
        logits = network.head(feature_map)
    if class_id is None:
        class_id = int(logits[0].asnumpy().argmax())
    if not 0 <= class_id < network.num_classes:
        raise ValueError(f"class_id must be from 0 to {network.num_classes - 1}, not {class_id}")
    logits.backward(mx.nd.one_hot(mx.nd.array([class_id]), network.num_classes))
    activations = feature_map[0].asnumpy()
    weights = feature_map.grad[0].asnumpy().mean(axis=(1, 2))
    cam = np.maximum(np.tensordot(weights, activations, axes=1), 0.0)
    height, width = pixels.shape[1:]
    cam = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    peak = cam.max()
    return (cam / peak if peak > 0 else np.zeros_like(cam)).astype(np.float32)


def overlay(pixels: np.ndarray, heatmap: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """The network's input (C x H x W, RGB or grey, 0-255) with ``heatmap`` (H x W, 0..1)
    blended over it in colour (blue: cold, red: hot), as an H x W x 3 BGR uint8 image."""
    seen = np.clip(pixels, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    seen = cv2.cvtColor(seen, cv2.COLOR_GRAY2BGR if seen.shape[2] == 1 else cv2.COLOR_RGB2BGR)
    if heatmap.shape != seen.shape[:2]:
        raise ValueError(f"a {heatmap.shape} heatmap does not fit a {seen.shape[:2]} image")
    levels = (np.clip(heatmap, 0.0, 1.0) * 255).astype(np.uint8)
    colours = cv2.applyColorMap(levels, cv2.COLORMAP_JET)
    return cv2.addWeighted(seen, 1.0 - opacity, colours, opacity, 0)


def _global_pooling(node: dict[str, Any]) -> bool:
    value = node.get("attrs", {}).get("global_pool", "False")
    return node["op"] == "Pooling" and value.strip().lower() in ("true", "1")


def _block(symbol: Symbol, input_name: str, params: dict[str, Any]) -> HybridBlock:
    """A Gluon block running ``symbol`` on the CPU with the weights it uses."""
    mx = mxnet()
    block = mx.gluon.SymbolBlock(symbol, mx.sym.var(input_name, dtype="float32"))
    block.collect_params().load_dict(params, ctx=mx.cpu(), ignore_extra=True)
    return block


def _channels_first(image: np.ndarray, channels: int) -> np.ndarray:
    """C x H x W from C x H x W, H x W x C, or H x W for one channel."""
    if image.ndim == 2 and channels == 1:
        return image[np.newaxis]
    if image.ndim == 3 and image.shape[0] == channels:
        return image
    if image.ndim == 3 and image.shape[-1] == channels:
        return image.transpose(2, 0, 1)
    raise ValueError(
        f"expected an image of {channels} channel(s) as C x H x W or H x W x C, "
        f"not an array of shape {image.shape}"
    )
