"""The built-in demo: synthetic shapes, a tiny hub module, Grad-CAM over gRPC.

Shared by ``gradcam-serving demo``, the tests and the benchmarks, because all
of them need a model whose right answer is known: every image holds one shape
at a known box, so a heatmap can be scored (the pointing game, from
``gradcam_serving.evaluate``) without any downloaded data or weights.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CLASSES",
    "DemoReport",
    "ShapesData",
    "make_shapes",
    "run_demo",
    "train_demo_hub_module",
]

CLASSES = ("square", "ring", "cross")
SIZE = 64


@dataclass(frozen=True)
class ShapesData:
    """Images ``[N, S, S, 3]`` uint8, labels ``[N]`` and boxes ``[N, 4]`` as (top, left, bottom, right)."""

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray


def _shape_mask(kind: int, extent: int) -> np.ndarray:
    """Filled square, hollow ring or plus sign: told apart by local texture, as CNNs like."""
    yy, xx = np.mgrid[0:extent, 0:extent]
    center = (extent - 1) / 2
    if CLASSES[kind] == "square":
        return np.ones((extent, extent), bool)
    if CLASSES[kind] == "ring":
        radius = np.sqrt((yy - center) ** 2 + (xx - center) ** 2)
        return (radius <= extent / 2) & (radius >= extent / 4)
    arm = max(1, extent // 6)
    return (np.abs(yy - center) <= arm) | (np.abs(xx - center) <= arm)


def make_shapes(count: int, *, size: int = SIZE, seed: int = 0) -> ShapesData:
    """One bright shape of random hue at a random place on a noisy grey background per image."""
    rng = np.random.default_rng(seed)
    images = rng.normal(110, 25, (count, size, size, 3)).clip(0, 255).astype(np.uint8)
    labels = rng.integers(0, len(CLASSES), count)
    boxes = np.zeros((count, 4), np.int32)
    for i in range(count):
        extent = int(rng.integers(size // 5, size // 3))
        top, left = (int(v) for v in rng.integers(0, size - extent, 2))
        mask = _shape_mask(int(labels[i]), extent)
        color = rng.integers(170, 256, 3)  # bright on a mid-grey background, in any hue
        images[i, top : top + extent, left : left + extent][mask] = color
        boxes[i] = (top, left, top + extent, left + extent)
    return ShapesData(images, labels.astype(np.int32), boxes)


def train_demo_hub_module(path: str | os.PathLike[str], *, samples: int = 2000, epochs: int = 4, seed: int = 0) -> float:
    """Train the tiny shapes CNN and save it as a TF2 hub module; return its held-out accuracy."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    layers = tf_keras.layers
    inputs = tf_keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(24, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="features")(x)
    # Global max pooling learns this task in a few epochs (average pooling stalls at chance: the
    # shape is ~6% of the image). A non-negative head keeps all class evidence additive, so
    # Grad-CAM's weighted sum of feature maps peaks on the shape instead of cancelling out.
    x = layers.GlobalMaxPooling2D(name="pool_max")(x)
    outputs = layers.Dense(
        len(CLASSES), activation="softmax", kernel_constraint=tf_keras.constraints.NonNeg(), name="classes"
    )(x)
    model = tf_keras.Model(inputs, outputs, name="shapes_cnn")
    model.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    train = make_shapes(samples, seed=seed)
    held_out = make_shapes(300, seed=seed + 1)
    model.fit(train.images / 255.0, train.labels, batch_size=32, epochs=epochs, verbose=0)
    _, accuracy = model.evaluate(held_out.images / 255.0, held_out.labels, verbose=0)
    tf.saved_model.save(model, os.fspath(path))
    return float(accuracy)


@dataclass(frozen=True)
class DemoReport:
    export_path: Path
    overlays: list[Path]
    accuracy: float
    pointing_hits: int
    pointing_total: int
    pointing_hits_exact_box: int

    @property
    def pointing_rate(self) -> float:
        return self.pointing_hits / self.pointing_total


def _explain_over_grpc(export_base: Path, name: str, data: ShapesData) -> Any:
    """Start the local server on a free port, ask it for explanations, stop it."""
    from gradcam_serving.client import ExplainClient
    from gradcam_serving.server import ModelConfig, ServerOptions, create_server

    server, port = create_server(
        ServerOptions(models=(ModelConfig(name, str(export_base / name)),), port=0, host="127.0.0.1")
    )
    server.start()
    try:
        with ExplainClient(f"127.0.0.1:{port}", name, timeout=60) as client:
            client.wait_until_ready(60)
            return client.explain(data.images)
    finally:
        server.stop(grace=5)


def run_demo(workdir: str | os.PathLike[str], *, images: int = 200, step: Callable[[str], None] = print) -> DemoReport:
    """Train, export, serve and explain the shapes demo; write overlays into ``workdir``."""
    from gradcam_serving.client import save_overlay
    from gradcam_serving.evaluate import pointing_game_hits
    from gradcam_serving.exporter import export_model

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    module = workdir / "shapes_hub_module"
    step("Training the demo hub module on synthetic shapes")
    accuracy = train_demo_hub_module(module)
    step(f"Exporting it with an explain signature (held-out accuracy {accuracy:.1%})")
    labels = list(CLASSES)
    export = export_model(module, workdir / "models", "shapes", labels=labels, overwrite=True, version=1)
    data = make_shapes(images, seed=1234)
    step("Serving it on a free local port and calling explain over gRPC")
    explanation = _explain_over_grpc(workdir / "models", "shapes", data)
    # The default allowance at 64 px is 4 px, about one cell of the demo model's 16x16 feature map.
    hits = pointing_game_hits(explanation.heatmap, data.boxes, tolerance=None)
    overlay_dir = workdir / "overlays"
    if overlay_dir.exists():
        shutil.rmtree(overlay_dir)
    overlay_dir.mkdir()
    overlays = [
        save_overlay(data.images[i], explanation.heatmap[i], overlay_dir / f"{i:03d}_{explanation.label[i]}.png")
        for i in range(min(8, images))
    ]
    exact = pointing_game_hits(explanation.heatmap, data.boxes, tolerance=0)
    return DemoReport(export.path, overlays, accuracy, int(hits.sum()), len(hits), int(exact.sum()))
