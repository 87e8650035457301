"""The model, its exports, the export's maps and tf-keras-vis' maps for ``test_tf_keras_vis.py``.

``python vis_reference.py serve IMAGES.npy WORKDIR LAYER [LAYER ...]`` runs with oneDNN off, whatever
the test process has:

* the model is built here: its BatchNorm statistics come from a training-mode pass, and oneDNN
  and Eigen round that pass differently, so a model built in the test process would depend on
  which setting that process happened to get;
* the export is run here (on TF Serving's loading path), next to tf-keras-vis on the same kernels.

It writes ``mobilenet_v2.keras`` and, per layer, ``LAYER.npz``: ``served_<method>`` (the export's
``cam``), ``<method>`` (tf-keras-vis' map of the export's own float32 input), ``classes`` and
``probabilities``.

``python vis_reference.py spread IMAGES.npy WORKDIR LAYER [LAYER ...]`` runs tf-keras-vis once more
on the same model and input with oneDNN *on*, into ``LAYER_onednn.npz``: how far the reference moves
when only the float32 kernels change, i.e. its own spread. tf-keras-vis differentiates with respect to
a layer's output, not the weights, so this eager tape never runs oneDNN's Conv2DBackpropFilter (the
kernel that can crash on AMD EPYC).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if sys.argv[1:2] == ["spread"] else "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus  # noqa: E402
from tf_keras_vis.layercam import Layercam  # noqa: E402
from tf_keras_vis.utils.scores import CategoricalScore  # noqa: E402

METHODS = {"gradcam": Gradcam, "gradcampp": GradcamPlusPlus, "layercam": Layercam}
SEED = 11


def build_model(images: np.ndarray, path: Path) -> None:
    """MobileNetV2 (Keras 3, random weights, 5 logits) whose BatchNorm statistics are those of ``images``."""
    keras.utils.set_random_seed(SEED)
    size = images.shape[1]
    model = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=0.35, weights=None, classes=5, classifier_activation=None
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # one training-mode pass sets every moving statistic to the photos' batch statistics
    model(images.astype("float32") / 255.0, training=True)
    model.save(path)


def reference_maps(model: keras.Model, pixels: np.ndarray, classes: np.ndarray, layer: str) -> dict[str, np.ndarray]:
    """tf-keras-vis' unexpanded, unnormalised maps at ``layer`` (without seeking: it would move to another layer)."""
    score = CategoricalScore(classes.tolist())
    return {
        name: np.asarray(method(model, clone=True)(
            score, pixels, penultimate_layer=layer, seek_penultimate_conv_layer=False,
            expand_cam=False, normalize_cam=False,
        ))
        for name, method in METHODS.items()
    }


def _input(images: np.ndarray) -> np.ndarray:
    """The exact input the export computes (pixel * (1/255) in float32), not ``images / 255``."""
    import tensorflow as tf

    from gradcam_serving.exporter import Preprocessing

    return Preprocessing().apply(tf.cast(images, tf.float32)).numpy()


def serve(images: np.ndarray, workdir: Path, layer: str) -> None:
    from gradcam_serving.exporter import export_model, run_like_tf_serving

    model_path = workdir / "mobilenet_v2.keras"
    export = export_model(model_path, workdir / f"export_{layer}", "m", layer=layer, methods=",".join(METHODS)).path
    predicted = np.full(len(images), -1, np.int32)
    served = run_like_tf_serving(export, {
        f"explain_{m}": {"images": images, "class_index": predicted} for m in METHODS
    })
    maps = {f"served_{m}": served[f"explain_{m}"]["cam"] for m in METHODS}
    classes = maps["classes"] = served["explain_gradcam"]["class_index"]
    maps["probabilities"] = served["explain_gradcam"]["probabilities"]
    maps.update(reference_maps(keras.models.load_model(model_path), _input(images), classes, layer))
    np.savez(workdir / f"{layer}.npz", **maps)


def spread(images: np.ndarray, workdir: Path, layer: str) -> None:
    classes = np.load(workdir / f"{layer}.npz")["classes"]
    model = keras.models.load_model(workdir / "mobilenet_v2.keras")
    np.savez(workdir / f"{layer}_onednn.npz", **reference_maps(model, _input(images), classes, layer))


def main(step: str, images_path: str, workdir: str, *layers: str) -> None:
    images = np.load(images_path)
    if step == "serve":
        build_model(images, Path(workdir) / "mobilenet_v2.keras")
    for layer in layers:
        {"serve": serve, "spread": spread}[step](images, Path(workdir), layer)


if __name__ == "__main__":
    main(*sys.argv[1:])
