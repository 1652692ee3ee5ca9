"""MXNet 1.9.1's ONNX exporter on every onnx release we support (1.14 to the newest).

The exporter (``mxnet/onnx/mx2onnx``) reads two tables of ``onnx.mapping``, a module onnx
1.16 removed in favour of functions of ``onnx.helper``:

- ``NP_TYPE_TO_TENSOR_TYPE`` (numpy dtype to ``TensorProto`` type): ``_export_model.py``
  (the input types), ``_export_onnx.py`` (the output types) and
  ``_op_translations/_op_translations_opset12.py`` and ``..._opset13.py`` (weights and
  constants);
- ``TENSOR_TYPE_TO_NP_TYPE`` (the reverse): ``_export_onnx.py`` (the input dtypes given to
  MXNet's type inference) and ``_op_translations_opset12.py`` (the graph's inputs).

It reads no other name of ``onnx.mapping`` (MXNet's ONNX *importer*,
``mxnet.contrib.onnx.onnx2mx``, also reads ``TENSOR_TYPE_TO_NP_TYPE``; we do not use it).
:func:`provide_onnx_mapping` builds both tables from ``onnx.helper`` where ``onnx.mapping``
is missing, and changes nothing where it exists. The exporter also stamps its file with the
newest opset and IR version of the installed onnx, though its translations are written for
opsets 12 and 13: :func:`declare_translated_opset` declares what the file holds.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnx import ModelProto

#: The newest opset MXNet 1.9.1 has translations for (it falls back to them from any newer).
TRANSLATED_OPSET = 13


@functools.cache
def provide_onnx_mapping() -> None:
    """Make ``onnx.mapping`` importable with the tables MXNet's exporter reads, where the
    installed onnx (>= 1.16) no longer has it."""
    import onnx
    from onnx import helper

    if importlib.util.find_spec("onnx.mapping") is not None:
        return
    tensor_to_numpy = {
        tensor_type: helper.tensor_dtype_to_np_dtype(tensor_type)
        for tensor_type in helper.get_all_tensor_dtypes()
    }
    mapping = types.ModuleType("onnx.mapping", "onnx.mapping's tables for MXNet's exporter.")
    mapping.TENSOR_TYPE_TO_NP_TYPE = tensor_to_numpy  # type: ignore[attr-defined]
    mapping.NP_TYPE_TO_TENSOR_TYPE = {  # type: ignore[attr-defined]
        dtype: helper.np_dtype_to_tensor_dtype(dtype) for dtype in tensor_to_numpy.values()
    }
    sys.modules["onnx.mapping"] = mapping
    onnx.mapping = mapping  # type: ignore[attr-defined]


def declare_translated_opset(model: ModelProto) -> None:
    """Declare the opset MXNet's translations are written for, and the oldest IR version
    that has it, instead of the installed onnx's newest: the file then says what it holds
    and loads in ONNX Runtime releases older than that onnx."""
    from onnx import helper

    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = TRANSLATED_OPSET
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
