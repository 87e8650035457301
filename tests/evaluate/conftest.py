"""Fixtures for the evaluation tests: the demo's shapes model (trained once), its export, and a bad "explainer".

The shapes images carry their object's box, so localisation has a known right
answer; the edge-map export explains with the input's edges, which ignore the
model's weights, so the randomisation test has a known wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gradcam_serving.demo import CLASSES, SIZE, ShapesData, make_shapes


@dataclass(frozen=True)
class Shapes:
    module: Path  # the trained TF2 hub module
    export: Path  # BASE/shapes/1, Grad-CAM at the last convolution ("features")
    data: ShapesData  # held-out images with boxes


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Shapes:
    from gradcam_serving.demo import train_demo_hub_module
    from gradcam_serving.exporter import export_model

    root = tmp_path_factory.mktemp("shapes")
    accuracy = train_demo_hub_module(root / "module", samples=1200, epochs=4)
    assert accuracy > 0.9, f"the shapes model must learn the task first (held-out accuracy {accuracy:.1%})"
    result = export_model(root / "module", root / "models", "shapes", labels=list(CLASSES), version=1)
    assert result.layer.name == "features"
    return Shapes(root / "module", result.path, make_shapes(24, seed=4321))


@pytest.fixture(scope="session")
def keras_shapes(shapes: Shapes) -> Any:
    """The shapes model as a Keras 3 model (what Quantus wraps), with the export's weights."""
    return _keras3_shapes_model(shapes.module)


def _keras3_shapes_model(module: Path) -> Any:
    """The demo architecture in Keras 3 (what Quantus wraps), carrying the trained module's weights."""
    import keras
    import tensorflow as tf

    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(24, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="features")(x)
    x = layers.GlobalMaxPooling2D(name="pool_max")(x)
    outputs = layers.Dense(len(CLASSES), activation="softmax", name="classes")(x)
    model = keras.Model(inputs, outputs)
    trained = {v.name.split(":")[0]: v.numpy() for v in tf.saved_model.load(str(module)).variables}
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([trained[f"{layer.name}/kernel"], trained[f"{layer.name}/bias"]])
    return model


def _save_edge_export(module: Path, path: Path) -> Path:
    """A SavedModel with the serving contract whose ``explain`` returns the image's Sobel edge map.

    ``predict`` (and the class ``explain`` reports) come from the trained model, so the
    export reads the model's variables, but the heatmap never depends on them.
    """
    import tensorflow as tf

    class EdgeExplainer(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = tf.saved_model.load(str(module))

        def _predict(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            pixels = tf.image.resize(tf.cast(images, tf.float32), (SIZE, SIZE)) / 255.0
            probabilities = self.model(pixels)
            class_index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            return self._outputs(probabilities, class_index)

        def _outputs(self, probabilities: tf.Tensor, class_index: tf.Tensor) -> dict[str, tf.Tensor]:
            return {
                "probabilities": probabilities,
                "class_index": class_index,
                "score": tf.gather(probabilities, class_index, batch_dims=1),
                "label": tf.strings.as_string(class_index),
            }

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
        def predict(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            return self._predict(images)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"),
                                      tf.TensorSpec([None], tf.int32, name="class_index")])
        def explain(self, images: tf.Tensor, class_index: tf.Tensor) -> dict[str, tf.Tensor]:
            outputs = self._predict(images)
            chosen = tf.where(class_index < 0, outputs["class_index"], class_index)
            outputs = self._outputs(outputs["probabilities"], chosen)
            gray = tf.reduce_mean(tf.cast(images, tf.float32), axis=-1, keepdims=True)
            edges = tf.norm(tf.image.sobel_edges(gray)[:, :, :, 0, :], axis=-1)
            peak = tf.reduce_max(edges, axis=[1, 2], keepdims=True)
            outputs["heatmap"] = tf.math.divide_no_nan(edges, peak)
            return outputs

    explainer = EdgeExplainer()
    signatures = {"predict": explainer.predict, "serving_default": explainer.predict, "explain": explainer.explain}
    tf.saved_model.save(explainer, str(path), signatures=signatures)
    return path


@pytest.fixture(scope="session")
def edge_export(shapes: Shapes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_edge_export(shapes.module, tmp_path_factory.mktemp("edges") / "1")



@dataclass(frozen=True)
class PoolAndFlatten:
    """Two tiny untrained exports with five methods: Grad-CAM's family coincides on one, not on the other."""

    pooled: Path  # features -> global average pooling -> dense: the class score is linear in the features
    flattened: Path  # features -> flatten -> dense: each position has its own weights, so the maps differ
    photos: Path  # three readable PNGs and ``broken.jpg``, which is not an image


@pytest.fixture(scope="session")
def pool_and_flatten(tmp_path_factory: pytest.TempPathFactory) -> PoolAndFlatten:
    import keras
    import numpy as np
    from PIL import Image

    from gradcam_serving.exporter import export_model

    root = tmp_path_factory.mktemp("pool_and_flatten")
    paths = {}
    for head in ("pooled", "flattened"):
        keras.utils.set_random_seed(1)
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu", name="features")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x) if head == "pooled" else keras.layers.Flatten()(x)
        keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="head")(x)).save(root / f"{head}.keras")
        paths[head] = export_model(root / f"{head}.keras", root / "models", head, version=1,
                                   methods="gradcam,hirescam,xgradcam,layercam,eigencam").path
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    (photos / "broken.jpg").write_bytes(b"not a jpeg, only text with a .jpg name")
    return PoolAndFlatten(paths["pooled"], paths["flattened"], photos)
