"""Every CAM method against its paper's formula, computed by hand in numpy on a toy model.

The toy is one 3x3 convolution with fixed weights, a ReLU, global average
pooling and a dense layer. The target is the convolution's output Z (before
the ReLU), so the gradient ``dS/dZ = W[:, c] / (h*w) * [Z > 0]`` varies over
space and the methods differ (at a post-ReLU layer HiResCAM would equal
Grad-CAM). Images are 8x8 like the model input, so the heatmap is the raw map
divided by its peak, without interpolation. Everything runs on TF Serving's
loading path.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_serving import signatures as sig
from gradcam_serving.exporter import export_model, run_like_tf_serving
from gradcam_serving.exporter._cam import get_method

SIZE = 8
CLASSES = 3
MAX_PIXELS = 100


def _weights() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    kernel = rng.normal(0.0, 0.6, (3, 3, 3, 4)).astype(np.float32)
    bias = np.array([0.05, -0.1, 0.0, 0.1], np.float32)
    # Mixed signs in every column: with all-positive weights HiResCAM would equal LayerCAM.
    dense = np.array([[0.9, -0.7, 0.4], [-0.5, 0.8, 0.6], [0.7, 0.3, -0.9], [-0.4, -0.6, 0.8]], np.float32)
    dense_bias = np.array([0.1, -0.2, 0.05], np.float32)
    return kernel, bias, dense, dense_bias


@pytest.fixture(scope="module")
def toy_export(tmp_path_factory):
    import tf_keras

    inputs = tf_keras.Input((SIZE, SIZE, 3))
    z = tf_keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = tf_keras.layers.ReLU(name="relu")(z)
    x = tf_keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(CLASSES, name="dense")(x))
    kernel, bias, dense, dense_bias = _weights()
    model.get_layer("conv").set_weights([kernel, bias])
    model.get_layer("dense").set_weights([dense, dense_bias])
    base = tmp_path_factory.mktemp("toy")
    return export_model(model, base, "toy", layer="conv", methods="all", max_pixels=MAX_PIXELS).path


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)


EXPLAINED = np.array([-1, 0, 2], np.int32)
TOP_K = np.array([2, 1, 2], np.int32)
"""Per image, as a client of a batching server sends it; image 1's second row is padding."""


@pytest.fixture(scope="module")
def served(toy_export, images) -> dict[str, dict[str, np.ndarray]]:
    """Every explain_<method> and top-2 from one load on TF Serving's path (a load costs seconds)."""
    requests = {sig.explain_signature(m): {"images": images, "class_index": EXPLAINED} for m in sig.METHODS}
    requests["explain_topk"] = {"images": images, "k": TOP_K}
    return run_like_tf_serving(toy_export, requests)


# -- numpy by hand ---------------------------------------------------------------------------------


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            out[:, i, j] = np.einsum("nabc,abcd->nd", padded[:, i : i + 3, j : j + 3], kernel)
    return out + bias


def _tail(z: np.ndarray) -> np.ndarray:
    """Probabilities from feature maps Z: ReLU, mean over space, dense, softmax."""
    _, _, dense, dense_bias = _weights()
    logits = np.maximum(z, 0).mean(axis=(1, 2)) @ dense + dense_bias
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _by_hand(images: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    kernel, bias, dense, _ = _weights()
    a = _conv_same(images.astype(np.float64) / 255.0, kernel, bias)  # [N, 8, 8, 4]
    probabilities = _tail(a)
    chosen = np.where(classes < 0, probabilities.argmax(axis=1), classes)
    hw = SIZE * SIZE
    g = dense[:, chosen].T[:, None, None, :] / hw * (a > 0)  # dS/dA
    spatial = lambda x: x.sum(axis=(1, 2), keepdims=True)  # noqa: E731
    maps = {
        "gradcam": (g.mean(axis=(1, 2), keepdims=True) * a).sum(-1),
        "hirescam": (g * a).sum(-1),
        "layercam": (np.maximum(g, 0) * a).sum(-1),
        "xgradcam": ((spatial(g * a) / spatial(a)) * a).sum(-1),
    }
    # Grad-CAM++: alpha = G^2 / (2 G^2 + sum_ij(A) G^3), zero where G = 0; alphas normalised per channel.
    denominator = 2 * g**2 + spatial(a) * g**3
    alpha = np.where(g != 0, g**2 / np.where(denominator == 0, 1, denominator), 0)
    alpha = alpha / np.where(spatial(alpha) == 0, 1, spatial(alpha))
    maps["gradcampp"] = (spatial(alpha * np.maximum(g, 0)) * a).sum(-1)
    # Eigen-CAM: projection of the centred positions on the first principal axis, sign from the mean activation.
    eigen = []
    for one in a:
        points = one.reshape(hw, -1)
        centred = points - points.mean(axis=0)
        projection = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
        if projection @ points.mean(axis=1) < 0:
            projection = -projection
        eigen.append(projection.reshape(SIZE, SIZE))
    maps["eigencam"] = np.array(eigen)
    # Recipro-CAM: the probability of the class when only position (i, j) of A is kept.
    recipro = np.zeros(a.shape[:3])
    for i in range(SIZE):
        for j in range(SIZE):
            masked = np.zeros_like(a)
            masked[:, i, j] = a[:, i, j]
            recipro[:, i, j] = _tail(masked)[np.arange(len(a)), chosen]
    maps["reciprocam"] = recipro
    return probabilities, chosen, {name: np.maximum(m, 0) for name, m in maps.items()}


def _normalised(cam: np.ndarray) -> np.ndarray:
    peak = cam.max(axis=(-2, -1), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)


# -- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sig.METHODS)
def test_every_method_equals_its_formula_by_hand(served, images, method):
    probabilities, chosen, maps = _by_hand(images, EXPLAINED)
    out = served[sig.explain_signature(method)]
    want = maps[method]
    assert want.max() > 1e-3, "the reference map is ~zero; the comparison would prove nothing"
    np.testing.assert_array_equal(out["class_index"], chosen)
    np.testing.assert_allclose(out["probabilities"], probabilities, atol=1e-5)
    assert out["cam"].shape == (3, SIZE, SIZE)
    assert np.max(np.abs(out["cam"] - want)) <= 1e-5 * max(1.0, want.max())
    assert np.max(np.abs(out["heatmap"] - _normalised(want))) <= 1e-5


def test_the_methods_differ_on_the_toy(images):
    """Otherwise the exact-value test could not tell a mix-up apart."""
    _, _, maps = _by_hand(images, EXPLAINED)
    normalised = {name: _normalised(m) for name, m in maps.items()}
    names = list(normalised)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert np.max(np.abs(normalised[first] - normalised[second])) > 1e-2, (first, second)


def test_explain_is_the_default_method_and_the_bytes_twin_agrees(toy_export, images):
    import io

    from PIL import Image

    def png(image):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return buffer.getvalue()

    classes = np.array([1, -1, 2], np.int32)
    encoded = np.array([png(image) for image in images], dtype=object)
    got = run_like_tf_serving(toy_export, {
        "explain": {"images": images, "class_index": classes},
        "explain_gradcam": {"images": images, "class_index": classes},
        "explain_bytes_layercam": {"image_bytes": encoded, "class_index": classes},
        "explain_layercam": {"images": images, "class_index": classes},
    })
    np.testing.assert_array_equal(got["explain"]["cam"], got["explain_gradcam"]["cam"])
    np.testing.assert_allclose(got["explain_bytes_layercam"]["cam"], got["explain_layercam"]["cam"], atol=1e-6)
    assert len(got["explain_bytes_layercam"][sig.OVERLAY_PNG]) == 3


def test_topk_equals_k_separate_explain_calls(toy_export, served, images):
    top = served["explain_topk"]
    assert top["class_index"].shape == top["score"].shape == top["label"].shape == (3, 2)
    assert top["heatmap"].shape == (3, 2, SIZE, SIZE) and top["cam"].shape == (3, 2, SIZE, SIZE)
    probabilities = top["probabilities"]
    ranked = np.argsort(-probabilities, axis=1)[:, :2]
    np.testing.assert_array_equal(top["class_index"], np.where(TOP_K[:, None] > [0, 1], ranked, -1))
    # Rank 0 through explain, rank 1 through explain_gradcam: both compute the default method.
    separate = run_like_tf_serving(toy_export, {
        name: {"images": images, "class_index": ranked[:, rank].astype(np.int32)}
        for rank, name in enumerate(["explain", "explain_gradcam"])
    })
    for rank, name in enumerate(["explain", "explain_gradcam"]):
        one, asked = separate[name], TOP_K > rank
        np.testing.assert_allclose(top["score"][asked, rank], one["score"][asked], atol=1e-6)
        np.testing.assert_allclose(top["heatmap"][asked, rank], one["heatmap"][asked], atol=1e-5)
        np.testing.assert_allclose(top["cam"][asked, rank], one["cam"][asked], atol=1e-6)
    # Only images asked for k > 1 have a real second map: image 1's second row is zero padding.
    two_ranked = np.flatnonzero(TOP_K > 1)
    assert two_ranked.size > 0
    for image in two_ranked:
        assert not np.allclose(top["heatmap"][image, 0], top["heatmap"][image, 1]), f"image {image}: both ranks gave one map"


def test_topk_pads_rows_past_an_images_own_k(served):
    top = served["explain_topk"]
    assert top["class_index"][1, 1] == -1 and top["score"][1, 1] == 0 and top["label"][1, 1] == b""
    assert not top["heatmap"][1, 1].any() and not top["cam"][1, 1].any()
    assert top["heatmap"][1, 0].max() == pytest.approx(1.0)


@pytest.mark.parametrize(("k", "message"), [
    (0, r"k must be an int32 scalar or one value per image, each in 1\.\.3"),
    (4, r"and k\] \[4\]"),
    ([1, 2], r"got batch size\] \[3\] \[and k\] \[1 2\]"),
])
def test_k_outside_1_to_c_or_of_the_wrong_length_is_refused(toy_export, images, k, message):
    from gradcam_serving.errors import ServingCheckError

    with pytest.raises(ServingCheckError, match=message):
        run_like_tf_serving(toy_export, {"explain_topk": {"images": images, "k": np.array(k, np.int32)}})


def test_uint8_images_above_the_pixel_limit_are_refused(toy_export):
    from gradcam_serving.errors import ServingCheckError

    big = np.zeros((1, 10, 11, 3), np.uint8)
    with pytest.raises(ServingCheckError, match=rf"at most {MAX_PIXELS} pixels .*got height and width\] \[10 11\]"):
        run_like_tf_serving(toy_export, {"predict": {"images": big}})


def test_every_signature_is_exported_and_listed(toy_export):
    import tensorflow as tf

    names = set(tf.saved_model.load(str(toy_export)).signatures)
    assert sig.exported_methods(names) == list(sig.METHODS)
    for method in sig.METHODS:
        assert {sig.explain_signature(method), sig.explain_signature(method, encoded=True)} <= names
    assert {sig.EXPLAIN_TOPK, sig.EXPLAIN_TOPK_BYTES, sig.EXPLAIN, sig.EXPLAIN_BYTES} <= names


def test_unknown_method_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown CAM method 'scorecam'; valid methods: gradcam, gradcampp, .*reciprocam"):
        get_method("scorecam")
    with pytest.raises(ValueError, match=r"unknown method\(s\) 'gradcam\+\+'"):
        export_model("does-not-matter", tmp_path, "m", methods="gradcam,gradcam++")
    assert sig.parse_methods("layercam, gradcam,layercam") == ("layercam", "gradcam")
    assert sig.parse_methods("all") == sig.METHODS
