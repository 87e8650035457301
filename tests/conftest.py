"""Shared fixtures: tiny, seeded models in every form the exporter accepts.

Nothing is downloaded. One tf_keras classifier is built once per session and
re-saved as a hub module, as a feature-vector hub module under a Keras head,
as ``.h5``, as a Keras 3 ``.keras`` file and as a signature-only SavedModel,
so every route can be compared on the same weights.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One oneDNN setting for the whole suite, made here because TensorFlow reads it once, at import, for the
# whole process: a conftest below that set it would set it for every test its process runs (every xdist
# worker collects every conftest), so a test's numbers would depend on what else was collected. Off,
# because eager GradientTape through Conv2D can crash oneDNN on AVX-512 hosts (Quantus' explain
# functions, tf-keras-vis). Subprocesses inherit it; a test that needs oneDNN on runs its own
# subprocess with TF_ENABLE_ONEDNN_OPTS=1 (tests/exporter/test_errors.py does, for empty batches).
# A value already in the environment wins, so the suite can be run on oneDNN on purpose.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SIZE = 48
NUM_CLASSES = 4


@dataclass
class TinyModels:
    """The same weights saved in every supported form."""

    classifier: Any  # tf_keras functional model ending in softmax
    hub_classifier: Path  # TF2 hub module (tf.saved_model.save of the classifier)
    hub_backbone: Path  # feature-vector hub module
    hub_in_keras_savedmodel: Path  # Sequential([hub.KerasLayer(backbone), Dense]) as SavedModel
    hub_in_keras_h5: Path  # the same as .h5
    keras3_file: Path  # Keras 3 .keras file with the same weights
    tf_keras_file: Path  # the tf_keras classifier saved as a .keras archive
    signature_only: Path  # a TF2 SavedModel with only a serving_default signature
    target_layer: str = "c2"


def _build_classifier(keras_module: Any, name: str) -> Any:
    """conv(c1) -> bn -> conv(c2, 12x12) -> GAP -> Dense softmax, in tf_keras or Keras 3."""
    layers = keras_module.layers
    inputs = keras_module.Input((SIZE, SIZE, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="head")(x)
    return keras_module.Model(inputs, outputs, name=name)


def build_tf_keras_classifier(seed: int = 0) -> Any:
    """The tf_keras classifier, with BatchNorm statistics moved off their defaults."""
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    model = _build_classifier(tf_keras, "classifier")
    bn = model.get_layer("bn")
    rng = np.random.default_rng(seed)
    bn.set_weights([w + rng.uniform(0.1, 0.5, w.shape).astype("float32") for w in bn.get_weights()])
    return model


def _keras3_copy(classifier: Any) -> Any:
    import keras

    model = _build_classifier(keras, "classifier_k3")
    model.set_weights(classifier.get_weights())
    return model


def _signature_only(classifier: Any, path: Path) -> None:
    import tensorflow as tf

    class Exported(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = classifier

        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="pixels")])
        def serve(self, pixels: Any) -> dict[str, Any]:
            return {"scores": self.model(pixels, training=False)}

    module = Exported()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras

    root = tmp_path_factory.mktemp("models")
    classifier = build_tf_keras_classifier()
    hub_classifier = root / "hub_classifier"
    tf.saved_model.save(classifier, str(hub_classifier))
    backbone = tf_keras.Model(classifier.input, classifier.get_layer("gap").output, name="backbone")
    hub_backbone = root / "hub_backbone"
    tf.saved_model.save(backbone, str(hub_backbone))

    head = tf_keras.layers.Dense(NUM_CLASSES, activation="softmax", name="head")
    hub_in_keras = tf_keras.Sequential([hub.KerasLayer(str(hub_backbone), input_shape=(SIZE, SIZE, 3)), head])
    head.set_weights(classifier.get_layer("head").get_weights())
    saved = root / "hub_in_keras"
    hub_in_keras.save(str(saved), save_format="tf")
    h5 = root / "hub_in_keras.h5"
    hub_in_keras.save(str(h5), save_format="h5")

    keras3_file = root / "classifier.keras"
    _keras3_copy(classifier).save(keras3_file)
    tf_keras_file = root / "classifier_tf_keras.keras"
    classifier.save(str(tf_keras_file))
    signature_only = root / "signature_only"
    _signature_only(classifier, signature_only)
    return TinyModels(
        classifier=classifier,
        hub_classifier=hub_classifier,
        hub_backbone=hub_backbone,
        hub_in_keras_savedmodel=saved,
        hub_in_keras_h5=h5,
        keras3_file=keras3_file,
        tf_keras_file=tf_keras_file,
        signature_only=signature_only,
    )


@pytest.fixture(scope="session")
def sample_images() -> np.ndarray:
    """Three uint8 images at a size other than the model's, to exercise in-graph resizing."""
    return np.random.default_rng(7).integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def export_v1(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``BASE/clf/1``: the tiny hub classifier exported with labels, shared by the serving suites.

    Read-only: copy its parent folder to change versions.
    """
    from gradcam_e2e import export_tiny

    return export_tiny(tiny_models, tmp_path_factory.mktemp("served_base"))


@pytest.fixture(scope="session")
def in_process(export_v1: Path) -> Any:
    """``export_v1`` loaded in this process: the reference the servers are compared with."""
    from gradcam_e2e import InProcess

    return InProcess(export_v1)
