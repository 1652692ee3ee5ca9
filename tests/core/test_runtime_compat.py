"""MXNet 1.9.1 works under whatever numpy (1.21-2.x) and Python (3.9-3.13) is installed."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from imgcls_desktop.core import runtime
from imgcls_desktop.core.runtime import mxnet

REPOSITORY = Path(__file__).resolve().parents[2]


def _run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        timeout=240,  # a fresh MXNet import on a loaded machine
    )
    return result.stdout.strip().splitlines()[-1]


def test_a_tiny_network_learns_a_step() -> None:
    mx = mxnet()
    net = mx.gluon.nn.Dense(2, in_units=3)
    net.initialize(mx.init.Constant(0.5))
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    data = mx.nd.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    label = mx.nd.array([0, 1])
    with mx.autograd.record():
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(data), label)
    loss.backward()
    # Equal outputs: each row's loss is log 2, and the weight gradient is (p - y)^T x.
    np.testing.assert_allclose(loss.asnumpy(), [np.log(2)] * 2, rtol=1e-5)
    expected_gradient = np.array([[-0.5, -0.5, -1.5], [0.5, 0.5, 1.5]])
    np.testing.assert_allclose(net.weight.grad().asnumpy(), expected_gradient, rtol=1e-5)
    trainer.step(batch_size=2)
    np.testing.assert_allclose(
        net.weight.data().asnumpy(), 0.5 - 0.1 * expected_gradient / 2, rtol=1e-5
    )


def test_records_round_trip_through_recordio_and_image_record_iter(tmp_path: Path) -> None:
    mx = mxnet()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(4)]
    rec, idx = tmp_path / "set.rec", tmp_path / "set.idx"
    writer = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "w")
    for key, image in enumerate(images):
        header = mx.recordio.IRHeader(0, float(key % 2), key, 0)
        writer.write_idx(key, mx.recordio.pack_img(header, image, quality=3, img_fmt=".png"))
    writer.close()

    reader = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "r")
    header, decoded = mx.recordio.unpack_img(reader.read_idx(3))
    reader.close()
    assert (header.label, header.id) == (1.0, 3)
    np.testing.assert_array_equal(decoded, images[3])

    batches = mx.io.ImageRecordIter(
        path_imgrec=str(rec), data_shape=(3, 8, 8), batch_size=4, preprocess_threads=1
    )
    batch = next(iter(batches))
    np.testing.assert_array_equal(batch.label[0].asnumpy(), [0, 1, 0, 1])
    rgb = np.stack([image[:, :, ::-1].transpose(2, 0, 1) for image in images])
    np.testing.assert_array_equal(batch.data[0].asnumpy(), rgb)


def test_a_label_vector_is_packed_as_mxnet_lays_it_out() -> None:
    mx = mxnet()
    packed = mx.recordio.pack(mx.recordio.IRHeader(0, [1.0, 0.0, 1.0], 7, 0), b"payload")
    labels = np.array([1.0, 0.0, 1.0], dtype=np.float32).tobytes()
    assert packed == struct.pack("IfQQ", 3, 0.0, 7, 0) + labels + b"payload"
    header, payload = mx.recordio.unpack(packed)
    assert (header.flag, list(header.label), payload) == (3, [1.0, 0.0, 1.0], b"payload")


def test_the_layer_adds_exactly_the_names_numpy_lacks() -> None:
    code = """
        import warnings
        import numpy as np
        from imgcls_desktop.core import runtime

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            missing = [n for n in runtime._REMOVED_NUMPY_NAMES if not hasattr(np, n)]
        before = dict(vars(np))
        added = runtime.restore_removed_numpy_names()
        new = [n for n in vars(np) if n not in before]
        kept = all(vars(np)[n] is value for n, value in before.items())
        version = tuple(int(part) for part in np.__version__.split(".")[:2])
        print(added == missing == new, kept, bool(added) == (version >= (1, 24)))
    """
    assert _run_python(code) == "True True True"


# Old numpy names MXNet reads, read here by name as MXNet does: (arguments, result).
_OLD_MEANINGS = {
    "alltrue": (([True, False],), False),
    "sometrue": (([False, True],), True),
    "product": (([2, 3],), 6),
    "round_": ((1.26, 1), 1.3),
    "in1d": (([[1, 2], [3, 4]], [2, 3]), [False, True, True, False]),
    "msort": (([[3, 1], [1, 2]],), [[1, 1], [3, 2]]),
    "trapz": (([1.0, 2.0, 3.0],), 4.0),
}


def test_restored_names_mean_what_they_meant() -> None:
    mxnet()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = {name: getattr(np, name) for name in runtime._REMOVED_NUMPY_NAMES}
        for name, (arguments, result) in _OLD_MEANINGS.items():
            assert np.asarray(old[name](*arguments)).tolist() == result, name
        with pytest.raises(RuntimeError, match="numpy_financial"):
            old["npv"](0.1, [1.0])
    assert [old["PINF"], old["NINF"], old["Inf"], old["PZERO"]] == [np.inf, -np.inf, np.inf, 0]
    assert np.isnan([old["NaN"], old["NAN"]]).all() and np.signbit(old["NZERO"])
    assert old["bool"] in (bool, np.bool_)


def test_mxnet_finds_distutils_where_python_has_none() -> None:
    """As on Python 3.12+ without setuptools' import hook (python -S, a frozen app)."""
    code = """
        import sys

        sys.modules["distutils"] = None  # import distutils: ModuleNotFoundError
        from imgcls_desktop.core.runtime import mxnet

        mx = mxnet()
        import distutils.version

        print(mx.__version__, "setuptools" in distutils.version.__file__)
    """
    assert _run_python(code) == "1.9.1 True"


def test_missing_setuptools_on_new_python_names_the_fix() -> None:
    code = """
        import sys

        sys.modules["distutils"] = sys.modules["setuptools"] = None
        from imgcls_desktop.core.runtime import mxnet

        try:
            mxnet()
        except ModuleNotFoundError as error:
            print(error)
    """
    assert "install setuptools" in _run_python(code)


def test_restoring_twice_adds_nothing_more() -> None:
    mxnet()
    assert runtime.restore_removed_numpy_names() == []
