"""Faithfulness and localisation metrics, in plain numpy.

Nothing here knows about TensorFlow or servers: every metric takes images,
heatmaps and the scores a model gave, so the same code scores an in-process
export, a remote server and (in the tests) Quantus' own maps.

- Deletion / Insertion (Petsiuk et al., 2018, "RISE"): pixels are replaced in
  the heatmap's order (most important first) by a blurred copy of the image
  (deletion), or revealed from the blurred copy (insertion); the area under
  the class probability curve over the fraction of pixels changed is the
  score. Lower deletion and higher insertion mean a more faithful map.
- Average Drop / Increase in Confidence (Chattopadhyay et al., 2018,
  "Grad-CAM++"): the class probability of the image masked by its own map
  (``image * map``) against the original's.
- ADCC (Poppi et al., 2021): harmonic mean of coherency, 1 - complexity and
  1 - average drop, per image.
- Pointing game (Zhang et al., 2016): whether the map's peak lies in the box.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "adcc",
    "auc",
    "average_drop",
    "blur",
    "coherency",
    "complexity",
    "increase_in_confidence",
    "masked_by_map",
    "perturbation_curve_inputs",
    "pixel_order",
    "pointing_game_hits",
]

Predict = Callable[[np.ndarray], np.ndarray]


def blur(images: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """Gaussian-blurred copies of uint8 ``[N, H, W, 3]`` images: the RISE baseline.

    A blurred image keeps colour and low frequencies, so removing pixels does
    not add the sharp edges a black baseline does (which models react to).
    """
    from PIL import Image, ImageFilter

    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, C]; got {images.dtype} {images.shape}")
    if sigma <= 0:
        return images.copy()
    return np.stack([np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma))) for image in images])


def pixel_order(heatmap: np.ndarray) -> np.ndarray:
    """Flat pixel indices from most to least important; ties keep raster order (stable sort)."""
    return np.argsort(-np.asarray(heatmap, np.float64).ravel(), kind="stable")


def perturbation_curve_inputs(
    image: np.ndarray, heatmap: np.ndarray, baseline: np.ndarray, steps: int, *, mode: str
) -> np.ndarray:
    """The ``steps + 1`` images of one deletion or insertion curve, ``[steps + 1, H, W, C]``.

    Step ``k`` has the ``round(k * H * W / steps)`` most important pixels taken
    from ``baseline`` (deletion) or from ``image`` on top of ``baseline``
    (insertion). Step 0 is the unchanged image (deletion) or the baseline (insertion).
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion'; got {mode!r}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    height, width = image.shape[:2]
    if heatmap.shape != (height, width) or baseline.shape != image.shape:
        raise ValueError(
            f"heatmap {heatmap.shape} and baseline {baseline.shape} must match the image {image.shape} (heatmap [H, W])"
        )
    order = pixel_order(heatmap)
    start, source = (image, baseline) if mode == "deletion" else (baseline, image)
    flat_start = start.reshape(height * width, -1)
    flat_source = source.reshape(height * width, -1)
    counts = np.round(np.linspace(0, height * width, steps + 1)).astype(int)
    out = np.empty((steps + 1, height * width, flat_start.shape[1]), image.dtype)
    for k, count in enumerate(counts):
        out[k] = flat_start
        chosen = order[:count]
        out[k, chosen] = flat_source[chosen]
    return out.reshape((steps + 1, *image.shape))


def auc(curve: np.ndarray) -> np.ndarray:
    """Area under curves sampled evenly over [0, 1] (trapezoids); ``curve`` is ``[..., steps + 1]``."""
    curve = np.asarray(curve, np.float64)
    steps = curve.shape[-1] - 1
    if steps < 1:
        raise ValueError("a curve needs at least two points")
    return (curve[..., :-1] + curve[..., 1:]).sum(axis=-1) / (2 * steps)


def masked_by_map(images: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """``image * map`` as uint8: what Average Drop and ADCC show the model."""
    masked = np.asarray(images, np.float32) * np.clip(np.asarray(heatmaps, np.float32), 0, 1)[..., None]
    return np.round(masked).astype(np.uint8)


def average_drop(original: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """Per image ``max(0, Y - O) / Y`` (0..1): how much class probability the map alone loses."""
    original = np.asarray(original, np.float64)
    drop = np.maximum(0.0, original - np.asarray(masked, np.float64))
    return np.divide(drop, original, out=np.zeros_like(drop), where=original > 0)


def increase_in_confidence(original: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """Per image whether the map alone scores higher than the whole image."""
    return np.asarray(masked, np.float64) > np.asarray(original, np.float64)


def coherency(heatmaps: np.ndarray, masked_heatmaps: np.ndarray) -> np.ndarray:
    """Per image ``(1 + Pearson(map, map of image * map)) / 2`` in [0, 1] (Poppi et al.).

    A constant map has no defined correlation; it counts as 0.5 (no evidence either way).
    """
    a = np.asarray(heatmaps, np.float64).reshape(len(heatmaps), -1)
    b = np.asarray(masked_heatmaps, np.float64).reshape(len(masked_heatmaps), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    pearson = np.divide((a * b).sum(axis=1), norms, out=np.zeros(len(a)), where=norms > 0)
    return (1.0 + pearson) / 2.0


def complexity(heatmaps: np.ndarray) -> np.ndarray:
    """Per image the mean of the map (L1 norm over pixels, maps in [0, 1]): 0 sparse, 1 everything."""
    return np.clip(np.asarray(heatmaps, np.float64), 0, 1).reshape(len(heatmaps), -1).mean(axis=1)


def adcc(coherency_: np.ndarray, complexity_: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Per image harmonic mean of coherency, 1 - complexity and 1 - average drop (0 if any is 0)."""
    parts = np.stack([coherency_, 1.0 - np.asarray(complexity_), 1.0 - np.asarray(drop)], axis=0).astype(np.float64)
    parts = np.clip(parts, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        inverse = np.where(parts > 0, 1.0 / np.where(parts > 0, parts, 1.0), np.inf).sum(axis=0)
    return np.where(np.isfinite(inverse), 3.0 / inverse, 0.0)


def pointing_game_hits(heatmaps: np.ndarray, boxes: np.ndarray, *, tolerance: int | None = 0) -> np.ndarray:
    """Per image whether the map's peak lies in its box ``(top, left, bottom, right)``, widened by ``tolerance``.

    ``tolerance`` widens each box by that many pixels on every side. ``None``
    uses the pointing game's own allowance (Zhang et al., 2016: 15 px at
    224 px) scaled to the map's size, e.g. 4 px at 64 px. Images whose box is
    missing (any NaN) are skipped by the caller.
    """
    hits = []
    for heatmap, (top, left, bottom, right) in zip(np.asarray(heatmaps), np.asarray(boxes)):
        margin = round(15 * heatmap.shape[0] / 224) if tolerance is None else tolerance
        row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        hits.append(top - margin <= row < bottom + margin and left - margin <= col < right + margin)
    return np.array(hits, bool)
