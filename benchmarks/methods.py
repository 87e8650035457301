"""Cost of each CAM method over ``predict``, on TF Serving's loading path.

Usage::

    python benchmarks/methods.py [--repeats 15] [--batches 1,16]

Exports ``keras.applications.MobileNetV2(weights=None)`` (224x224, 1000
classes, random weights; nothing is downloaded) with ``--methods all`` into a
temp folder, loads it the way ``tensorflow_model_server`` does (TF1 loader,
``serve`` tag, one Session) and, per batch size, times ``Session.run`` of
``predict``, of every ``explain_<method>`` and of ``explain_topk`` with
k = 5, fetching every output of the signature. The signatures run
interleaved (round-robin, in a rotating order) on the same uint8 batch; the
table shows the median milliseconds and the ratio over ``predict`` measured
in that same run. Goals (issue 8): gradient methods <= 1.15x, reciprocam
<= 1.5x, top-5 <= 1.3x.
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

from gradcam_serving import signatures as sig  # noqa: E402

GOALS = {"reciprocam": 1.5, sig.EXPLAIN_TOPK: 1.3}
GRADIENT_GOAL = 1.15
TOP_K = 5


def export(folder: Path) -> tuple[Path, float]:
    import keras

    from gradcam_serving.exporter import export_model

    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    started = time.perf_counter()
    result = export_model(model, folder, "mobilenet_v2", methods="all")
    return result.path, time.perf_counter() - started


def requests(batch: int) -> dict[str, dict[str, np.ndarray]]:
    images = np.random.default_rng(batch).integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
    classes = np.full(batch, sig.PREDICTED_CLASS, np.int32)
    runs = {sig.PREDICT: {sig.IMAGES: images}}
    for method in sig.METHODS:
        runs[sig.explain_signature(method)] = {sig.IMAGES: images, sig.CLASS_INDEX: classes}
    runs[sig.EXPLAIN_TOPK] = {sig.IMAGES: images, sig.K: np.array(TOP_K, np.int32)}
    return runs


def time_signatures(export_dir: Path, batch: int, repeats: int) -> dict[str, float]:
    """Median ms per signature, round-robin in a rotating order, after two warm runs each."""
    from gradcam_serving.runtime import ExportSession

    with ExportSession(export_dir) as export:
        calls = {name: (name, inputs) for name, inputs in requests(batch).items()}
        names = list(calls)
        for _ in range(2):
            for name in names:
                export.run(*calls[name])
        times: dict[str, list[float]] = {name: [] for name in names}
        for repeat in range(repeats):
            order = names[repeat % len(names):] + names[: repeat % len(names)]
            for name in order:
                started = time.perf_counter()
                export.run(*calls[name])
                times[name].append((time.perf_counter() - started) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


def goal(name: str) -> float:
    method = name.removeprefix(sig.EXPLAIN + "_")
    return GOALS.get(name, GOALS.get(method, GRADIENT_GOAL if method in sig.METHODS and method != "eigencam" else 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batches", default="1,16")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        path, seconds = export(Path(tmp))
        print(f"export with --methods all: {seconds:.0f} s")
        results = {batch: time_signatures(path, batch, args.repeats) for batch in batches}
    header = "| signature | " + " | ".join(f"batch {b}: ms | x predict" for b in batches) + " | goal |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(batches) + 1))
    for name in results[batches[0]]:
        cells = []
        for batch in batches:
            ms = results[batch][name]
            cells.append(f"{ms:.1f} | {ms / results[batch][sig.PREDICT]:.2f}x")
        target = goal(name)
        label = f"{name} (k={TOP_K})" if name == sig.EXPLAIN_TOPK else name
        print(f"| {label} | " + " | ".join(cells) + f" | {f'<= {target:g}x' if target else '-'} |")


if __name__ == "__main__":
    main()
