"""predict_bytes / explain_bytes: JPEG or PNG in, heatmaps and an in-graph overlay PNG out."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gradcam_serving import signatures as sig
from gradcam_serving.errors import ServingCheckError
from gradcam_serving.exporter import export_model, run_like_tf_serving

SIZE = 48


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def export(tiny_models, tmp_path_factory):
    return export_model(tiny_models.hub_classifier, tmp_path_factory.mktemp("bytes"), "clf", max_pixels=100 * 100).path


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(11).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)


def _run(path, name, **inputs):
    return run_like_tf_serving(path, {name: inputs})[name]


def test_bytes_signatures_match_the_uint8_signatures(export, images):
    encoded = np.array([_png(images[0]), _png(images[1])], dtype=object)
    classes = np.array([-1, 2], np.int32)
    want = _run(export, "explain", images=images, class_index=classes)
    got = _run(export, "explain_bytes", image_bytes=encoded, class_index=classes)
    np.testing.assert_allclose(got["heatmap"], want["heatmap"], atol=1e-5)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(got["class_index"], want["class_index"])
    predicted = _run(export, "predict_bytes", image_bytes=encoded)
    np.testing.assert_allclose(predicted["probabilities"], want["probabilities"], atol=1e-6)


def test_mixed_sizes_and_formats_with_overlays_at_each_images_size(export, images):
    wide = np.concatenate([images[0], images[1]], axis=1)  # 48 x 96
    small = images[1][:30, :20]
    encoded = np.array([_jpeg(wide), _png(small)], dtype=object)
    out = _run(export, "explain_bytes", image_bytes=encoded, class_index=np.array([-1, -1], np.int32))
    assert out["heatmap"].shape == (2, SIZE, SIZE)  # model size: the batch mixes sizes
    overlays = [np.asarray(Image.open(io.BytesIO(png))) for png in out[sig.OVERLAY_PNG]]
    assert [o.shape for o in overlays] == [(48, 96, 3), (30, 20, 3)]
    # The blend is (1 - 0.4) * image + 0.4 * colormap: never further than 0.4 * 255 from the image.
    diff = np.abs(overlays[1].astype(int) - small.astype(int))
    assert diff.max() <= 0.4 * 255 + 1 and diff.mean() > 1


def test_overlay_colours_follow_the_heatmap(export, images):
    import matplotlib
    import tensorflow as tf

    out = _run(export, "explain_bytes", image_bytes=np.array([_png(images[0])], dtype=object), class_index=np.array([-1], np.int32))
    overlay = np.asarray(Image.open(io.BytesIO(out[sig.OVERLAY_PNG][0]))).astype(float)
    heat = tf.image.resize(out["heatmap"][0][..., None], (SIZE, SIZE))[..., 0].numpy()
    jet = matplotlib.colormaps["jet"](np.round(heat * 255).astype(int))[..., :3] * 255
    np.testing.assert_allclose(overlay, 0.6 * images[0] + 0.4 * jet, atol=1.01)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(b"GIF89a not allowed", "JPEG or PNG", id="gif"),
        pytest.param(b"hello", "JPEG or PNG", id="garbage"),
        pytest.param(_png(np.zeros((101, 101, 3), np.uint8)), r"at most 10000 pixels per image; got\] \[10201\]", id="too-many-pixels"),
        pytest.param(_png(np.zeros((8, 8, 3), np.uint8))[:40], "Invalid PNG", id="truncated-png"),
    ],
)
def test_bad_bytes_fail_with_invalid_argument(export, payload, message):
    with pytest.raises(ServingCheckError, match=message):
        _run(export, "predict_bytes", image_bytes=np.array([payload], dtype=object))


def test_oversized_jpeg_is_refused_from_its_header(export):
    with pytest.raises(ServingCheckError, match="image too large"):
        _run(export, "predict_bytes", image_bytes=np.array([_jpeg(np.zeros((120, 90, 3), np.uint8))], dtype=object))
