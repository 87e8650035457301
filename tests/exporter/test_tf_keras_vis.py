"""Grad-CAM, Grad-CAM++ and LayerCAM equal tf-keras-vis on a real architecture, at two layers.

MobileNetV2 (Keras 3, ``weights=None``, 160 px, alpha 0.35, 5 classes,
logits) with BatchNorm statistics taken from real photos (scikit-image), so
images get different predictions and maps. At the last layer before pooling
and the dense head Grad-CAM++ nearly equals LayerCAM, so an earlier layer is
compared too. The raw ``cam`` output (feature-map resolution) is compared
after dividing by its peak with tf-keras-vis' unexpanded, unnormalised map
(``seek_penultimate_conv_layer=False`` or it silently moves to another layer).

The model, the exports and both sides' maps are made in a subprocess with
oneDNN off (``vis_reference.py``), so nothing depends on the oneDNN setting
of the test process.

The tolerance is 2e-3, but at ``block_13_expand_relu`` this random network
amplifies float32 rounding: tf-keras-vis itself, on the same model and input,
moves by up to 7.4e-3 (Grad-CAM), 5.7e-2 (Grad-CAM++) and 6.1e-3 (LayerCAM)
when only its convolution kernels change (oneDNN instead of Eigen), as much
as a one-ulp change of the input moves it. So tf-keras-vis is run with both
kernel sets, and each image's map must be within 2e-3 of one of the two: the
tolerance is not widened, the reference is taken as what it is, one of the
answers float32 gives. Each layer and method must keep at least one image on
which the two runs agree within 2e-3 / 4, so the comparison never rests on
the chaotic images alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SIZE = 160
METHODS = ("gradcam", "gradcampp", "layercam")
LAYERS = ("out_relu", "block_13_expand_relu")
TOLERANCE = 2e-3  # issue 8 asks for 2e-3, at both layers
STABLE = TOLERANCE / 4  # the two tf-keras-vis runs agree this well on a stable image


def _photos() -> np.ndarray:
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    return np.stack([np.asarray(Image.fromarray(p).resize((SIZE, SIZE), Image.BILINEAR)) for p in photos])


@pytest.fixture(scope="module")
def maps_by_layer(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """Per layer: the served maps, tf-keras-vis' maps, and tf-keras-vis' maps on oneDNN as ``onednn_<method>``."""
    folder = tmp_path_factory.mktemp("vis")
    np.save(folder / "images.npy", _photos())
    script = Path(__file__).with_name("vis_reference.py")
    for step, onednn in (("serve", "0"), ("spread", "1")):
        subprocess.run(
            [sys.executable, str(script), step, str(folder / "images.npy"), str(folder), *LAYERS],
            check=True, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn}, timeout=1800,
        )
    return {
        layer: {**np.load(folder / f"{layer}.npz"),
                **{f"onednn_{name}": cam for name, cam in np.load(folder / f"{layer}_onednn.npz").items()}}
        for layer in LAYERS
    }


@pytest.fixture(scope="module", params=LAYERS)
def compared(request, maps_by_layer):
    layer = request.param
    maps = dict(maps_by_layer[layer])
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


def _per_image(difference: np.ndarray) -> np.ndarray:
    return difference.reshape(len(difference), -1).max(axis=1)


@pytest.mark.parametrize("method", METHODS)
def test_equals_tf_keras_vis(compared, method):
    layer, served, reference, _ = compared
    got = _normalised(served[f"explain_{method}"]["cam"])
    want = _normalised(reference[method])
    assert got.shape == want.shape, f"{layer}: {got.shape} vs tf-keras-vis {want.shape}"
    assert want.max() > 0, "tf-keras-vis map is all zero; the comparison would prove nothing"
    # Both sides get the same float32 input: vis_reference.py feeds tf-keras-vis the export's own
    # preprocessing (``images * (1/255)``), not ``images / 255``.
    other = _normalised(reference[f"onednn_{method}"])
    spread = _per_image(np.abs(other - want))
    assert (spread <= STABLE).any(), (
        f"{method} at {layer}: tf-keras-vis moves by {spread} per image with the kernels alone, so every image "
        "is chaotic here; compare at a layer where this network's map is not"
    )
    difference = np.minimum(_per_image(np.abs(got - want)), _per_image(np.abs(got - other)))
    assert (difference <= TOLERANCE).all(), (
        f"{method} at {layer}: {difference} per image from the nearer tf-keras-vis run (their spread: {spread})"
    )


def test_the_methods_differ(compared):
    """Else the comparison could not tell a mix-up apart; Grad-CAM++ and LayerCAM only at the earlier layer."""
    layer, served, _, _ = compared
    maps = {m: _normalised(served[f"explain_{m}"]["cam"]) for m in METHODS}
    assert np.max(np.abs(maps["gradcam"] - maps["layercam"])) > 0.05
    if layer == LAYERS[1]:  # at the last layer before pooling and a dense head they nearly coincide
        assert np.max(np.abs(maps["gradcampp"] - maps["layercam"])) > 0.05
