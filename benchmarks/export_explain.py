"""Cost of `explain` against `predict` on MobileNetV2 at 224 px, and export size/time.

Random weights (no download). Both signatures are timed side by side in one
process, loaded the way TF Serving loads them (TF1 loader + Session.run by
SignatureDef tensor names), interleaved so machine noise hits both alike.

    python benchmarks/export_explain.py [--repeats 20] [--source tf_keras|hub]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _build_source(kind: str, folder: Path):
    import tensorflow as tf
    import tf_keras

    model = tf_keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)
    if kind == "tf_keras":
        return model, sum(int(np.prod(v.shape)) * v.dtype.size for v in model.variables)
    path = folder / "mobilenet_v2_hub"
    tf.saved_model.save(model, str(path))
    return path, sum(p.stat().st_size for p in (path / "variables").iterdir())


def session_runner(export_dir: Path):
    """Run signatures by SignatureDef names on the TF1 loader, as TF Serving does (shared with zoo.py)."""
    from gradcam_serving.runtime import ExportSession

    return ExportSession(export_dir).run


def _time(run, name: str, feeds: dict[str, np.ndarray]) -> float:
    start = time.perf_counter()
    run(name, feeds)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--source", choices=["tf_keras", "hub"], default="hub")
    args = parser.parse_args()

    import tensorflow as tf

    from gradcam_serving.exporter import export_model

    tf.get_logger().setLevel("ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source, source_bytes = _build_source(args.source, folder)
        start = time.perf_counter()
        result = export_model(source, folder / "models", "mobilenet_v2")
        export_seconds = time.perf_counter() - start
        export_bytes = sum(p.stat().st_size for p in (result.path / "variables").iterdir())
        run = session_runner(result.path)
        rng = np.random.default_rng(0)
        print(f"source: MobileNetV2 224px random weights as {args.source}; Grad-CAM layer: {result.layer.name}")
        print(f"export time: {export_seconds:.1f} s; variables/ {export_bytes / 1e6:.2f} MB vs source "
              f"{source_bytes / 1e6:.2f} MB = {export_bytes / source_bytes:.3f}x")
        print()
        print("| batch | predict median (ms) | explain median (ms) | explain / predict |")
        print("|---|---|---|---|")
        for batch in (1, 16):
            images = rng.integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
            feeds = {"images": images}
            explain_feeds = {"images": images, "class_index": np.full(batch, -1, np.int32)}
            for _ in range(3):  # warm up both
                run("predict", feeds)
                run("explain", explain_feeds)
            predict_t, explain_t = [], []
            for _ in range(args.repeats):
                predict_t.append(_time(run, "predict", feeds))
                explain_t.append(_time(run, "explain", explain_feeds))
            p, e = statistics.median(predict_t), statistics.median(explain_t)
            print(f"| {batch} | {p * 1e3:.1f} | {e * 1e3:.1f} | {e / p:.3f}x |")


if __name__ == "__main__":
    main()
