"""Every refusal names what was wrong and leaves nothing numeric behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcam_serving import signatures as sig
from gradcam_serving.errors import (
    LayerNotFoundError,
    ModelSourceError,
    ServingCheckError,
    UnsupportedModelError,
)
from gradcam_serving.exporter import export_model, inspect_model, run_like_tf_serving

SIZE = 48


def _numeric_children(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.is_dir() and p.name.isdigit()]


def _leftovers(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.name.isdigit() or p.name.startswith(".tmp")]


def _keras_model(build_body):
    import tf_keras

    inputs = tf_keras.Input((SIZE, SIZE, 3))
    return tf_keras.Model(inputs, build_body(inputs, tf_keras.layers))


def test_missing_path(tmp_path):
    with pytest.raises(ModelSourceError, match=r"does not exist; expected a SavedModel folder"):
        export_model(tmp_path / "nowhere", tmp_path / "out", "m")
    assert _leftovers(tmp_path) == []


def test_unknown_layer_lists_closest_candidates(tiny_models, tmp_path):
    with pytest.raises(LayerNotFoundError) as info:
        export_model(tiny_models.hub_classifier, tmp_path, "m", layer="c3")
    assert "unknown layer 'c3'" in str(info.value)
    assert "c2" in info.value.suggestions and "c1" in info.value.suggestions
    assert _leftovers(tmp_path) == []


def test_model_without_spatial_tensor(tmp_path):
    model = _keras_model(lambda x, L: L.Dense(3, activation="softmax")(L.Dense(8)(L.Flatten()(x))))
    with pytest.raises(UnsupportedModelError, match="no 4-D feature map"):
        export_model(model, tmp_path, "mlp")
    assert _leftovers(tmp_path) == []


def test_output_that_is_not_class_scores(tmp_path):
    model = _keras_model(lambda x, L: L.Conv2D(4, 3, padding="same")(x))
    with pytest.raises(UnsupportedModelError, match=r"expected class scores, a float tensor \[N, C\]"):
        export_model(model, tmp_path, "segmenter")
    assert _leftovers(tmp_path) == []


def _module_with(op_factory):
    import tensorflow as tf

    class Sneaky(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)])
        def __call__(self, x):
            features = tf.nn.relu(tf.nn.conv2d(x, self.kernel, 1, "SAME"))
            logits = tf.reduce_mean(features, axis=[1, 2])
            return logits + op_factory(logits)

    return Sneaky()


@pytest.mark.parametrize(
    ("factory", "op"),
    [
        pytest.param(
            lambda t: __import__("tensorflow").py_function(lambda a: a, [t], "float32"), "EagerPyFunc", id="py_function"
        ),
        pytest.param(
            lambda t: 0.0 * __import__("tensorflow").cast(
                __import__("tensorflow").strings.length(__import__("tensorflow").io.read_file("/etc/hostname")),
                "float32",
            ),
            "ReadFile",
            id="read_file",
        ),
    ],
)
def test_refused_ops_are_named(tmp_path, factory, op):
    with pytest.raises(UnsupportedModelError, match=f"contains op '{op}'.*TF Serving cannot run"):
        export_model(_module_with(factory), tmp_path, "sneaky", input_size=(SIZE, SIZE))
    assert _leftovers(tmp_path) == []


def test_size_agnostic_model_needs_input_size(tmp_path):
    module = _module_with(lambda t: 0.0 * t)
    with pytest.raises(UnsupportedModelError, match="--input-size"):
        inspect_model(module)


def test_gate_catches_keras3_saved_with_tf_saved_model_save(tmp_path):
    """The known serving#2250 failure: fine in Python, broken on TF Serving's Session path."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    tf.saved_model.save(model, str(tmp_path / "bad"))
    images = np.zeros((1, 8, 8, 3), np.float32)
    (key,) = tf.saved_model.load(str(tmp_path / "bad")).signatures["serving_default"].structured_input_signature[1]
    with pytest.raises(ServingCheckError, match="Could not find variable"):
        run_like_tf_serving(tmp_path / "bad", {"serving_default": {key: images}})


@pytest.fixture(scope="module")
def hub_export(tiny_models, tmp_path_factory) -> Path:
    return export_model(
        tiny_models.hub_classifier, tmp_path_factory.mktemp("bad_requests"), "m", methods="gradcam,reciprocam"
    ).path


def _explain(path: Path, images, class_index):
    return run_like_tf_serving(path, {"explain": {"images": images, "class_index": class_index}})


@pytest.mark.parametrize(
    ("images", "class_index", "message"),
    [
        pytest.param(np.zeros((SIZE, SIZE, 3), np.uint8), [0], r"shape \[N, H, W, 3\].*got shape.*\[48 48 3\]", id="rank-3-images"),
        pytest.param(np.zeros((1, SIZE, SIZE, 1), np.uint8), [0], r"shape \[N, H, W, 3\].*got shape.*\[1 48 48 1\]", id="grayscale"),
        pytest.param(np.zeros((2, SIZE, SIZE, 3), np.uint8), [0, 9], r"0\.\.3 \(the model has 4 classes\); got class_index\] \[0 9\]", id="class-9"),
        pytest.param(np.zeros((2, SIZE, SIZE, 3), np.uint8), [0, -2], r"each -1 \(the predicted class\).*\[0 -2\]", id="class-minus-2"),
        pytest.param(np.zeros((2, SIZE, SIZE, 3), np.uint8), [0, 1, 2], r"one entry per image.*\[0 1 2\] \[for a batch of images of size\] \[2\]", id="length-mismatch"),
        pytest.param(np.zeros((1, SIZE, SIZE, 3), np.uint8), 0, r"int32 vector.*got class_index\] \[0\]", id="scalar-class"),
        pytest.param(np.zeros((2, SIZE, SIZE, 3), np.uint8), [[0, 1]], r"int32 vector.*\[\[0 1\]\]", id="class-matrix"),
    ],
)
def test_bad_requests_fail_inside_the_graph(hub_export, images, class_index, message):
    with pytest.raises(ServingCheckError, match=message):
        _explain(hub_export, images, np.array(class_index, np.int32))


def test_bad_request_message_on_the_tf2_path_too(hub_export):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(hub_export))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[N, H, W, 3\]"):
        loaded.signatures["predict"](images=np.zeros((1, 8, 8, 4), np.uint8))


def test_empty_batch_is_accepted(hub_export):
    """Every signature, on a model with BatchNorm (which oneDNN refuses to run on an empty batch)."""
    images = np.zeros((0, 40, 56, 3), np.uint8)
    files = np.zeros((0,), object)
    none = np.zeros((0,), np.int32)
    k = np.array(2, np.int32)
    out = run_like_tf_serving(hub_export, {
        "predict": {"images": images}, "predict_bytes": {"image_bytes": files},
        "explain": {"images": images, "class_index": none}, "explain_bytes": {"image_bytes": files, "class_index": none},
        "explain_gradcam": {"images": images, "class_index": none},
        "explain_reciprocam": {"images": images, "class_index": none},
        "explain_bytes_reciprocam": {"image_bytes": files, "class_index": none},
        "explain_topk": {"images": images, "k": k}, "explain_topk_bytes": {"image_bytes": files, "k": k},
    })
    for name in ("predict", "predict_bytes"):
        assert {a: v.shape for a, v in out[name].items()} == {
            "probabilities": (0, 4), "class_index": (0,), "score": (0,), "label": (0,)}, name
    for name in ("explain", "explain_gradcam", "explain_reciprocam"):
        assert out[name]["heatmap"].shape == (0, 40, 56) and out[name]["cam"].shape == (0, 12, 12), name
        assert out[name]["probabilities"].shape == (0, 4) and out[name]["label"].shape == (0,), name
    for name in ("explain_bytes", "explain_bytes_reciprocam"):
        assert out[name]["heatmap"].shape == (0, SIZE, SIZE) and out[name][sig.OVERLAY_PNG].shape == (0,), name
    assert out["explain_topk"]["heatmap"].shape == (0, 2, 40, 56)
    assert out["explain_topk_bytes"]["heatmap"].shape == (0, 2, SIZE, SIZE)
    for name in ("explain_topk", "explain_topk_bytes"):
        top = out[name]
        assert top["class_index"].shape == top["score"].shape == top["label"].shape == (0, 2), name
        assert top["cam"].shape == (0, 2, 12, 12), name


_EMPTY_ON_ONEDNN = """
import json, sys
import numpy as np
from gradcam_serving.exporter import run_like_tf_serving
images, none = np.zeros((0, 40, 56, 3), np.uint8), np.zeros((0,), np.int32)
out = run_like_tf_serving(sys.argv[1], {"predict": {"images": images},
                                        "explain": {"images": images, "class_index": none}})
print(json.dumps({name: {alias: list(value.shape) for alias, value in outputs.items()} for name, outputs in out.items()}))
"""


def test_empty_batch_is_accepted_with_onednn_on(hub_export):
    """The suite runs with oneDNN off (tests/conftest.py), so the kernels that refuse empty batches run here."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run([sys.executable, "-c", _EMPTY_ON_ONEDNN, str(hub_export)], capture_output=True,
                               text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    shapes = json.loads(completed.stdout.strip().splitlines()[-1])
    assert shapes["predict"]["probabilities"] == [0, 4] and shapes["predict"]["label"] == [0]
    assert shapes["explain"]["heatmap"] == [0, 40, 56] and shapes["explain"]["cam"] == [0, 12, 12]


def test_broken_keras_file_names_the_file(tmp_path):
    bad = tmp_path / "empty.h5"
    bad.write_bytes(b"")
    with pytest.raises(ModelSourceError, match=r"could not load .*empty\.h5 as a tf_keras \.h5 model"):
        export_model(bad, tmp_path / "out", "m")
    assert _leftovers(tmp_path) == []


def test_input_size_conflicting_with_a_fixed_size_is_refused(tiny_models):
    with pytest.raises(UnsupportedModelError, match=r"takes 48x48 images; --input-size 64,64"):
        inspect_model(tiny_models.hub_classifier, input_size=(64, 64))


def test_existing_version_is_refused_before_loading(tmp_path):
    (tmp_path / "m" / "3").mkdir(parents=True)
    from gradcam_serving.errors import VersionExistsError

    with pytest.raises(VersionExistsError):
        export_model(tmp_path / "not-even-a-model", tmp_path, "m", version=3)


def test_float16_outputs_are_served_as_float32(tmp_path):
    import tf_keras

    inputs = tf_keras.Input((SIZE, SIZE, 3))
    x = tf_keras.layers.Conv2D(4, 3, strides=4, activation="relu", dtype="mixed_float16")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D(dtype="mixed_float16")(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3, activation="softmax", dtype="mixed_float16")(x))
    path = export_model(model, tmp_path, "half").path
    images = np.random.default_rng(16).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    out = _explain(path, images, np.array([-1, 1], np.int32))["explain"]
    assert out["probabilities"].dtype == out["score"].dtype == out["heatmap"].dtype == out["cam"].dtype == np.float32
    # The float16 feature map is explained in float32: each map peaks at exactly 1 where its raw map does.
    peaks = out["heatmap"].max(axis=(1, 2))
    assert np.all(np.isfinite(out["heatmap"])) and np.all(np.isfinite(out["cam"]))
    np.testing.assert_array_equal(peaks, np.where(out["cam"].max(axis=(1, 2)) > 0, 1.0, 0.0))
    assert peaks.max() == 1.0, "every map is zero; the test would prove nothing"
