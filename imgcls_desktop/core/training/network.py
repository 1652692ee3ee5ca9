"""Our Gluon ResNet v1 classifier, and the symbols every trained network is deployed as.

The ``ImageClassifier`` is the network of runs with ImageNet weights (``use_pretrained_model=1``)
and of runs begun from scratch by earlier versions; new runs from scratch train SageMaker's
network (:mod:`.sagemaker_resnet`, through :mod:`.starting_point`).
:func:`build_network` returns an ``ImageClassifier``: a Gluon ``HybridBlock`` that takes raw
pixels (0-255, float32, NCHW, 3 or 1 channels), normalises them inside itself with the
ImageNet mean and standard deviation (stored as constants, so they travel with the
parameters and appear in exported symbols), runs the ResNet body ``features`` and returns
the logits of ``output`` (a ``Dense(num_classes)``).

``features`` is built from MXNet's own model-zoo blocks (``BasicBlockV1``/``BottleneckV1``)
with the model zoo's structure, so its structural parameter names (``features.0.weight``,
``features.4.0.body.0.weight``, ...) are those of the Gluon model-zoo ``resnetNN_v1`` files:
that is what makes offline transfer learning possible (see :mod:`.pretrained`). The
CIFAR-style depths follow GluonCV's ``cifar_resnetNN_v1`` layout (3x3 stem convolution and
batch norm, three stages of ``(depth - 2) / 6`` basic blocks with 16/32/64 channels).

The class is created on first use, because MXNet is imported lazily (see
:func:`imgcls_desktop.core.runtime.mxnet`); ``network.ImageClassifier`` gives it.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

from imgcls_desktop.core.hyperparams import LARGE_IMAGE_DEPTHS, SMALL_IMAGE_DEPTHS
from imgcls_desktop.core.runtime import mxnet

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock
    from mxnet.symbol import Symbol

IMAGENET_DEPTHS = LARGE_IMAGE_DEPTHS  # ImageNet-style ResNets, for large images
CIFAR_DEPTHS = SMALL_IMAGE_DEPTHS  # CIFAR-style ResNets, for small images

#: The output name of every deployable symbol: ``softmax``, as in SageMaker's artifacts.
OUTPUT_NAME = "softmax"
#: The input of every symbol.
DATA_NAME = "data"

# The ImageNet statistics the Gluon model-zoo weights were trained with, on a 0-255 scale.
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# A fixed name prefix makes the parameter names (and so the names in saved checkpoints) the
# same for every network of one structure, whatever else the process has built.
_PREFIX = "classifier_"
_RESNET200 = ("bottle_neck", [3, 24, 36, 3], [64, 256, 512, 1024, 2048])
_CIFAR_CHANNELS = [16, 16, 32, 64]
_SMALL_IMAGE_SIDE = 64


def build_network(
    num_layers: int,
    num_classes: int,
    image_shape: tuple[int, int, int],
    *,
    multi_label: bool = False,
) -> HybridBlock:
    """A new, uninitialised ``ImageClassifier`` (raw pixels in, ``num_classes`` logits out).

    ``multi_label`` is recorded on the network (``net.multi_label``) and chooses the
    output of the deployable symbols: softmax (single-label) or per-class sigmoid.
    """
    if num_layers not in IMAGENET_DEPTHS + CIFAR_DEPTHS:
        raise ValueError(
            f"num_layers must be one of {', '.join(map(str, IMAGENET_DEPTHS))} (large images) "
            f"or {', '.join(map(str, CIFAR_DEPTHS))} (small images), not {num_layers}"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, not {num_classes}")
    channels, height, width = image_shape
    if channels not in (1, 3) or height < 1 or width < 1:
        raise ValueError(f"image_shape must be C,H,W with C 1 or 3, not {image_shape}")
    return _classifier_class()(num_layers, num_classes, tuple(image_shape), multi_label)


def fresh_initializer() -> Any:
    """How a run's fresh weights are drawn: MXNet ``fit.py``'s Xavier (Gaussian, fan-in,
    magnitude 2); batch-norm scales start at 1, shifts, biases and statistics at 0."""
    return mxnet().init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)


def recommended_depth(image_shape: tuple[int, int, int]) -> int:
    """The depth to suggest: CIFAR-style ResNet-20 for images up to 64 px, else ResNet-18."""
    return 20 if max(image_shape[1:]) <= _SMALL_IMAGE_SIDE else 18


def logits_symbol(net: HybridBlock) -> Symbol:
    """The network as a symbol: ``data`` (raw pixels) -> logits."""
    return net(mxnet().sym.var(DATA_NAME))


def classifier_symbol(net: HybridBlock, *, multi_label: bool | None = None) -> Symbol:
    """The deployable symbol of SageMaker's artifacts, whose outputs are probabilities.

    Single-label: ``SoftmaxOutput(name="softmax")`` with the label ``softmax_label``, exactly
    as SageMaker's. Multi-label: ``LogisticRegressionOutput(name="softmax")``, whose forward
    pass is a per-class sigmoid and whose label (also ``softmax_label``, shape N x classes)
    gives the binary cross-entropy gradient; keeping the names lets every consumer load
    both kinds the same way (``mx.mod.Module(..., label_names=["softmax_label"])``, output
    ``softmax_output``). ``multi_label`` defaults to the network's own setting.
    """
    sym = mxnet().sym
    head = sym.LogisticRegressionOutput if _multi_label(net, multi_label) else sym.SoftmaxOutput
    return head(data=logits_symbol(net), name=OUTPUT_NAME)


def probability_symbol(net: HybridBlock, *, multi_label: bool | None = None) -> Symbol:
    """``data`` -> probabilities ending in plain ``softmax`` or ``sigmoid``, with no label input.

    For exporters that cannot handle the loss layers of :func:`classifier_symbol` (ONNX
    fails on ``SoftmaxOutput``); the output is also named ``softmax``.
    """
    sym = mxnet().sym
    logits = logits_symbol(net)
    if _multi_label(net, multi_label):
        return sym.sigmoid(logits, name=OUTPUT_NAME)
    return sym.softmax(logits, axis=-1, name=OUTPUT_NAME)


def _multi_label(net: HybridBlock, multi_label: bool | None) -> bool:
    return bool(net.multi_label if multi_label is None else multi_label)


def __getattr__(name: str) -> Any:
    if name == "ImageClassifier":
        return _classifier_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _classifier_class() -> type:
    mx = mxnet()

    class ImageClassifier(mx.gluon.HybridBlock):
        """ResNet v1 on raw pixels: normalisation, ``features`` (the body), ``output`` (logits).

        Attributes ``num_layers``, ``num_classes``, ``image_shape`` and ``multi_label``
        record what it was built for.
        """

        def __init__(
            self,
            num_layers: int,
            num_classes: int,
            image_shape: tuple[int, int, int],
            multi_label: bool,
        ) -> None:
            super().__init__(prefix=_PREFIX)
            self.num_layers = num_layers
            self.num_classes = num_classes
            self.image_shape = image_shape
            self.multi_label = multi_label
            channels = image_shape[0]
            with self.name_scope(), warnings.catch_warnings():
                # Each Constant registers an initializer named after it and its id(); a new
                # network whose constant reuses a freed id only replaces a stale entry.
                warnings.filterwarnings("ignore", "New initializer", UserWarning)
                self.mean = self.params.get_constant("mean", _per_channel(IMAGENET_MEAN, channels))
                self.std = self.params.get_constant("std", _per_channel(IMAGENET_STD, channels))
                self.features, width = _features(num_layers, channels)
                self.output = mx.gluon.nn.Dense(num_classes, in_units=width)

        def hybrid_forward(self, F: Any, x: Any, mean: Any, std: Any) -> Any:
            x = F.broadcast_div(F.broadcast_sub(x, mean), std)
            return self.output(self.features(x))

    return ImageClassifier


def _per_channel(values: tuple[float, float, float], channels: int) -> Any:
    """A (1, C, 1, 1) float32 constant; one channel gets the mean of the three values."""
    chosen = values if channels == 3 else (sum(values) / len(values),)
    return mxnet().nd.array(chosen, dtype="float32").reshape((1, channels, 1, 1))


def _features(num_layers: int, in_channels: int) -> tuple[Any, int]:
    """The ResNet body (model-zoo structure) and the width of its pooled output."""
    mx = mxnet()
    nn = mx.gluon.nn
    resnet = mx.gluon.model_zoo.vision.resnet
    features = nn.HybridSequential(prefix="")
    if num_layers in CIFAR_DEPTHS:
        block = resnet.BasicBlockV1
        channels = _CIFAR_CHANNELS
        layers = [(num_layers - 2) // 6] * 3
        features.add(nn.Conv2D(channels[0], 3, 1, 1, use_bias=False, in_channels=in_channels))
        features.add(nn.BatchNorm())
    else:
        block_type, layers, channels = resnet.resnet_spec.get(num_layers, _RESNET200)
        block = resnet.resnet_block_versions[0][block_type]
        features.add(nn.Conv2D(channels[0], 7, 2, 3, use_bias=False, in_channels=in_channels))
        features.add(nn.BatchNorm())
        features.add(nn.Activation("relu"))
        features.add(nn.MaxPool2D(3, 2, 1))
    for index, count in enumerate(layers):
        stage = nn.HybridSequential(prefix=f"stage{index + 1}_")
        with stage.name_scope():
            stride = 1 if index == 0 else 2
            width, previous = channels[index + 1], channels[index]
            stage.add(block(width, stride, width != previous, in_channels=previous, prefix=""))
            for _ in range(count - 1):
                stage.add(block(width, 1, False, in_channels=width, prefix=""))
        features.add(stage)
    features.add(nn.GlobalAvgPool2D())
    return features, channels[-1]
