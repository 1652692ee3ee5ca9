"""A small, real-looking sample data set: shapes in varied colours on textured backgrounds.

Every class is one kind of shape. Colours, sizes, rotations, positions, backgrounds,
distractor lines, occluding bands and noise are drawn from the same distributions for every
class, so only the outline tells the classes apart: a network has to learn shapes, which
takes several epochs rather than one. Images are drawn at twice their size with
anti-aliasing, then shrunk, which gives natural soft edges.
"""

from __future__ import annotations

import colorsys
import math
import os
from pathlib import Path

import cv2
import numpy as np

from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "hexagon",
    "ellipse",
    "crescent",
    "arrow",
)
"""The shape kinds, in the order classes are taken from (``classes=4``: the first four)."""

MIN_SIZE = 16
_SUPERSAMPLE = 2
_JPEG_QUALITY = 90
_SHIFT = 4  # fixed-point fraction bits for sub-pixel polygon vertices
# How hard the images are. Measured on the default set (4 x 100 images of 64 px; a ResNet-20
# from scratch, Adam, batch 32, validated on 200 images of another seed): chance for two
# epochs, about 45% after five, 65-80% after ten to fifteen. With vivid, busy backgrounds
# (shapes lighter or darker than the background at random) it stayed at chance for 30.
_MIN_CONTRAST = 120.0  # RGB distance between a shape and its background's mean colour
_VIVID_SATURATION = (0.35, 1.0)  # shapes, occluders and distractor lines
_VIVID_VALUE = (0.65, 1.0)
_BACKGROUND_SATURATION = (0.0, 0.3)
_BACKGROUND_VALUE = (0.1, 0.45)
_BLOB_STRENGTH = (5.0, 20.0)  # amplitude of the background's colour blobs
_MAX_LINES = 2  # distractor lines on the background
_MAX_LINE_WIDTH = 1  # pixels, in the final image
_OCCLUDE_CHANCE = 0.1  # a band of colour across the shape
_CROP_CHANCE = 0.1  # the shape runs off the edge
_NOISE_SIGMA = (2.0, 5.0)  # sensor-like noise, added after shrinking


def generate_sample_dataset(
    out_dir: Path,
    *,
    classes: int = 4,
    per_class: int = 100,
    size: int = 64,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> Path:
    """Write ``out_dir/<shape>/<shape>_<nnnn>.jpg``, ``per_class`` images per shape class.

    The same arguments give the same bytes. ``out_dir`` must be new or empty, so a sample
    set is never mixed into other images. Each file is written under a hidden temporary
    name and renamed, so a cancelled run (:class:`~imgcls_desktop.core.jobs.Cancelled`)
    leaves only complete images. Returns ``out_dir``.
    """
    if not 2 <= classes <= len(SHAPES):
        raise ValueError(
            f"the sample data set has 2 to {len(SHAPES)} classes (one per shape: "
            f"{', '.join(SHAPES)}); {classes} were asked for"
        )
    if per_class < 1:
        raise ValueError(f"images per class must be at least 1, not {per_class}")
    if size < MIN_SIZE:
        raise ValueError(f"image size must be at least {MIN_SIZE} pixels, not {size}")
    if seed < 0:
        raise ValueError(f"the seed must be zero or positive, not {seed}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: choose a new or empty folder")

    total = classes * per_class
    progress(0, total)
    for class_index, shape in enumerate(SHAPES[:classes]):
        folder = out_dir / shape
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(per_class):
            check_cancel(cancel)
            # One generator per image: an image does not depend on how many others exist.
            rng = np.random.default_rng([seed, class_index, number])
            _write_jpeg(folder / f"{shape}_{number:04d}.jpg", render_shape(shape, size, rng))
            progress(class_index * per_class + number + 1, total)
    return out_dir


def render_shape(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size`` x ``size`` BGR image of a shape on a random background."""
    canvas = size * _SUPERSAMPLE
    background = _background(canvas, rng)
    colour = _contrasting_colour(np.array(cv2.mean(background)[:3]), rng)
    fill = colour + _gradient(canvas, rng) * rng.uniform(-40.0, 40.0)
    mask, centre, radius = _shape_mask(shape, canvas, rng)
    image = cv2.blendLinear(fill, background, mask, 1.0 - mask)
    image = cv2.add(image, 0.0, dtype=cv2.CV_8U)  # rounds and saturates
    if rng.random() < _OCCLUDE_CHANCE:
        _occlude(image, centre, radius, rng)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    noise = rng.normal(0.0, rng.uniform(*_NOISE_SIGMA), image.shape).astype(np.float32)
    return cv2.add(image.astype(np.float32), noise, dtype=cv2.CV_8U)


def _random_colour(
    rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]
) -> np.ndarray:
    """A colour of any hue with saturation and value (brightness) in the given ranges."""
    hue = rng.uniform(0.0, 1.0)
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(*saturation), rng.uniform(*value))
    return np.array(rgb, dtype=np.float32) * 255.0


def _vivid_colour(rng: np.random.Generator) -> np.ndarray:
    """A colour for shapes, occluders and distractor lines."""
    return _random_colour(rng, _VIVID_SATURATION, _VIVID_VALUE)


def _contrasting_colour(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour far enough from the background's mean to be seen (a few tries)."""
    colour = _vivid_colour(rng)
    for _ in range(20):
        if np.linalg.norm(colour - background) >= _MIN_CONTRAST:
            break
        colour = _vivid_colour(rng)
    return colour


def _gradient(canvas: int, rng: np.random.Generator) -> np.ndarray:
    """A linear ramp from 0 to 1 across the canvas in a random direction, shape (H, W, 1)."""
    angle = rng.uniform(0.0, 2.0 * math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    coords = np.arange(canvas, dtype=np.float32) / (canvas - 1)
    ramp = coords[None, :] * dx + coords[:, None] * dy - (min(dx, 0.0) + min(dy, 0.0))
    return ramp[..., None] / (abs(dx) + abs(dy))


def _background(canvas: int, rng: np.random.Generator) -> np.ndarray:
    """A gradient between two colours, low-frequency colour blobs and distractor lines."""
    first = _random_colour(rng, _BACKGROUND_SATURATION, _BACKGROUND_VALUE)
    second = _random_colour(rng, _BACKGROUND_SATURATION, _BACKGROUND_VALUE)
    image = first + _gradient(canvas, rng) * (second - first)
    cells = int(rng.integers(3, 7))
    blobs = rng.uniform(-1.0, 1.0, (cells, cells, 3)).astype(np.float32)
    blobs = cv2.resize(blobs, (canvas, canvas), interpolation=cv2.INTER_CUBIC)
    image = cv2.add(image, blobs * rng.uniform(*_BLOB_STRENGTH), dtype=cv2.CV_8U)
    for _ in range(int(rng.integers(0, _MAX_LINES + 1))):
        start, end = rng.integers(0, canvas, 2), rng.integers(0, canvas, 2)
        thickness = int(rng.integers(1, _MAX_LINE_WIDTH * _SUPERSAMPLE + 1))
        colour = tuple(float(c) for c in _vivid_colour(rng))
        cv2.line(
            image, tuple(map(int, start)), tuple(map(int, end)), colour, thickness, cv2.LINE_AA
        )
    return image.astype(np.float32)


def _occlude(
    image: np.ndarray, centre: np.ndarray, radius: float, rng: np.random.Generator
) -> None:
    """Draw a thick band of a random colour across part of the shape, in place."""
    through = centre + rng.uniform(-0.6, 0.6, 2) * radius
    angle = rng.uniform(0.0, math.pi)
    reach = radius * rng.uniform(0.5, 1.5) * np.array([math.cos(angle), math.sin(angle)])
    thickness = max(1, int(image.shape[0] * rng.uniform(0.06, 0.15)))
    colour = tuple(float(c) for c in _vivid_colour(rng))
    start, end = (tuple(map(int, through + sign * reach)) for sign in (-1, 1))
    cv2.line(image, start, end, colour, thickness, cv2.LINE_AA)


def _circle(radius: float = 1.0, centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    angles = np.linspace(0.0, 2.0 * math.pi, 72, endpoint=False)
    return np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], 1)


def _regular(corners: int, inner: float | None = None) -> np.ndarray:
    """A regular polygon on the unit circle; with ``inner``, a star with that inner radius."""
    points = corners * 2 if inner else corners
    angles = np.arange(points) * 2.0 * math.pi / points - math.pi / 2.0
    radii = np.where(np.arange(points) % 2 == 1, inner, 1.0) if inner else np.ones(points)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)


def _cross(half_width: float) -> np.ndarray:
    w = half_width
    half = np.array([(w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1)], dtype=np.float64)
    return np.concatenate([half, -half])  # the other half is the same turned by 180 degrees


def _arrow(half_width: float) -> np.ndarray:
    w = half_width
    return np.array(
        [(-1, -w), (0.2, -w), (0.2, -0.55), (1, 0), (0.2, 0.55), (0.2, w), (-1, w)],
        dtype=np.float64,
    )


def _outline(shape: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """The shape's outer polygon and optional hole, within the unit circle."""
    if shape == "circle":
        return _circle(), None
    if shape == "square":
        return _regular(4), None
    if shape == "triangle":
        return _regular(3), None
    if shape == "star":
        return _regular(5, inner=rng.uniform(0.38, 0.5)), None
    if shape == "cross":
        return _cross(rng.uniform(0.22, 0.32)), None
    if shape == "ring":
        return _circle(), _circle(rng.uniform(0.45, 0.65))
    if shape == "hexagon":
        return _regular(6), None
    if shape == "ellipse":
        return _circle() * (1.0, rng.uniform(0.45, 0.65)), None
    if shape == "crescent":
        return _circle(), _circle(rng.uniform(0.8, 0.9), (rng.uniform(0.35, 0.5), 0.0))
    if shape == "arrow":
        return _arrow(rng.uniform(0.15, 0.25)), None
    raise ValueError(f"unknown shape {shape!r}; the shapes are {', '.join(SHAPES)}")


def _shape_mask(
    shape: str, canvas: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float]:
    """Coverage (0..1) of a randomly sized, stretched, rotated and placed shape.

    Returns the mask with the shape's centre and radius in canvas pixels.
    """
    outer, hole = _outline(shape, rng)
    radius = canvas * rng.uniform(0.25, 0.70) / 2.0
    stretch = np.array([1.0, rng.uniform(0.9, 1.1)])
    angle = rng.uniform(0.0, 2.0 * math.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    # Now and then the shape runs off the edge of the image.
    margin = radius * (0.4 if rng.random() < _CROP_CHANCE else 0.95)
    centre = rng.uniform(margin, canvas - margin, 2)

    def to_pixels(points: np.ndarray) -> np.ndarray:
        placed = (points * stretch) @ rotation.T * radius + centre
        return np.round(placed * (1 << _SHIFT)).astype(np.int32)

    mask = np.zeros((canvas, canvas), dtype=np.uint8)
    cv2.fillPoly(mask, [to_pixels(outer)], 255, cv2.LINE_AA, _SHIFT)
    if hole is not None:
        cv2.fillPoly(mask, [to_pixels(hole)], 0, cv2.LINE_AA, _SHIFT)
    return mask.astype(np.float32) / 255.0, centre, radius


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    """Encode and write atomically: a hidden temporary name, then a rename."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise OSError(f"could not encode {path.name} as JPEG")
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(encoded.tobytes())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
