"""Grad-CAM, Grad-CAM++ and LayerCAM equal tf-keras-vis on a real architecture, at two layers.

MobileNetV2 (Keras 3, ``weights=None``, 160 px, alpha 0.35, 5 classes,
logits) with BatchNorm statistics taken from real photos (scikit-image), so
images get different predictions and maps. At the last layer before pooling
and the dense head Grad-CAM++ nearly equals LayerCAM, so an earlier layer is
compared too. The raw ``cam`` output (feature-map resolution) is compared
after dividing by its peak with tf-keras-vis' unexpanded, unnormalised map
(``seek_penultimate_conv_layer=False`` or it silently moves to another layer).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradcam_serving.exporter import export_model

SIZE = 160
METHODS = ("gradcam", "gradcampp", "layercam")
LAYERS = ("out_relu", "block_13_expand_relu")


def _photos() -> np.ndarray:
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    return np.stack([np.asarray(Image.fromarray(p).resize((SIZE, SIZE), Image.BILINEAR)) for p in photos])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    import keras

    keras.utils.set_random_seed(11)
    model = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=0.35, weights=None, classes=5, classifier_activation=None
    )
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in bns:
        layer.momentum = 0.0  # one training-mode pass sets every moving statistic to the photos' batch statistics
    model(_photos().astype("float32") / 255.0, training=True)
    path = tmp_path_factory.mktemp("vis") / "mobilenet_v2.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module", params=LAYERS)
def compared(request, model_file, tmp_path_factory):
    layer = request.param
    images = _photos()
    export = export_model(model_file, tmp_path_factory.mktemp("vis_export"), "m", layer=layer, methods=",".join(METHODS)).path
    folder = tmp_path_factory.mktemp("vis_reference")
    np.save(folder / "images.npy", images)
    script = Path(__file__).with_name("vis_reference.py")
    subprocess.run(
        [sys.executable, str(script), str(model_file), str(folder / "images.npy"), str(export), layer,
         str(folder / "maps.npz")],
        check=True, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}, timeout=900,
    )
    maps = dict(np.load(folder / "maps.npz"))
    served = {f"explain_{m}": {"cam": maps.pop(f"served_{m}")} for m in METHODS}
    served["explain_gradcam"]["probabilities"] = maps.pop("probabilities")
    return layer, served, maps, maps.pop("classes")


def _normalised(cam: np.ndarray) -> np.ndarray:
    peak = cam.max(axis=(-2, -1), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)


def test_the_photos_get_different_predictions(compared):
    _, served, _, classes = compared
    probabilities = served["explain_gradcam"]["probabilities"]
    assert len(set(classes.tolist())) > 1 or np.ptp(probabilities, axis=0).max() > 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_equals_tf_keras_vis(compared, method):
    layer, served, reference, _ = compared
    got = _normalised(served[f"explain_{method}"]["cam"])
    want = _normalised(reference[method])
    assert got.shape == want.shape, f"{layer}: {got.shape} vs tf-keras-vis {want.shape}"
    assert want.max() > 0, "tf-keras-vis map is all zero; the comparison would prove nothing"
    # Issue 8 asks for 2e-3, at both layers. Both sides must get the same float32 input (vis_reference.py
    # feeds tf-keras-vis the export's own preprocessing): with ``images / 255`` instead of the export's
    # ``images * (1/255)`` (one ulp apart in 40% of the pixels) tf-keras-vis' map at block_13_expand_relu
    # moves by 6.0e-3 (Grad-CAM), 4.4e-3 (Grad-CAM++), 3.9e-3 (LayerCAM) -- the same in float64, so it is
    # this random network's sensitivity to its input, not our arithmetic. With the same input: 3.8e-6,
    # 4.6e-6, 1.1e-6.
    tolerance = 2e-3
    assert np.max(np.abs(got - want)) <= tolerance, f"{method} at {layer}"


def test_the_methods_differ(compared):
    """Else the comparison could not tell a mix-up apart; Grad-CAM++ and LayerCAM only at the earlier layer."""
    layer, served, _, _ = compared
    maps = {m: _normalised(served[f"explain_{m}"]["cam"]) for m in METHODS}
    assert np.max(np.abs(maps["gradcam"] - maps["layercam"])) > 0.05
    if layer == LAYERS[1]:  # at the last layer before pooling and a dense head they nearly coincide
        assert np.max(np.abs(maps["gradcampp"] - maps["layercam"])) > 0.05
