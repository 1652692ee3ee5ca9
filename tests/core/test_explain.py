"""Grad-CAM on a tiny network trained to tell a red square from a green one, wherever it is
(the heatmap must sit on the square), on the networks training builds and on other model
kinds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from inference_fixtures import write_sagemaker_archive

from imgcls_desktop.core.artifacts import ModelError, load_into, save_checkpoint
from imgcls_desktop.core.explain import explainable_network, grad_cam, overlay
from imgcls_desktop.core.hyperparams import HyperParameters, load_hyperparameters
from imgcls_desktop.core.models import LoadedModel, open_model
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.core.training.network import build_network
from imgcls_desktop.core.training.run import HYPERPARAMETERS_FILE, read_run
from imgcls_desktop.core.training.starting_point import StartingPoint

SIZE = 48
SIDE = 16
COLOURS = {"green": (40, 220, 40), "red": (40, 40, 230)}  # BGR, in class id order
Box = tuple[int, int]  # top, left of the square


def square_image(rng: np.random.Generator, colour: tuple[int, int, int]) -> tuple[np.ndarray, Box]:
    """A dark noisy BGR image with a bright square somewhere in a random quadrant."""
    image = rng.normal(50, 20, (SIZE, SIZE, 3))
    quadrant = int(rng.integers(0, 4))
    half = SIZE // 2
    top = quadrant // 2 * half + int(rng.integers(0, half - SIDE + 1))
    left = quadrant % 2 * half + int(rng.integers(0, half - SIDE + 1))
    image[top : top + SIDE, left : left + SIDE] = np.array(colour) + rng.normal(
        0, 10, (SIDE, SIDE, 3)
    )
    return np.clip(image, 0, 255).astype(np.uint8), (top, left)


def rgb_pixels(image: np.ndarray) -> np.ndarray:
    """Raw RGB pixels, H x W x C float32."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """ResNet-20 trained 3 epochs on 2 x 40 images (full validation accuracy)."""
    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / "images" / name).mkdir(parents=True)
        for number in range(40):
            image, _box = square_image(rng, colour)
            cv2.imwrite(str(root / "images" / name / f"{number:03d}.png"), image)
    hp = HyperParameters.from_mapping(
        {
            "num_layers": 20,
            "image_shape": f"3,{SIZE},{SIZE}",
            "mini_batch_size": 16,
            "epochs": 3,
            "optimizer": "adam",
            "learning_rate": 0.001,
        }
    )
    result = train(TrainingJob(hp, root / "images", root / "run", devices="cpu"))
    assert result.best_val_accuracy == 1.0
    return open_model(root / "run")


@pytest.fixture(scope="module")
def net(model: LoadedModel):
    return explainable_network(model)


def test_the_heat_sits_on_the_square(net) -> None:
    rng = np.random.default_rng(99)
    on_the_square = 0
    for number in range(12):
        image, (top, left) = square_image(rng, list(COLOURS.values())[number % 2])
        heat = grad_cam(net, rgb_pixels(image))
        assert heat.shape == (SIZE, SIZE) and heat.dtype == np.float32
        assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
        inside = np.zeros(heat.shape, dtype=bool)
        inside[top : top + SIDE, left : left + SIDE] = True
        on_the_square += heat[inside].mean() > 2 * heat[~inside].mean()
    assert on_the_square >= 11


def test_layouts_and_model_kinds_give_the_same_heatmap(net, model: LoadedModel) -> None:
    image, _box = square_image(np.random.default_rng(5), COLOURS["red"])
    pixels = rgb_pixels(image)
    heat = grad_cam(net, pixels)
    np.testing.assert_allclose(grad_cam(net, pixels.transpose(2, 0, 1)), heat, atol=1e-6)
    np.testing.assert_allclose(grad_cam(model, pixels), heat, atol=1e-6)
    # The predicted class (red: id 1) is the default.
    np.testing.assert_allclose(grad_cam(net, pixels, class_id=1), heat, atol=1e-6)


def test_bad_class_ids_and_shapes_are_refused(net) -> None:
    pixels = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="class_id"):
        grad_cam(net, pixels, class_id=2)
    with pytest.raises(ValueError, match="shape"):
        grad_cam(net, np.zeros((SIZE, SIZE), dtype=np.float32))


def test_the_network_a_run_trains_gives_the_heatmap_of_its_model(net, model: LoadedModel) -> None:
    run_dir = model.path
    hp = load_hyperparameters(run_dir / HYPERPARAMETERS_FILE)
    gluon_net = StartingPoint.of_run(run_dir, read_run(run_dir), hp).build_network(hp, False)
    gluon_net.initialize()
    gluon_net(mxnet().nd.zeros((1, 3, SIZE, SIZE)))
    load_into(gluon_net, run_dir, model.epoch)
    image, _box = square_image(np.random.default_rng(7), COLOURS["green"])
    pixels = rgb_pixels(image)
    np.testing.assert_allclose(grad_cam(gluon_net, pixels), grad_cam(net, pixels), atol=1e-5)


def test_our_gluon_image_classifier_gives_the_heatmap_of_its_saved_model(tmp_path: Path) -> None:
    mx = mxnet()
    gluon_net = build_network(20, 2, (3, SIZE, SIZE))
    gluon_net.initialize(mx.init.Xavier())
    gluon_net(mx.nd.zeros((1, 3, SIZE, SIZE)))
    save_checkpoint(tmp_path, gluon_net, 1, batch_size=1)
    saved = open_model(tmp_path)
    pixels = np.random.default_rng(3).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    heat = grad_cam(gluon_net, pixels, class_id=1)
    assert heat.max() > 0
    np.testing.assert_allclose(heat, grad_cam(saved, pixels, class_id=1), atol=1e-5)


def test_a_sagemaker_model_is_explained_too(tmp_path: Path) -> None:
    model = open_model(write_sagemaker_archive(tmp_path))
    pixels = np.random.default_rng(0).uniform(0, 255, (20, 30, 3)).astype(np.float32)
    heat = grad_cam(model, pixels, class_id=2)
    assert heat.shape == (20, 30)
    assert heat.min() >= 0 and heat.max() <= 1


def test_a_network_without_global_pooling_is_refused(tmp_path: Path) -> None:
    mx = mxnet()
    symbol = mx.sym.SoftmaxOutput(
        mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc"), name="softmax"
    )
    weights = {"fc_weight": mx.nd.zeros((2, 3 * 8 * 8)), "fc_bias": mx.nd.zeros((2,))}
    mx.model.save_checkpoint(str(tmp_path / "flat"), 1, symbol, weights, {})
    model = open_model(tmp_path / "flat", input_shape=(3, 8, 8))
    with pytest.raises(ModelError, match="global pooling"):
        explainable_network(model)


def test_the_overlay_is_the_image_in_bgr_coloured_red_where_hot_and_blue_where_cold() -> None:
    pixels = np.full((3, 4, 6), 128.0)
    pixels[0] = 250.0  # RGB: a reddish grey
    heatmap = np.zeros((4, 6), dtype=np.float32)
    heatmap[:, 3:] = 1.0
    blended = overlay(pixels, heatmap)
    assert blended.shape == (4, 6, 3) and blended.dtype == np.uint8
    cold, hot = blended[0, 0].astype(int), blended[0, 5].astype(int)
    assert cold[0] > cold[2] - 60  # blue mixed into a red image
    assert hot[2] > hot[0] + 100  # red (BGR: last) where the network looked
    grey = overlay(np.full((1, 4, 6), 90.0), heatmap)
    assert grey.shape == (4, 6, 3)
    with pytest.raises(ValueError, match="does not fit"):
        overlay(pixels, np.zeros((2, 2)))
