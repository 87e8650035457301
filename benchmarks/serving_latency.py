"""``explain`` latency through the local server vs the same export run in-process.

Usage::

    python benchmarks/serving_latency.py --repeats 15

Exports ``tf_keras.applications.MobileNetV2(weights=None)`` (random weights,
224 px, 1000 classes) with ``export_model``, then measures, interleaved:

- **server**: our ``ExplainClient`` over gRPC on loopback to the local server
  (``create_server`` in this process, no batching);
- **in-process**: the same export loaded the TF Serving way (``tf.compat.v1``
  SavedModel loader with the ``serve`` tag, ``Session.run`` by the tensor
  names of the ``explain`` SignatureDef), in this process.

Prints a markdown table of medians per batch size and the ratio server /
in-process (target <= 1.25x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

MODEL = "mobilenet_v2"
TARGET_RATIO = 1.25


def export_mobilenet_v2(base: Path, size: int = 224, alpha: float = 1.0) -> Path:
    """MobileNetV2 with random weights, exported with predict/explain; returns ``base/MODEL/1``."""
    import tf_keras

    from gradcam_serving.exporter import export_model

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, weights=None)
    return export_model(model, base, MODEL, version=1).path


@contextmanager
def local_server(export: Path, batching: Any = None, threads: int = 32) -> Iterator[tuple[Any, str]]:
    """The local server on a loopback port, serving ``export``'s model folder; yields (server, target)."""
    from gradcam_serving.server import ModelConfig, ServerOptions, create_server

    server, port = create_server(ServerOptions(
        models=(ModelConfig(MODEL, str(export.parent)),), port=0, host="127.0.0.1",
        batching=batching, grpc_max_threads=threads))
    server.start()
    try:
        yield server, f"127.0.0.1:{port}"
    finally:
        server.stop(5)


def images(batch: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)


class TfServingWayRunner:
    """The export loaded like tensorflow_model_server loads it, run by SignatureDef tensor names."""

    def __init__(self, export: Path, signature: str = "explain") -> None:
        from gradcam_serving.runtime import ExportSession

        self._export = ExportSession(export)
        self._signature = signature

    def run(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        return self._export.run(self._signature, inputs)

    def close(self) -> None:
        self._export.close()


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(batch: int, size: int, repeats: int, client: Any, runner: TfServingWayRunner) -> dict[str, list[float]]:
    """Interleaved timings (server first on even rounds, in-process first on odd ones) after one warm-up each."""
    pixels = images(batch, size)
    class_index = np.full(batch, -1, np.int32)
    calls = {
        "server": lambda: client.explain(pixels),
        "in-process": lambda: runner.run(images=pixels, class_index=class_index),
    }
    served, local = client.explain(pixels), runner.run(images=pixels, class_index=class_index)
    difference = float(np.abs(served.heatmap - local["heatmap"]).max())
    if difference > 1e-4:
        raise SystemExit(f"server and in-process heatmaps differ by {difference} at batch {batch}")
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for round_ in range(repeats):
        for name in order if round_ % 2 == 0 else order[::-1]:
            times[name].append(timed(calls[name]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per path and batch size")
    parser.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--size", type=int, default=224, help="image and model input size")
    args = parser.parse_args()

    from gradcam_serving.client import ExplainClient

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        export = export_mobilenet_v2(Path(tmp), args.size)
        print(f"exported MobileNetV2 (random weights, {args.size} px) in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        runner = TfServingWayRunner(export)
        rows = []
        with local_server(export) as (_, target), ExplainClient(target, MODEL, timeout=600) as client:
            for batch in (int(b) for b in args.batches.split(",")):
                times = measure(batch, args.size, args.repeats, client, runner)
                server, local = (statistics.median(times[k]) * 1e3 for k in ("server", "in-process"))
                rows.append((batch, server, local, server / local))
        runner.close()

    print(f"\n`explain` latency, MobileNetV2 {args.size} px, median of {args.repeats} interleaved calls "
          f"({os.cpu_count()} CPUs)\n")
    print("| batch | server via gRPC (ms) | in-process, TF Serving way (ms) | ratio | target |")
    print("|---:|---:|---:|---:|---|")
    for batch, server, local, ratio in rows:
        verdict = "ok" if ratio <= TARGET_RATIO else "over"
        print(f"| {batch} | {server:.1f} | {local:.1f} | {ratio:.2f}x | <= {TARGET_RATIO}x ({verdict}) |")


if __name__ == "__main__":
    main()
