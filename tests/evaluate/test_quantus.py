"""Cross-check with an independent implementation: Quantus 0.6 (PixelFlipping, PointingGame, MPRT).

Both sides get the same maps, the same blurred baseline and the same number of
steps. The maps are the export's Grad-CAM maps, ranked after a tiny fixed jitter
so no two pixels tie: Quantus sorts with an unstable argsort, we with a stable
one, and tied pixels would otherwise be removed in different orders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import quantus
from quantus.helpers.model.tf_model import TensorFlowModel

from gradcam_serving.evaluate import blur, evaluate, pointing_game_hits, samples_from_arrays, similarity_per_step
from gradcam_serving.exporter import run_like_tf_serving

pytestmark = pytest.mark.slow

Shapes = Any  # the ``shapes`` fixture (tests/evaluate/conftest.py)
COUNT, STEPS, SIGMA = 4, 16, 4.0


@pytest.fixture(scope="module")
def case(shapes: Shapes) -> dict[str, np.ndarray]:
    images, labels = shapes.data.images[:COUNT], shapes.data.labels[:COUNT]
    request = {"explain": {"images": images, "class_index": labels}}
    heatmaps = run_like_tf_serving(shapes.export, request)["explain"]["heatmap"]
    jitter = np.random.default_rng(0).uniform(0, 1e-4, heatmaps.shape)
    flat = (heatmaps + jitter).reshape(COUNT, -1)
    ranks = np.argsort(np.argsort(flat, axis=1), axis=1) + 1  # 1..H*W, one per pixel, in the map's order
    maps = (ranks / ranks.shape[1]).reshape(heatmaps.shape)
    return {"images": images, "labels": labels, "maps": maps, "boxes": shapes.data.boxes[:COUNT]}


def test_deletion_curves_match_pixel_flipping(shapes: Shapes, keras_shapes: Any, case: dict[str, np.ndarray]) -> None:
    images, labels, maps = case["images"], case["labels"], case["maps"]
    lookup = {image.tobytes(): heatmap for image, heatmap in zip(images, maps)}
    fixed = lambda batch, _cls: np.stack([lookup.get(i.tobytes(), np.zeros(i.shape[:2], np.float32)) for i in batch])  # noqa: E731
    report = evaluate(shapes.export, samples_from_arrays(images, labels=labels), steps=STEPS, blur_sigma=SIGMA,
                      references={"fixed": fixed}, methods=["gradcam"])
    ours = np.array([scores.deletion_curve for scores in report.get("fixed").images])

    baseline = (blur(images, SIGMA) / 255.0).astype(np.float32).transpose(0, 3, 1, 2).reshape(COUNT, -1)

    def to_baseline(arr: np.ndarray, indices: np.ndarray, **_: Any) -> np.ndarray:
        out = arr.copy()
        out[np.arange(len(arr))[:, None], indices] = baseline[np.arange(len(arr))[:, None], indices]
        return out

    # Quantus flips single channel values and wants H*W divisible by its step: a step of H*W/48
    # values is a third of ours in pixels. The three channels of a pixel get adjacent ranks
    # (offsets far below the gap between pixels), so every third Quantus step has flipped
    # exactly our step's whole pixels.
    height, width = images.shape[1:3]
    per_channel = maps[:, None] + np.array([0.0, 1e-7, 2e-7])[None, :, None, None]
    metric = quantus.PixelFlipping(features_in_step=height * width // STEPS, perturb_func=to_baseline,
                                   normalise=False, abs=False, disable_warnings=True)
    curves = np.array(metric(model=keras_shapes, x_batch=(images / 255.0).astype(np.float32), y_batch=labels,
                             a_batch=per_channel, softmax=True, channel_first=False))
    assert curves.shape == (COUNT, 3 * STEPS)
    theirs = curves[:, 2::3]
    # Quantus' curve starts after the first step; ours also holds the untouched image at x = 0.
    np.testing.assert_allclose(ours[:, 1:], theirs, atol=2e-5)
    # Our AUC is the trapezoid over [0, 1] of the full curve: Quantus' curve with the start put back.
    # (Quantus' own calculate_auc / return_auc_per_sample call np.trapz, which NumPy 2.x removed;
    # np.trapezoid is the same rule.)
    full = np.concatenate([ours[:, :1], theirs], axis=1)
    np.testing.assert_allclose([s.deletion_auc for s in report.get("fixed").images],
                               np.trapezoid(full, dx=1 / STEPS, axis=1), atol=2e-5)


def test_pointing_game_matches(keras_shapes: Any, case: dict[str, np.ndarray]) -> None:
    images, boxes = case["images"], case["boxes"]
    masks = np.zeros((COUNT, 1, *images.shape[1:3]), np.float32)
    for mask, (top, left, bottom, right) in zip(masks, boxes):
        mask[0, top:bottom, left:right] = 1
    # A map whose peak is moved off the object, so a miss is compared too.
    maps = case["maps"].copy()
    maps[0] = 0.0
    maps[0, 0 if boxes[0][0] > 0 else -1, 0 if boxes[0][1] > 0 else -1] = 1.0
    theirs = quantus.PointingGame(disable_warnings=True)(
        model=keras_shapes, x_batch=(images / 255.0).astype(np.float32), y_batch=case["labels"],
        a_batch=maps[:, None], s_batch=masks, channel_first=False)
    ours = pointing_game_hits(maps, boxes, tolerance=0)
    assert list(ours) == [bool(v) for v in theirs]
    assert not ours[0] and ours[1:].all()


def _gradcam(model: Any, inputs: np.ndarray, targets: np.ndarray, **_: Any) -> np.ndarray:
    """Grad-CAM at "features" of the Keras shapes model (Quantus' explain_func contract)."""
    import keras
    import tensorflow as tf

    x = np.asarray(inputs, np.float32)
    channel_first = x.shape[1] == 3
    if channel_first:
        x = x.transpose(0, 2, 3, 1)
    features = keras.Model(model.inputs, model.get_layer("features").output)(x)
    head = model.get_layer("classes")
    with tf.GradientTape() as tape:
        tape.watch(features)
        logits = tf.matmul(tf.reduce_max(features, axis=[1, 2]), head.kernel) + head.bias
        score = tf.gather(logits, np.asarray(targets, np.int32), batch_dims=1)
    weights = tf.reduce_mean(tape.gradient(score, features), axis=[1, 2])
    cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", features, weights))
    cam = tf.image.resize(cam[..., None], x.shape[1:3])[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1)[:, None, None]
    # Quantus refuses a batch of all-zero or uniform maps (a randomised head can kill every map):
    # a faint fixed ramp keeps them non-uniform; both sides get these same maps.
    ramp = np.linspace(0.0, 1e-6, cam[0].size, dtype=np.float32).reshape(cam.shape[1:])
    cam = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0) + ramp
    return cam[:, None] if channel_first else cam[..., None]


def test_randomisation_similarities_match_mprt(keras_shapes: Any, case: dict[str, np.ndarray]) -> None:
    """Same maps, same similarity: our Spearman per step equals MPRT's.

    Quantus 0.6's TF cascade starts from ``clone_model``, which re-initialises every layer
    (Keras does not copy weights into a clone), so even its first step sees a fully random
    model, not one with only the top layer randomised. Seeding Keras before each cascade
    makes both cascades draw the same clone, so the maps are the same on both sides.
    """
    import keras

    x = (case["images"] / 255.0).astype(np.float32)
    labels = case["labels"]
    keras.utils.set_random_seed(7)
    theirs = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True)(
        model=keras_shapes, x_batch=x, y_batch=labels, a_batch=None, explain_func=_gradcam, channel_first=False)
    # The same cascade (Quantus' own generator), the same maps; similarities from our code.
    original = _gradcam(keras_shapes, x, labels)[..., 0]
    wrapped = TensorFlowModel(model=keras_shapes, channel_first=False, softmax=False)
    layers, randomised = [], []
    keras.utils.set_random_seed(7)
    for name, model in wrapped.get_random_layer_generator(order="top_down", seed=42):
        if not layers:  # the clone's untouched bottom layer already differs from the trained one
            assert not np.allclose(model.get_layer("conv1").get_weights()[0],
                                   keras_shapes.get_layer("conv1").get_weights()[0])
        layers.append(name)
        randomised.append(_gradcam(model, x, labels)[..., 0])
    assert layers == ["classes", "features", "conv2", "conv1"]
    assert [k for k in theirs if k != "original"] == layers
    ours = similarity_per_step(original, randomised)
    compared = 0
    for name, (rho, _ssim) in zip(layers, ours):
        expected = np.array(theirs[name], np.float64)
        finite = np.isfinite(expected)  # scipy gives NaN for an all-zero map; we give 0
        np.testing.assert_allclose(rho[finite], expected[finite], atol=1e-6)
        assert np.all(rho[~finite] == 0.0)
        compared += int(finite.sum())
    assert compared >= COUNT * 2
    # The cascade decorrelates the maps by its end.
    assert np.nanmean(theirs["conv1"]) < 0.5
