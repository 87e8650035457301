"""Export options: pixel scaling, logits vs probabilities, labels, hub handles."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from gradcam_serving.exporter import Preprocessing, export_model, run_like_tf_serving

SIZE = 48


def _predict(path, images):
    return run_like_tf_serving(path, {"predict": {"images": images}, "explain": {"images": images, "class_index": np.full(len(images), -1, np.int32)}})


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("by_range", "by_stats"),
    [
        pytest.param((0.0, 1.0), ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)), id="unit"),
        pytest.param((-1.0, 1.0), ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)), id="symmetric"),
    ],
)
def test_range_and_mean_std_scale_identically(tiny_models, tmp_path, images, by_range, by_stats):
    a = export_model(tiny_models.classifier, tmp_path, "a", preprocessing=Preprocessing(input_range=by_range)).path
    b = export_model(tiny_models.classifier, tmp_path, "b", preprocessing=Preprocessing(input_range=None, mean=by_stats[0], std=by_stats[1])).path
    np.testing.assert_allclose(_predict(a, images)["explain"]["heatmap"], _predict(b, images)["explain"]["heatmap"], atol=1e-5)
    expected = tiny_models.classifier.predict((images / 255.0) * (by_range[1] - by_range[0]) + by_range[0], verbose=0)
    np.testing.assert_allclose(_predict(b, images)["predict"]["probabilities"], expected, rtol=1e-4, atol=1e-6)


def test_preprocessing_rejects_contradictions():
    with pytest.raises(ValueError, match="given together"):
        Preprocessing(mean=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="positive"):
        Preprocessing(input_range=None, mean=(0.0, 0.0, 0.0), std=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="lo < hi"):
        Preprocessing(input_range=(1.0, 0.0))


def test_logits_model_gets_softmax_probabilities(tmp_path, images):
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    inputs = tf_keras.Input((SIZE, SIZE, 3))
    x = tf_keras.layers.Conv2D(4, 3, strides=4, activation="relu")(inputs)
    logits = tf_keras.layers.Dense(3)(tf_keras.layers.GlobalAveragePooling2D()(x))
    model = tf_keras.Model(inputs, logits)
    out = _predict(export_model(model, tmp_path, "logits", labels=["x", "y", "z"]).path, images)["predict"]
    raw = model.predict(images / 255.0, verbose=0)
    softmax = np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out["probabilities"], softmax, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(out["class_index"], raw.argmax(axis=1))
    assert [label.decode() for label in out["label"]] == [["x", "y", "z"][i] for i in raw.argmax(axis=1)]
    np.testing.assert_allclose(out["score"], softmax.max(axis=1), rtol=1e-5)


def test_hub_handle_resolves_from_the_offline_cache(tiny_models, tmp_path, monkeypatch, images):
    """A tfhub.dev-style handle loads from TFHUB_CACHE_DIR without any network."""
    import shutil

    handle = "https://tfhub.dev/gradcam-serving/test/classifier/1"
    cache = tmp_path / "cache"
    shutil.copytree(tiny_models.hub_classifier, cache / hashlib.sha1(handle.encode()).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "COMPRESSED")
    from_handle = export_model(handle, tmp_path / "out", "hub").path
    from_folder = export_model(tiny_models.hub_classifier, tmp_path / "out", "folder").path
    np.testing.assert_allclose(_predict(from_handle, images)["explain"]["heatmap"], _predict(from_folder, images)["explain"]["heatmap"], atol=1e-6)
