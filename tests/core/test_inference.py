"""The Predictor: probabilities as plain MXNet computes them, and preprocessing that matches
what validation did (so the accuracy training reported is what inference gets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from inference_fixtures import PLAIN_CLASSES, PLAIN_SHAPE, shared_run, write_plain_checkpoint

from imgcls_desktop.core.dataset.images import ImageError, decode_bgr
from imgcls_desktop.core.inference import Predictor, labels_above, top_k
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.preprocessing import Interpolation, Preprocessing
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.run import read_run

mx = mxnet()


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 2)


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _original_symbol_forward(predictor: Predictor, images: list[np.ndarray]) -> np.ndarray:
    """The model's own symbol (loss head, label input) run by a plain MXNet executor."""
    model = predictor.model
    batch = np.stack([predictor.preprocess(image) for image in images])
    label_shape = (len(batch), model.num_classes) if model.multi_label else (len(batch),)
    arguments = {
        "data": mx.nd.array(batch),
        "softmax_label": mx.nd.zeros(label_shape),
        **model.arg_params,
    }
    executor = model.symbol.bind(mx.cpu(), arguments, aux_states=model.aux_params)
    return executor.forward(is_train=False)[0].asnumpy()


@pytest.fixture
def plain_model(tmp_path: Path):
    return open_model(write_plain_checkpoint(tmp_path))


def test_probabilities_equal_plain_mxnet_on_the_original_symbol(plain_model) -> None:
    images = [_image(20, 30, seed) for seed in range(5)]
    predictor = Predictor(plain_model, device="cpu", batch_size=2)
    probabilities = predictor.predict(images)
    assert probabilities.shape == (5, PLAIN_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)

    expected = _original_symbol_forward(predictor, images)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(
        Predictor(plain_model, batch_size=8).predict(images), expected, atol=1e-6
    )


def test_paths_bytes_and_arrays_give_the_same_answer(plain_model, tmp_path: Path) -> None:
    image = _image(24, 40)
    path = tmp_path / "image.png"
    path.write_bytes(_png(image))
    rows = Predictor(plain_model).predict([image, _png(image), path, str(path)])
    np.testing.assert_array_equal(rows, np.repeat(rows[:1], 4, axis=0))
    assert Predictor(plain_model).predict([]).shape == (0, PLAIN_CLASSES)


def test_sagemaker_preprocessing_resizes_the_whole_image(plain_model) -> None:
    image = _image(20, 40)
    prepared = Predictor(plain_model).preprocess(_png(image))
    _channels, height, width = PLAIN_SHAPE
    expected = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    assert prepared.dtype == np.float32 and prepared.shape == PLAIN_SHAPE
    np.testing.assert_array_equal(prepared, expected[:, :, ::-1].transpose(2, 0, 1))


def test_record_iter_preprocessing_matches_image_record_iter_exactly(
    plain_model, tmp_path: Path
) -> None:
    """A ``.rec`` validated where it was: ``ImageRecordIter``'s resize and centre crop."""
    preprocessing = Preprocessing(3, 16, 16, shorter_side=20, interpolation=Interpolation.LINEAR)
    model = dataclasses.replace(plain_model, preprocessing=preprocessing)
    predictor = Predictor(model)
    for shape in ((30, 44), (44, 30)):
        image = _image(*shape)
        rec, idx = str(tmp_path / "one.rec"), str(tmp_path / "one.idx")
        writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
        writer.write_idx(0, mx.recordio.pack(mx.recordio.IRHeader(0, 0.0, 0, 0), _png(image)))
        writer.close()
        records = mx.io.ImageRecordIter(
            path_imgrec=rec, path_imgidx=idx, data_shape=(3, 16, 16), batch_size=1, resize=20
        )
        expected = records.next().data[0].asnumpy()[0]
        np.testing.assert_array_equal(predictor.preprocess(_png(image)), expected)


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """Photo-like: smooth colour fields plus fine sensor-like noise."""
    rng = np.random.default_rng(seed)
    fields = cv2.resize(
        rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (width, height), cv2.INTER_CUBIC
    )
    noise = rng.integers(-12, 13, (height, width, 3))
    return np.clip(fields + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("shape", "side", "interpolation", "decoded"),
    [
        ((3, 16, 16), None, Interpolation.LINEAR, (60, 80)),  # SageMaker's whole-image resize
        ((3, 32, 32), None, Interpolation.LINEAR, (60, 80)),
        ((3, 32, 32), 37, Interpolation.LINEAR, (60, 80)),  # ImageRecordIter's resize
        ((3, 32, 32), 37, Interpolation.PACKER, (60, 80)),
        ((3, 96, 96), 110, Interpolation.LINEAR, (120, 160)),
        ((3, 224, 224), 256, Interpolation.PACKER, (480, 640)),  # not twice as large: full
    ],
)
def test_a_large_jpeg_is_decoded_reduced_and_prepared_within_the_stated_bound(
    plain_model, shape, side, interpolation, decoded
) -> None:
    """At least twice the size needed, a JPEG is decoded at 1/2-1/8 scale; the prepared
    pixels stay within a mean of 4 (of 255) of a full decode's (module docstring)."""
    preprocessing = Preprocessing(*shape, shorter_side=side, interpolation=interpolation)
    predictor = Predictor(dataclasses.replace(plain_model, preprocessing=preprocessing))
    needed = {"shorter_side": side} if side else {"size": shape[:0:-1]}
    for seed in range(3):
        jpeg = cv2.imencode(".jpg", _photo(480, 640, seed), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        data = jpeg.tobytes()
        full = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)

        assert decode_bgr(data, **needed).shape == (*decoded, 3)
        reduced, exact = predictor.preprocess(data), predictor.preprocess(full)
        assert reduced.shape == exact.shape == shape
        assert np.abs(reduced - exact).mean() < 4


def test_run_predictions_reach_the_validation_accuracy_training_reported(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run_dir, result = shared_run(tmp_path_factory)
    data = read_run(run_dir).data
    reader = mx.recordio.MXIndexedRecordIO(str(data.val_idx), str(data.val_rec), "r")
    labels, payloads = [], []
    for key in reader.keys:
        header, payload = mx.recordio.unpack(reader.read_idx(key))
        labels.append(int(header.label))
        payloads.append(payload)
    reader.close()
    probabilities = Predictor(open_model(run_dir), batch_size=5).predict(payloads)
    predicted = probabilities.argmax(axis=1)
    assert len(set(predicted.tolist())) > 1  # not one class for every image
    correct = int((predicted == np.array(labels)).sum())
    assert abs(correct - result.best_val_accuracy * len(labels)) <= 1


def test_unreadable_bytes_raise_image_error(plain_model) -> None:
    with pytest.raises(ImageError):
        Predictor(plain_model).predict([b"not an image"])


def test_top_k_and_multi_label_sets(tmp_path: Path) -> None:
    probabilities = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    indices, values = top_k(probabilities, 2)
    np.testing.assert_array_equal(indices, [[1, 2], [0, 2]])
    np.testing.assert_allclose(values, [[0.7, 0.2], [0.5, 0.3]])
    assert top_k(probabilities, 10)[0].shape == (2, 3)
    assert labels_above(probabilities) == [[1], [0]]
    assert labels_above(probabilities, 0.25) == [[1], [0, 2]]

    model = open_model(write_plain_checkpoint(tmp_path, multi_label=True))
    predictor = Predictor(model)
    images = [_image(16, 16, seed) for seed in range(3)]
    rows = predictor.predict(images)
    assert rows.shape == (3, PLAIN_CLASSES) and ((rows >= 0) & (rows <= 1)).all()
    np.testing.assert_allclose(rows, _original_symbol_forward(predictor, images), atol=1e-6)
