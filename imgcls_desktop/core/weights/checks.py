"""Is a file really a backbone? The names and shapes of its ``features.*`` arrays against
those of our own network's ``features`` for each depth (what :func:`load_pretrained` needs).

The file's names and shapes are read from its headers (:mod:`.params_index`). The expected
shapes come from ``build_network(depth, ...)`` by shape inference on its
symbol (no weights are made); they are computed once per depth.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from imgcls_desktop.core.artifacts import ModelError, read_arrays
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.weights.catalog import BACKBONES, Backbone, WeightsError

_FEATURES = "features."
_PROBE = (1, 3, 64, 64)  # any image size: the parameters' shapes do not depend on it
_NAMED_DEPTH = re.compile(r"resnet(\d+)_v1\b")

Shapes = dict[str, tuple[int, ...]]


def feature_shapes(path: Path, file_name: str | None = None) -> Shapes:
    """The ``features.*`` arrays of a ``.params`` file: name -> shape."""
    try:
        arrays = read_arrays(path)
    except ModelError:
        name = file_name or path.name
        raise WeightsError(f"{name} is not an MXNet parameters file (.params)") from None
    return {key: tuple(array.shape) for key, array in arrays.items() if key.startswith(_FEATURES)}


def verify(path: Path, depth: int) -> None:
    """Raise :class:`WeightsError` unless ``path`` holds the ``features`` of ResNet-``depth``
    v1, naming the first difference."""
    _compare(feature_shapes(path), expected_shapes(depth), path.name, depth)


def recognise(path: Path, file_name: str | None = None) -> Backbone:
    """The backbone ``path`` holds, told by its arrays; a file name (``file_name``, else
    the path's) saying another depth (``resnet34_v1...`` holding ResNet-18) is refused as a
    mix-up."""
    name = file_name or path.name
    found = feature_shapes(path, name)
    if not found:
        raise WeightsError(
            f"{name} is not a Gluon model-zoo ResNet file: it has no features.* arrays"
        )
    matches = [backbone for backbone in BACKBONES if found == expected_shapes(backbone.depth)]
    if not matches:
        named = _named_depth(name)
        if named is not None:
            _compare(found, expected_shapes(named), name, named)
        raise WeightsError(
            f"{name} is not the weights of a ResNet v1 of depth "
            f"{', '.join(str(b.depth) for b in BACKBONES)}: its {len(found)} features arrays "
            "fit none of them (ResNet v2 or another network?)"
        )
    backbone = matches[0]
    named = _named_depth(name)
    if named is not None and named != backbone.depth:
        raise WeightsError(
            f"{name} is named ResNet-{named} but holds {backbone.title}'s weights: "
            "rename it or check where it came from"
        )
    return backbone


def _named_depth(file_name: str) -> int | None:
    match = _NAMED_DEPTH.search(file_name.lower())
    depth = int(match.group(1)) if match else None
    return depth if any(b.depth == depth for b in BACKBONES) else None


def _compare(found: Shapes, expected: Shapes, file_name: str, depth: int) -> None:
    what = f"{file_name} is not ResNet-{depth} v1's weights"
    for key, shape in expected.items():
        if key not in found:
            raise WeightsError(f"{what}: it has no {key!r}")
        if found[key] != shape:
            raise WeightsError(f"{what}: {key!r} has shape {found[key]}, not {shape}")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise WeightsError(f"{what}: it has {extra[0]!r} too (another depth?)")


@functools.cache
def expected_shapes(depth: int) -> Shapes:
    """The ``features.*`` names and shapes of our ResNet-``depth`` (ImageNet layout)."""
    from imgcls_desktop.core.training.network import build_network

    mx = mxnet()
    features = build_network(depth, 2, _PROBE[1:]).features
    symbol = features(mx.sym.var("data"))
    arguments, _, auxiliaries = symbol.infer_shape(data=_PROBE)
    inferred = dict(zip(symbol.list_arguments(), arguments))
    inferred.update(zip(symbol.list_auxiliary_states(), auxiliaries))
    params = features._collect_params_with_prefix(_FEATURES.rstrip("."))
    return {key: tuple(inferred[param.name]) for key, param in params.items()}
