"""MXNet's ONNX exporter works without onnx's own ``onnx.mapping`` (gone since onnx 1.16)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from imgcls_desktop.core.onnx_compat import (
    TRANSLATED_OPSET,
    declare_translated_opset,
    provide_onnx_mapping,
)

# The dtypes MXNet's exporter looks up (weights, constants, inputs and outputs).
EXPORTED_DTYPES = ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool")


# onnx < 1.16 keeps its own tables, which warn on every look-up.
@pytest.mark.filterwarnings("ignore:`mapping.:DeprecationWarning")
def test_onnx_mapping_has_the_tables_mxnet_reads_whatever_the_onnx_version() -> None:
    provide_onnx_mapping()
    from onnx import mapping  # as _export_model.py reads it; the translations use onnx.mapping

    for name in EXPORTED_DTYPES:
        tensor_type = helper.np_dtype_to_tensor_dtype(np.dtype(name))
        assert onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(name)] == tensor_type
        assert mapping.TENSOR_TYPE_TO_NP_TYPE[tensor_type] == np.dtype(name)
    assert mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype("float32")] == TensorProto.FLOAT


def test_mxnet_exports_and_onnx_runtime_agrees_when_onnx_lacks_its_mapping(
    tmp_path: Path,
) -> None:
    # onnx.mapping is hidden as onnx >= 1.16 lacks it, so this runs on every onnx version.
    code = """
        import sys
        import numpy as np
        import onnx, onnxruntime
        if hasattr(onnx, "mapping"):
            del onnx.mapping
        sys.modules["onnx.mapping"] = None
        from imgcls_desktop.core.onnx_compat import declare_translated_opset, provide_onnx_mapping
        from imgcls_desktop.core.runtime import mxnet

        provide_onnx_mapping()
        mx = mxnet()
        data = mx.sym.var("data")
        net = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), name="conv")
        net = mx.sym.FullyConnected(mx.sym.relu(net), num_hidden=3, flatten=True, name="fc")
        net = mx.sym.softmax(net)
        rng = np.random.default_rng(0)
        params = {
            name: mx.nd.array(rng.normal(0, 0.1, shape))
            for name, shape in zip(net.list_arguments(), net.infer_shape(data=(2, 3, 8, 8))[0])
            if name != "data"
        }
        x = rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
        path = sys.argv[1]
        mx.onnx.export_model(net, params, in_shapes=[x.shape], in_types=[np.float32],
                             onnx_file_path=path)
        model = onnx.load(path)
        declare_translated_opset(model)  # else onnx's newest, which ONNX Runtime may not know
        session = onnxruntime.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        got = session.run(None, {"data": x})[0]
        expected = net.eval(mx.cpu(), data=mx.nd.array(x), **params)[0].asnumpy()
        print(type(sys.modules["onnx.mapping"].NP_TYPE_TO_TENSOR_TYPE).__name__)
        print(float(np.abs(got - expected).max()))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path / "tiny.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table_type, difference = result.stdout.split()
    assert table_type == "dict"  # built here, not onnx's DeprecatedWarningDict
    assert float(difference) < 1e-5


def test_an_export_declares_the_opset_mxnet_translated_for() -> None:
    node = helper.make_node("Relu", ["data"], ["out"])
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [node], "g", [value("data", TensorProto.FLOAT, [1])], [value("out", TensorProto.FLOAT, [1])]
    )
    model = helper.make_model(graph)  # stamped with the installed onnx's newest opset
    declare_translated_opset(model)

    assert [(opset.domain, opset.version) for opset in model.opset_import] == [
        ("", TRANSLATED_OPSET)
    ]
    assert model.ir_version == 7  # the IR version that brought opset 13
    onnx.checker.check_model(model, full_check=True)
