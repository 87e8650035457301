"""The export's maps and tf-keras-vis' maps for ``test_tf_keras_vis.py``, in one process with oneDNN off.

tf-keras-vis differentiates with an eager ``tf.GradientTape``, which can
segfault inside oneDNN's Conv2DBackpropFilter on AMD EPYC; the exporter tests
must keep oneDNN on (they check oneDNN's empty-batch behaviour), so the
comparison runs in its own process with ``TF_ENABLE_ONEDNN_OPTS=0``. The
export is run there too (on TF Serving's loading path), so both sides use the
same convolution kernels: oneDNN and Eigen differ in float32 rounding, which
a deep randomly initialised network amplifies at early layers.

Usage: ``python vis_reference.py MODEL.keras IMAGES.npy EXPORT_DIR LAYER OUT.npz``
"""

from __future__ import annotations

import os
import sys

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus  # noqa: E402
from tf_keras_vis.layercam import Layercam  # noqa: E402
from tf_keras_vis.utils.scores import CategoricalScore  # noqa: E402


METHODS = ("gradcam", "gradcampp", "layercam")


def main(model_path: str, images_path: str, export_dir: str, layer: str, out: str) -> None:
    import tensorflow as tf

    from gradcam_serving.exporter import Preprocessing, run_like_tf_serving

    images = np.load(images_path)
    predicted = np.full(len(images), -1, np.int32)
    served = run_like_tf_serving(export_dir, {
        f"explain_{m}": {"images": images, "class_index": predicted} for m in METHODS
    })
    maps = {f"served_{m}": served[f"explain_{m}"]["cam"] for m in METHODS}
    classes = served["explain_gradcam"]["class_index"]
    maps["classes"] = classes
    maps["probabilities"] = served["explain_gradcam"]["probabilities"]
    model = keras.models.load_model(model_path)
    # The exact input the export computes (pixel * (1/255) in float32), not ``images / 255``: the two differ
    # by one ulp in 40% of the pixels, and at block_13_expand_relu of this randomly initialised network that
    # alone moves tf-keras-vis' own map by 6.0e-3 (Grad-CAM), 4.4e-3 (Grad-CAM++), 3.9e-3 (LayerCAM).
    pixels = Preprocessing().apply(tf.cast(images, tf.float32)).numpy()
    score = CategoricalScore(classes.tolist())
    for name, method in (("gradcam", Gradcam), ("gradcampp", GradcamPlusPlus), ("layercam", Layercam)):
        maps[name] = np.asarray(
            method(model, clone=True)(
                score, pixels, penultimate_layer=layer, seek_penultimate_conv_layer=False,
                expand_cam=False, normalize_cam=False,
            )
        )
    np.savez(out, **maps)


if __name__ == "__main__":
    main(*sys.argv[1:])
