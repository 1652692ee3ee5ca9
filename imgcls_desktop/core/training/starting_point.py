"""Where a run's network comes from, and how it gets its first weights.

A new run starts from fresh weights in SageMaker's own network (the pre-activation ResNet
of :mod:`.sagemaker_resnet`, built as a symbolic network, below), from ImageNet weights
(``use_pretrained_model=1``: our ``ImageClassifier``, every ``features`` layer loaded, a
fresh head), or from a base model of any kind :func:`~imgcls_desktop.core.models.open_model`
opens:

- an ``ImageClassifier`` of this app (an ImageNet-weights run, or a run from scratch
  before SageMaker's network was the default; recognised by its parameter names) of the
  run's depth: with the same number of classes every layer is loaded, with another every
  ``features`` layer, and ``output`` is new;
- any other symbolic classifier (a run from scratch, SageMaker's ``model.tar.gz``, a plain
  MXNet checkpoint): the network is built from its symbol, cut at the input of its
  last ``FullyConnected`` (the pooled features). That part, with the model's weights, is a
  Gluon ``SymbolBlock`` (``net.features``); ``net.output`` is a ``Dense`` named as the
  model's layer (``fc1``), its weights loaded when the class count is the same. No
  normalisation is added: such a symbol has its own (SageMaker's ``bn_data``).

A network built from a symbol is recorded in the run folder (:data:`NETWORK_FILE`, named by
``run.json``'s ``network``), so a resume rebuilds it without the base model, which the user
may have moved or deleted since. What cannot work is refused before any work.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgcls_desktop.core.artifacts import ModelError, assign_arrays
from imgcls_desktop.core.atomic import atomic_write_json
from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.models import LoadedModel, open_model
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import (
    CIFAR_DEPTHS,
    DATA_NAME,
    IMAGENET_DEPTHS,
    build_network,
    logits_symbol,
)
from imgcls_desktop.core.training.pretrained import find_pretrained_weights, load_pretrained
from imgcls_desktop.core.training.run import RunError, RunInfo
from imgcls_desktop.core.training.sagemaker_resnet import resnet_symbol

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock
    from mxnet.symbol import Symbol

#: The record of a network built from a base model's symbol, in its run folder.
NETWORK_FILE = "network.json"
#: The largest network record read back (a ResNet-269 symbol is about 400 kB).
MAX_NETWORK_FILE_BYTES = 16 * 1024**2
# A parameter of our ImageClassifier that no other model has (see network._PREFIX).
_OUR_MARK = "classifier_mean"


@dataclass(frozen=True)
class SymbolicNetwork:
    """How to rebuild a network made from a base model's symbol (:data:`NETWORK_FILE`).

    ``backbone`` is the symbol's JSON up to the pooled features; ``head`` the name of the
    model's last ``FullyConnected`` layer, whose parameters the new ``Dense`` takes
    (``{head}_weight``, ``{head}_bias``); ``num_layers`` the depth it was counted to have.
    """

    backbone: str
    head: str
    head_bias: bool
    head_flatten: bool
    num_layers: int

    @classmethod
    def of_symbol(cls, symbol: Symbol, source: str) -> SymbolicNetwork:
        """Cut ``symbol`` at the input of its last ``FullyConnected``; ModelError if it has none."""
        nodes = json.loads(symbol.tojson())["nodes"]
        layers = [node for node in nodes if node["op"] == "FullyConnected"]
        if not layers:
            raise ModelError(
                f"{source} cannot be a starting point: it has no FullyConnected layer to "
                "give the classes"
            )
        layer = layers[-1]
        attrs = layer.get("attrs", {})
        weight = nodes[layer["inputs"][1][0]]["name"]
        if not weight.endswith("weight"):
            raise ModelError(
                f"{source} cannot be a starting point: its layer {layer['name']} "
                f"has no weight parameter"
            )
        features = symbol.get_internals()[f"{layer['name']}_output"].get_children()[0]
        extra = [name for name in features.list_arguments() if name.endswith("_label")]
        if extra:
            raise ModelError(
                f"{source} cannot be a starting point: its features need inputs other than "
                f"{DATA_NAME!r} ({', '.join(extra)})"
            )
        return cls(
            backbone=features.tojson(),
            head=weight[: -len("weight")].rstrip("_"),
            head_bias=attrs.get("no_bias", "False") not in ("True", "true", "1"),
            head_flatten=attrs.get("flatten", "True") not in ("False", "false", "0"),
            num_layers=_depth(nodes),
        )

    @classmethod
    def read(cls, path: Path) -> SymbolicNetwork:
        """The record written by :meth:`save`; RunError when it is missing or damaged."""
        try:
            if path.stat().st_size > MAX_NETWORK_FILE_BYTES:
                raise RunError(f"{path} is too large to be a network record")
            values = json.loads(path.read_text(encoding="utf-8"))
            record = cls(**{key: values[key] for key in cls.__dataclass_fields__})
            for key, kind in _RECORD_TYPES.items():
                if type(getattr(record, key)) is not kind:
                    raise ValueError(f"its {key!r} is not {kind.__name__}")
            return record
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise RunError(f"cannot rebuild the run's network from {path}: {error}") from None

    def save(self, path: Path) -> None:
        """Write the record atomically."""
        atomic_write_json(path, {key: getattr(self, key) for key in self.__dataclass_fields__})

    def build(self, num_classes: int, image_shape: tuple[int, int, int], multi_label: bool) -> Any:
        """A new network of this structure (uninitialised) with ``num_classes`` outputs."""
        backbone = mxnet().sym.load_json(self.backbone)
        _shapes, features_shape = _backbone_shapes(backbone, image_shape)
        in_units = 1
        for size in features_shape[1:] if self.head_flatten else features_shape[-1:]:
            in_units *= size
        return _symbolic_class()(self, backbone, num_classes, in_units, image_shape, multi_label)

    def check_weights(
        self, arrays: dict[str, Any], image_shape: tuple[int, int, int], source: str
    ) -> None:
        """Refuse weights that do not fit the backbone at ``image_shape`` (e.g. other channels)."""
        shapes, _features = _backbone_shapes(mxnet().sym.load_json(self.backbone), image_shape)
        for name, needed in shapes.items():
            if name not in arrays:
                raise ModelError(f"{source} cannot be a starting point: it has no {name!r}")
            if tuple(arrays[name].shape) != needed:
                raise ModelError(
                    f"{source} does not fit {_shape_text(image_shape)} images: {name!r} is "
                    f"{tuple(arrays[name].shape)}, they need {needed}"
                )


def _backbone_shapes(
    backbone: Symbol, image_shape: tuple[int, int, int]
) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    """The shape of each parameter of ``backbone`` at ``image_shape``, and of its output."""
    mx = mxnet()
    try:
        args, (features,), aux = backbone.infer_shape(**{DATA_NAME: (1, *image_shape)})
    except mx.base.MXNetError:
        args = None
    if args is None:
        raise ModelError(f"the base model's network cannot take {_shape_text(image_shape)} images")
    shapes = dict(zip(backbone.list_arguments(), map(tuple, args)))
    shapes.update(zip(backbone.list_auxiliary_states(), map(tuple, aux)))
    shapes.pop(DATA_NAME)
    return shapes, tuple(features)


def _shape_text(shape: tuple[int, ...]) -> str:
    return ",".join(map(str, shape))


_RECORD_TYPES = {
    "backbone": str,
    "head": str,
    "head_bias": bool,
    "head_flatten": bool,
    "num_layers": int,
}


class StartingPoint:
    """Where one run's network comes from and how it gets its first weights."""

    def __init__(
        self,
        *,
        base: LoadedModel | None = None,
        base_path: Path | None = None,
        pretrained: Path | None = None,
        symbolic: SymbolicNetwork | None = None,
    ) -> None:
        self.base = base
        self.base_path = base_path
        self.pretrained = pretrained
        self.symbolic = symbolic

    @classmethod
    def for_new_run(
        cls, hp: HyperParameters, base_model: Path | None, pretrained: Path | None
    ) -> StartingPoint:
        """Check and read the model sources of a new run, before any work."""
        if base_model is not None and hp.use_pretrained_model:
            raise RunError(
                "choose either a base model or use_pretrained_model=1: both give the "
                "starting weights"
            )
        if hp.use_pretrained_model:
            return cls(pretrained=find_pretrained_weights(hp.num_layers, pretrained))
        if base_model is None:
            return cls.from_scratch(hp)
        return cls._of_base(Path(base_model), hp)

    @classmethod
    def from_scratch(cls, hp: HyperParameters) -> StartingPoint:
        """Fresh weights in SageMaker's pre-activation ResNet of ``hp.num_layers``."""
        symbol = resnet_symbol(hp.num_layers, num_classes=1)  # the head is rebuilt
        return cls(symbolic=SymbolicNetwork.of_symbol(symbol, "SageMaker's ResNet"))

    @classmethod
    def of_run(cls, run_dir: Path, info: RunInfo, hp: HyperParameters) -> StartingPoint:
        """The starting point of an existing run; the base model or weights are needed
        only when no epoch has finished yet."""
        symbolic = None if info.network is None else SymbolicNetwork.read(run_dir / info.network)
        if info.last_completed_epoch:
            return cls(symbolic=symbolic)
        if hp.use_pretrained_model:
            explicit = None if info.pretrained is None else Path(info.pretrained)
            return cls(pretrained=find_pretrained_weights(hp.num_layers, explicit))
        if info.base_model is None:
            return cls(symbolic=symbolic)
        base_path = Path(info.base_model)
        if not base_path.exists():
            raise RunError(
                f"{run_dir} stopped before its first epoch ended and its base model "
                f"{base_path} is gone: start a new run"
            )
        start = cls._of_base(base_path, hp)
        start.symbolic = symbolic
        return start

    @classmethod
    def _of_base(cls, path: Path, hp: HyperParameters) -> StartingPoint:
        if not path.exists():
            raise RunError(f"the base model {path} does not exist")
        try:
            base = open_model(path, input_shape=hp.shape)
        except ModelError as error:  # the run's images may differ from the model's own
            try:
                base = open_model(path)
            except ModelError:
                raise error from None
        arrays = {**base.arg_params, **base.aux_params}
        if _OUR_MARK in arrays:
            depth = _our_depth(set(arrays), hp)
            if depth is None:
                raise ModelError(
                    f"the base model {path} does not fit this run: it looks like one of this "
                    "app's models, but of no depth it builds"
                )
            if depth != hp.num_layers:
                raise ModelError(
                    f"the base model {path} is a ResNet-{depth} of this app, not a "
                    f"ResNet-{hp.num_layers}: set num_layers={depth}"
                )
            start = cls(base=base, base_path=path)
        else:
            symbolic = SymbolicNetwork.of_symbol(base.symbol, f"the base model {path}")
            symbolic.check_weights(arrays, hp.shape, f"the base model {path}")
            start = cls(base=base, base_path=path, symbolic=symbolic)
        start._check_labels(hp.is_multi_label)  # the data preparation checks the data's
        return start

    @property
    def network_file(self) -> str | None:
        """What ``run.json`` records as the run's network (None: our ``ImageClassifier``)."""
        return None if self.symbolic is None else NETWORK_FILE

    def _check_labels(self, multi_label: bool) -> None:
        """Refuse a base model whose kind of labels differs from the run's."""
        if self.base is not None and self.base.multi_label != multi_label:
            kinds = {True: "multi-label", False: "single-label"}
            raise ModelError(
                f"the base model {self.base_path} is {kinds[self.base.multi_label]} but the "
                f"data is {kinds[multi_label]}: start from a {kinds[multi_label]} model"
            )

    def warnings(self, hp: HyperParameters) -> list[str]:
        """What the user should know about the network before training starts."""
        symbolic = self.symbolic
        if symbolic is None or self.base is None or symbolic.num_layers == hp.num_layers:
            return []
        return [
            f"the network is the base model's (a ResNet-{symbolic.num_layers} by its layer "
            f"count): num_layers={hp.num_layers} does not change it"
        ]

    def build_network(self, hp: HyperParameters, multi_label: bool) -> HybridBlock:
        """The run's network, uninitialised."""
        if self.symbolic is not None:
            return self.symbolic.build(hp.num_classes, hp.shape, multi_label)
        return build_network(hp.num_layers, hp.num_classes, hp.shape, multi_label=multi_label)

    def save(self, run_dir: Path) -> None:
        """Record a network built from a symbol in the run folder (atomically)."""
        if self.symbolic is not None:
            self.symbolic.save(run_dir / NETWORK_FILE)

    def load_initial_weights(self, net: HybridBlock) -> list[str]:
        """Load the weights the run starts from into ``net`` (initialised, shapes known);
        the line saying which layers were loaded and which are new, if any."""
        if self.pretrained is not None:
            load_pretrained(net, self.pretrained)
            return [_loaded_line(net, self.pretrained.name, head_loaded=False)]
        if self.base is None:
            return []
        base = self.base
        arrays = {**base.arg_params, **base.aux_params}
        head = net.output.collect_params()
        same_classes = base.num_classes == net.num_classes
        params = net.collect_params()
        if not same_classes:
            params = {name: param for name, param in params.items() if name not in head}
            arrays = {name: array for name, array in arrays.items() if name in params}
        elif self.symbolic is not None:  # the model's own head: its name is kept
            arrays = {name: array for name, array in arrays.items() if name in params}
        assign_arrays(params, arrays, f"the base model {self.base_path}")
        name = self.base_path.name if self.base_path else "the base model"
        return [_loaded_line(net, name, head_loaded=same_classes, base_classes=base.num_classes)]


def _loaded_line(
    net: HybridBlock, source: str, *, head_loaded: bool, base_classes: int | None = None
) -> str:
    """E.g. "Started from model.tar.gz: 40 layers loaded, new head fc1 for 5 classes (the
    model had 10)"."""
    features = _layer_count(net, set(net.features.collect_params()))
    head = _head_name(net)
    if head_loaded:
        return (
            f"Started from {source}: all {features + 1} layers loaded, head {head} "
            f"included ({net.num_classes} classes)"
        )
    had = "" if base_classes is None else f" (the model had {base_classes})"
    return (
        f"Started from {source}: {features} layers loaded, new head {head} for "
        f"{net.num_classes} classes{had}"
    )


def _layer_count(net: HybridBlock, names: set[str]) -> int:
    """How many operators of the network use one of the parameters ``names``."""
    nodes = json.loads(logits_symbol(net).tojson())["nodes"]
    return sum(
        1
        for node in nodes
        if node["op"] != "null" and any(nodes[i[0]]["name"] in names for i in node["inputs"])
    )


def _head_name(net: HybridBlock) -> str:
    symbolic = getattr(net, "symbolic", None)
    return "output" if symbolic is None else symbolic.head


def _depth(nodes: list[dict[str, Any]]) -> int:
    """A ResNet's depth by its weighted layers: convolutions and fully connected layers,
    without the shortcut (projection) convolutions."""
    return sum(
        1
        for node in nodes
        if node["op"] == "FullyConnected"
        or (node["op"] == "Convolution" and not node["name"].endswith("_sc"))
    )


def _our_depth(names: set[str], hp: HyperParameters) -> int | None:
    """The depth of our ``ImageClassifier`` whose parameters (but the head) are ``names``."""
    for depth in (hp.num_layers, *IMAGENET_DEPTHS, *CIFAR_DEPTHS):
        net = build_network(depth, 1, hp.shape)
        head = set(net.output.collect_params())
        if set(net.collect_params()) - head == names - head:
            return depth
    return None


@functools.cache
def _symbolic_class() -> type:
    mx = mxnet()

    class SymbolicClassifier(mx.gluon.HybridBlock):
        """A base model's symbol up to its pooled features (``features``, a ``SymbolBlock``)
        and a ``Dense`` head (``output``, named as the model's last layer).

        Attributes ``num_layers``, ``num_classes``, ``image_shape`` and ``multi_label`` as
        the ``ImageClassifier``'s; ``symbolic`` is the :class:`SymbolicNetwork` record.
        """

        def __init__(
            self,
            symbolic: SymbolicNetwork,
            backbone: Symbol,
            num_classes: int,
            in_units: int,
            image_shape: tuple[int, int, int],
            multi_label: bool,
        ) -> None:
            super().__init__(prefix="")
            self.symbolic = symbolic
            self.num_layers = symbolic.num_layers
            self.num_classes = num_classes
            self.image_shape = tuple(image_shape)
            self.multi_label = multi_label
            with self.name_scope(), warnings.catch_warnings():
                # Gluon cannot tell the input's type before the first call; it is float32.
                warnings.filterwarnings("ignore", "Cannot decide type", UserWarning)
                self.features = mx.gluon.SymbolBlock(backbone, mx.sym.var(DATA_NAME))
            for name, param in self.features.collect_params().items():
                # A symbol's parameters have no initialiser of their own, and Xavier
                # refuses vectors: what Gluon's layers would give them.
                ones = name.endswith(("_gamma", "_var"))
                if ones or name.endswith(("_beta", "_bias", "_mean")):
                    param.init = mx.init.One() if ones else mx.init.Zero()
                self.output = mx.gluon.nn.Dense(
                    num_classes,
                    in_units=in_units,
                    use_bias=symbolic.head_bias,
                    flatten=symbolic.head_flatten,
                    prefix=f"{symbolic.head}_",
                )

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            return self.output(self.features(x))

    return SymbolicClassifier
