"""Grad-CAM: where in an image the network looked for a class.

The heatmap comes from the last convolutional stage of our ``ImageClassifier`` (the output of
``net.features`` before its global pooling): the gradient of the class's logit with respect
to that feature map, averaged over space, weighs each channel; the weighted sum of the
channels, without its negative part, is resized to the image's size and scaled to 0..1
(Selvaraju et al., 2017).

It needs the Gluon network, so it works on the models of our run folders (which record
their depth); models that are only a symbol (SageMaker's, plain checkpoints) are refused
with a :class:`~imgcls_desktop.core.artifacts.ModelError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from imgcls_desktop.core.artifacts import ModelError, assign_arrays
from imgcls_desktop.core.hyperparams import HyperparameterError, load_hyperparameters
from imgcls_desktop.core.models import LoadedModel, SourceKind
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network
from imgcls_desktop.core.training.run import HYPERPARAMETERS_FILE

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock


def explainable_network(model: LoadedModel) -> HybridBlock:
    """The Gluon ``ImageClassifier`` of a model opened from one of our run folders, on the CPU.

    Build it once and pass it to :func:`grad_cam` for every image.
    """
    if model.source_kind != SourceKind.RUN:
        raise ModelError(
            f"Grad-CAM needs a model trained here (a run folder); {model.path} is only a symbol"
        )
    try:
        hp = load_hyperparameters(model.path / HYPERPARAMETERS_FILE)
    except HyperparameterError as error:
        raise ModelError(f"Grad-CAM cannot rebuild the network of {model.path}: {error}") from None
    mx = mxnet()
    net = build_network(
        hp.num_layers, model.num_classes, model.input_shape, multi_label=model.multi_label
    )
    net.initialize(ctx=mx.cpu())
    net(mx.nd.zeros((1, *model.input_shape)))  # settles the deferred shapes
    arrays = {**model.arg_params, **model.aux_params}
    assign_arrays(net.collect_params(), arrays, f"the model at {model.path}")
    return net


def grad_cam(
    net_or_model: HybridBlock | LoadedModel, image: np.ndarray, class_id: int | None = None
) -> np.ndarray:
    """The Grad-CAM heatmap (H x W floats in 0..1) of ``class_id`` for one image.

    ``image`` holds raw RGB (or grey) pixels, 0-255, as C x H x W (the Predictor's
    ``preprocess`` output) or H x W x C; ``class_id`` defaults to the most probable class.
    A :class:`LoadedModel` is rebuilt as a network on every call: for many images, call
    :func:`explainable_network` once and pass its result.
    """
    net = (
        explainable_network(net_or_model) if isinstance(net_or_model, LoadedModel) else net_or_model
    )
    mx = mxnet()
    pixels = _channels_first(np.asarray(image, dtype=np.float32), net.image_shape[0])
    context = net.output.weight.list_ctx()[0]
    x = mx.nd.array(pixels[np.newaxis], ctx=context)
    *body, pooling = list(net.features)
    # The network's own first step (ImageClassifier.hybrid_forward), then the body.
    feature_map = mx.nd.broadcast_div(
        mx.nd.broadcast_sub(x, net.mean.data(context)), net.std.data(context)
    )
    for block in body:
        feature_map = block(feature_map)
    feature_map.attach_grad()
    with mx.autograd.record(train_mode=False):
        logits = net.output(pooling(feature_map))
    if class_id is None:
        class_id = int(logits[0].asnumpy().argmax())
    if not 0 <= class_id < net.num_classes:
        raise ValueError(f"class_id must be from 0 to {net.num_classes - 1}, not {class_id}")
    logits.backward(mx.nd.one_hot(mx.nd.array([class_id], ctx=context), net.num_classes))
    activations = feature_map[0].asnumpy()
    weights = feature_map.grad[0].asnumpy().mean(axis=(1, 2))
    cam = np.maximum(np.tensordot(weights, activations, axes=1), 0.0)
    height, width = pixels.shape[1:]
    cam = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    peak = cam.max()
    return (cam / peak if peak > 0 else np.zeros_like(cam)).astype(np.float32)


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
