"""Data for the Beam batch tests: a tiny model that learned a shortcut, and folders of images.

One export serves every test (training and exporting take most of the time):
the demo's shapes (``gradcam_serving.demo.make_shapes``) sit inside a noisy
canvas, and every image of class ``marked`` also carries a checkerboard mark in
the top-left corner, while its shape is a ring or a cross like the other two
classes. The mark is the only way to tell ``marked`` apart, so the model learns
it, and the summary must flag that class's border evidence and no other.
The export has a small pixel limit, so an "over the limit" image stays small.
"""

from __future__ import annotations

import glob
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcam_serving.demo import CLASSES, make_shapes

CANVAS = 32
TILE = 24
LABELS = ("marked", "ring", "cross")
METHODS = ("gradcam", "layercam")
MAX_PIXELS = 96 * 96
_RING, _CROSS = CLASSES.index("ring"), CLASSES.index("cross")


@dataclass(frozen=True)
class ShortcutSet:
    images: np.ndarray  # uint8 [N, CANVAS, CANVAS, 3]
    labels: np.ndarray  # int [N], index into LABELS


def _mark(image: np.ndarray) -> None:
    """A 6x6 black-and-white checkerboard of 2 px cells at the top-left corner."""
    yy, xx = np.mgrid[0:6, 0:6]
    image[1:7, 1:7] = (((yy // 2 + xx // 2) % 2) * 255)[..., None]


def make_shortcut_set(count: int, seed: int) -> ShortcutSet:
    """Rings and crosses inside the canvas; class ``marked`` adds the corner mark to either shape."""
    tiles = make_shapes(count * 3, size=TILE, seed=seed)
    keep = np.flatnonzero((tiles.labels == _RING) | (tiles.labels == _CROSS))[:count]
    rng = np.random.default_rng(seed)
    images = rng.normal(110, 25, (len(keep), CANVAS, CANVAS, 3)).clip(0, 255).astype(np.uint8)
    labels = rng.integers(0, len(LABELS), len(keep))
    offset = (CANVAS - TILE) // 2
    for i, index in enumerate(keep):
        images[i, offset:offset + TILE, offset:offset + TILE] = tiles.images[index]
        if labels[i] == 0:
            _mark(images[i])
        else:
            labels[i] = 1 if tiles.labels[index] == _RING else 2
    return ShortcutSet(images, labels)


def train_shortcut_module(path: Path, seed: int = 0) -> float:
    """The demo's architecture at 32 px (max pooling, non-negative head), saved as a hub module."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    layers = tf_keras.layers
    inputs = tf_keras.Input((CANVAS, CANVAS, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(24, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="features")(x)
    x = layers.GlobalMaxPooling2D(name="pool_max")(x)
    outputs = layers.Dense(len(LABELS), activation="softmax", kernel_constraint=tf_keras.constraints.NonNeg(),
                           name="classes")(x)
    model = tf_keras.Model(inputs, outputs)
    model.compile(tf_keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    train, held_out = make_shortcut_set(900, seed), make_shortcut_set(300, seed + 1)
    model.fit(train.images / 255.0, train.labels, batch_size=32, epochs=5, verbose=0)
    _, accuracy = model.evaluate(held_out.images / 255.0, held_out.labels, verbose=0)
    tf.saved_model.save(model, str(path))
    return float(accuracy)


def encode(image: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def resized(image: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


@dataclass(frozen=True)
class ImageFolder:
    root: Path
    paths: list[Path]  # every file written, good ones first
    labels: dict[Path, int]  # the true class of each good image


def write_images(folder: Path, count: int, seed: int, *, subfolders: int = 2) -> ImageFolder:
    """``count`` shortcut images at mixed sizes (JPEG and PNG), spread over ``subfolders`` folders."""
    data = make_shortcut_set(count, seed)
    rng = np.random.default_rng(seed)
    paths, labels = [], {}
    for i, (image, label) in enumerate(zip(data.images, data.labels)):
        height, width = (int(v) for v in rng.integers(24, 80, 2))
        fmt = "PNG" if i % 3 == 0 else "JPEG"
        path = folder / f"part{i % subfolders}" / f"img_{i:04d}.{'png' if fmt == 'PNG' else 'jpg'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(resized(image, height, width), fmt))
        paths.append(path)
        labels[path] = int(label)
    return ImageFolder(folder, paths, labels)


# -- reading a job's output and comparing it with the export run directly ------------------------------

ATOL = 1e-5


def read_summary(output: Path) -> dict[str, Any]:
    """``summary.json``: the job's own count of its rows and failures, written after everything else."""
    path = output / "summary.json"
    assert path.is_file(), f"no summary.json in {output}: the job did not finish"
    return json.loads(path.read_text())


def read_rows(output: Path) -> list[dict[str, Any]]:
    """Every parquet row, which must be as many as the job counted.

    A job with no rows may write an empty results file or none at all, so only the job's own count in
    ``summary.json`` tells "no rows" from "wrote nothing".
    """
    expected = read_summary(output)["rows"]
    files = sorted(glob.glob(str(output / "results-*.parquet")))
    assert files or expected == 0, f"no results-*.parquet in {output}, but summary.json counts {expected} rows"
    rows = [row for file in files for row in _parquet().read_table(file).to_pylist()]
    assert len(rows) == expected, f"{len(rows)} parquet rows in {output}, summary.json counts {expected}"
    return rows


def read_failed(output: Path) -> list[dict[str, str]]:
    """Every ``failed.jsonl`` line, which must be as many as the job counted."""
    failed = [json.loads(line) for line in (output / "failed.jsonl").read_text().splitlines() if line]
    expected = read_summary(output)["failed"]
    assert len(failed) == expected, f"{len(failed)} lines in failed.jsonl, summary.json counts {expected}"
    return failed


def direct_reference(export: Path, paths: Iterable[str], method: str) -> dict[str, dict[str, np.ndarray]]:
    """``explain_bytes_<method>`` of each file alone, fed and fetched by the signature table's aliases."""
    from gradcam_serving import signatures as sig
    from gradcam_serving.runtime import ExportSession

    answers = {}
    with ExportSession(export) as session:
        row = session.metadata.signature_table()[sig.explain_signature(method, encoded=True)]
        for path in paths:
            inputs = {row.pixels: np.asarray([Path(path).read_bytes()], dtype=object),
                      sig.CLASS_INDEX: np.asarray([sig.PREDICTED_CLASS], np.int32)}
            answers[path] = session.run(row.name, inputs, [sig.CLASS_INDEX, sig.SCORE, sig.CAM, sig.LABEL])
    return answers


def assert_rows_equal_direct(rows: list[dict[str, Any]], export: Path, methods: Iterable[str]) -> None:
    for method in methods:
        mine = {row["path"]: row for row in rows if row["method"] == method}
        reference = direct_reference(export, mine, method)
        for path, row in mine.items():
            want = reference[path]
            assert row["explained_class"] == int(want["class_index"][0]), path
            assert row["explained_label"] == want["label"][0].decode(), path
            np.testing.assert_allclose(row["score"], want["score"][0], rtol=0, atol=ATOL, err_msg=path)
            cam = np.asarray(row["cam"], np.float32).reshape(row["cam_shape"])
            np.testing.assert_allclose(cam, want["cam"][0], rtol=0, atol=ATOL, err_msg=path)


def _parquet() -> Any:
    import pyarrow.parquet

    return pyarrow.parquet
