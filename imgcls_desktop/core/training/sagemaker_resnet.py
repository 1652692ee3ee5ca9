"""The network a run trains from scratch: the pre-activation ResNet of SageMaker's algorithm.

:func:`resnet_symbol` builds the symbol ``example/image-classification/symbols/resnet.py``
builds in MXNet (He et al., "Identity Mappings in Deep Residual Networks"), the network
SageMaker's built-in algorithm trains and ships: ``bn_data`` (a batch norm with a fixed
scale, which normalises the raw 0-255 pixels), ``conv0``, units ``stageN_unitM`` of
batch norm, ReLU and convolution, ``bn1``, ``relu1``, global average pooling, ``fc1`` and
``softmax``. Its parameter names are those of SageMaker's artifacts.

Our trainer runs it as a Gluon ``SymbolBlock`` (:mod:`.starting_point`), one step for one
step as ``mx.mod.Module`` would (tests/core/test_sagemaker_resnet.py), which makes
``benchmarks/module_baseline.py`` a comparison of trainers on one network. Measured on 2
CPU cores it trains at the speed of our Gluon ResNet v1 (:mod:`.network`), and on the
benchmark's shapes it reached a higher accuracy in the same epochs.

One difference from ``resnet.py``: the layout follows the depth, not the image height.
The CIFAR depths (20, 32, ..., 110) get three stages of basic units of 16/32/64 channels
after a 3x3 convolution; the ImageNet depths (18 to 200) get four stages after a 7x7
convolution, batch norm, ReLU and max pooling, whatever the image size (``resnet.py``
would give a ResNet-18 on 32 px images a 3x3 start, which costs 16 times the work).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imgcls_desktop.core.hyperparams import IMAGENET_STAGES, SMALL_IMAGE_DEPTHS
from imgcls_desktop.core.runtime import mxnet

if TYPE_CHECKING:
    from mxnet.symbol import Symbol

_CIFAR_FILTERS = (16, 16, 32, 64)
_BASIC_FILTERS = (64, 64, 128, 256, 512)
_BOTTLENECK_FILTERS = (64, 256, 512, 1024, 2048)
_EPS = 2e-5
_MOMENTUM = 0.9


def resnet_symbol(num_layers: int, num_classes: int) -> Symbol:
    """SageMaker's ResNet of ``num_layers`` as a classifier: ``data`` (raw pixels, any
    number of channels and size) -> ``softmax`` (``SoftmaxOutput``, label ``softmax_label``).

    ValueError for a depth neither the CIFAR nor the ImageNet layout has.
    """
    sym = mxnet().sym
    body = _batch_norm(sym.var("data"), "bn_data", fix_gamma=True)
    if num_layers in SMALL_IMAGE_DEPTHS:
        bottleneck, filters = False, _CIFAR_FILTERS
        units = ((num_layers - 2) // 6,) * 3
        body = _convolution(body, filters[0], 3, 1, "conv0")
    elif num_layers in IMAGENET_STAGES:
        bottleneck, units = IMAGENET_STAGES[num_layers]
        filters = _BOTTLENECK_FILTERS if bottleneck else _BASIC_FILTERS
        body = _convolution(body, filters[0], 7, 2, "conv0")
        body = sym.Activation(_batch_norm(body, "bn0"), act_type="relu", name="relu0")
        body = sym.Pooling(
            body, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max", name="pool0"
        )
    else:
        raise ValueError(f"no ResNet of {num_layers} layers")
    for stage, count in enumerate(units, start=1):
        for unit in range(1, count + 1):
            stride = 2 if stage > 1 and unit == 1 else 1
            body = _residual_unit(
                body, filters[stage], stride, unit > 1, f"stage{stage}_unit{unit}", bottleneck
            )
    body = sym.Activation(_batch_norm(body, "bn1"), act_type="relu", name="relu1")
    pooled = sym.Pooling(body, global_pool=True, kernel=(7, 7), pool_type="avg", name="pool1")
    logits = sym.FullyConnected(sym.Flatten(pooled), num_hidden=num_classes, name="fc1")
    return sym.SoftmaxOutput(logits, name="softmax")


def _residual_unit(
    data: Any, filters: int, stride: int, same_shape: bool, name: str, bottleneck: bool
) -> Any:
    """A pre-activation unit: (batch norm, ReLU, convolution) x 2 or x 3, plus the input,
    or a 1x1 projection of the first activation when the shape changes."""
    sym = mxnet().sym
    if bottleneck:
        layers = ((filters // 4, 1, 1), (filters // 4, 3, stride), (filters, 1, 1))
    else:
        layers = ((filters, 3, stride), (filters, 3, 1))
    body, first_activation = data, None
    for index, (width, kernel, layer_stride) in enumerate(layers, start=1):
        body = sym.Activation(
            _batch_norm(body, f"{name}_bn{index}"), act_type="relu", name=f"{name}_relu{index}"
        )
        first_activation = body if first_activation is None else first_activation
        body = _convolution(body, width, kernel, layer_stride, f"{name}_conv{index}")
    shortcut = (
        data if same_shape else _convolution(first_activation, filters, 1, stride, f"{name}_sc")
    )
    return body + shortcut


def _batch_norm(data: Any, name: str, *, fix_gamma: bool = False) -> Any:
    return mxnet().sym.BatchNorm(data, fix_gamma=fix_gamma, eps=_EPS, momentum=_MOMENTUM, name=name)


def _convolution(data: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
    return mxnet().sym.Convolution(
        data,
        num_filter=filters,
        kernel=(kernel, kernel),
        stride=(stride, stride),
        pad=(kernel // 2, kernel // 2),
        no_bias=True,
        name=name,
    )
