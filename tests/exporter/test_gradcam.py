"""Heatmaps: an independent eager reference, and the same heatmap on every route."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcam_serving.exporter import export_model, run_like_tf_serving

SIZE = 48


def _reference_gradcam(classifier, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The textbook Grad-CAM with GradientTape on the Keras model (keras.io recipe, fixed)."""
    import tensorflow as tf
    import tf_keras

    feature_model = tf_keras.Model(classifier.inputs, classifier.get_layer("c2").output)
    kernel, bias = classifier.get_layer("head").get_weights()
    x = tf.image.resize(tf.cast(images, tf.float32), (SIZE, SIZE)) / 255.0
    with tf.GradientTape() as tape:
        feature_map = feature_model(x, training=False)
        tape.watch(feature_map)
        logits = tf.reduce_mean(feature_map, axis=[1, 2]) @ kernel + bias
        class_scores = tf.gather(logits, classes, batch_dims=1)
    grads = tape.gradient(class_scores, feature_map)
    weights = tf.reduce_mean(grads, axis=[1, 2])
    cam = tf.nn.relu(tf.reduce_sum(feature_map * weights[:, None, None, :], axis=-1))
    cam = tf.image.resize(cam[..., None], images.shape[1:3])[..., 0].numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)


@pytest.fixture(scope="module")
def exports(tiny_models, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("routes")
    sources = {
        "keras_object": tiny_models.classifier,
        "hub_module": tiny_models.hub_classifier,
        "hub_in_keras_savedmodel": tiny_models.hub_in_keras_savedmodel,
        "hub_in_keras_h5": tiny_models.hub_in_keras_h5,
        "keras3_file": tiny_models.keras3_file,
        "tf_keras_file": tiny_models.tf_keras_file,
        "signature_only_savedmodel": tiny_models.signature_only,
    }
    return {
        route: export_model(source, base, route, layer=tiny_models.target_layer).path
        for route, source in sources.items()
    }


def _explain(path: Path, images: np.ndarray, classes: np.ndarray) -> dict[str, np.ndarray]:
    return run_like_tf_serving(path, {"explain": {"images": images, "class_index": classes}})["explain"]


def test_heatmaps_match_eager_gradienttape_reference(tiny_models, exports, sample_images):
    classes = np.array([0, 3, 1], np.int32)  # several classes in one batch
    want = _reference_gradcam(tiny_models.classifier, sample_images, classes)
    got = _explain(exports["keras_object"], sample_images, classes)
    assert got["heatmap"].shape == sample_images.shape[:3]
    assert want.max() > 0, "reference map is all zero; the comparison would prove nothing"
    assert np.max(np.abs(got["heatmap"] - want)) <= 1e-4
    np.testing.assert_array_equal(got["class_index"], classes)


def test_predicted_class_is_explained_for_minus_one(tiny_models, exports, sample_images):
    got = _explain(exports["keras_object"], sample_images, np.full(3, -1, np.int32))
    probabilities = tiny_models.classifier.predict(
        __import__("tensorflow").image.resize(sample_images.astype("float32"), (SIZE, SIZE)) / 255.0, verbose=0
    )
    np.testing.assert_array_equal(got["class_index"], probabilities.argmax(axis=1))
    np.testing.assert_allclose(got["score"], probabilities.max(axis=1), rtol=1e-4)
    np.testing.assert_allclose(got["probabilities"], probabilities, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["heatmap"], _reference_gradcam(tiny_models.classifier, sample_images, got["class_index"]), atol=1e-4)


@pytest.mark.parametrize(
    "route",
    [
        pytest.param("hub_module", id="tf2-hub-module"),
        pytest.param("hub_in_keras_savedmodel", id="hub-in-keras-savedmodel"),
        pytest.param("hub_in_keras_h5", id="hub-in-keras-h5"),
        pytest.param("keras3_file", id="keras3-file"),
        pytest.param("tf_keras_file", id="tf-keras-dot-keras-file"),
        pytest.param("signature_only_savedmodel", id="tf2-savedmodel-signature"),
    ],
)
def test_every_route_gives_the_same_heatmaps(exports, sample_images, route):
    classes = np.array([2, -1, 0], np.int32)
    want = _explain(exports["keras_object"], sample_images, classes)
    got = _explain(exports[route], sample_images, classes)
    assert want["heatmap"].max() > 0
    np.testing.assert_allclose(got["heatmap"], want["heatmap"], atol=1e-4)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(got["class_index"], want["class_index"])


def test_tf_serving_path_and_tf2_load_path_agree(exports, sample_images):
    import tensorflow as tf

    classes = np.array([1, 2, -1], np.int32)
    session = _explain(exports["hub_module"], sample_images, classes)
    loaded = tf.saved_model.load(str(exports["hub_module"]))
    eager = {k: v.numpy() for k, v in loaded.signatures["explain"](images=sample_images, class_index=classes).items()}
    assert set(session) == set(eager) == {"probabilities", "class_index", "score", "label", "method", "heatmap", "cam"}
    for key in session:
        if session[key].dtype.kind == "f":
            np.testing.assert_allclose(session[key], eager[key], atol=1e-6)
        else:
            np.testing.assert_array_equal(session[key], eager[key])
    predict = loaded.signatures["predict"](images=sample_images)
    np.testing.assert_allclose(predict["probabilities"].numpy(), session["probabilities"], atol=1e-6)


def test_heatmap_is_all_zero_not_nan_when_no_positive_evidence(tiny_models, tmp_path):
    """A class whose weights are all zero gives a zero map; the article's code divides by 0 here."""
    import tf_keras

    model = tf_keras.models.clone_model(tiny_models.classifier)
    model.set_weights(tiny_models.classifier.get_weights())
    kernel, bias = model.get_layer("head").get_weights()
    kernel[:, 1] = 0.0
    model.get_layer("head").set_weights([kernel, bias])
    path = export_model(model, tmp_path, "zero").path
    images = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    got = _explain(path, images, np.array([1, 1], np.int32))
    assert not np.isnan(got["heatmap"]).any()
    np.testing.assert_array_equal(got["heatmap"], np.zeros((2, SIZE, SIZE), np.float32))
