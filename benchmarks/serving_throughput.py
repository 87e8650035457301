"""``explain`` throughput of the local server with 16 concurrent callers, with and without batching.

Usage::

    python benchmarks/serving_throughput.py --callers 16 --requests 8

Exports a small MobileNetV2 (``alpha=0.35``, 128 px, random weights) with
``export_model``, serves it in-process on a loopback port and runs
``--callers`` threads that share one sync ``ExplainClient``, each sending
``--requests`` single-image ``explain`` calls (bounded: callers x requests per
mode, after a short warm-up). Prints a markdown table: requests/s, images/s,
p50/p99 latency and the mean batch the server ran.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serving_latency import MODEL, export_mobilenet_v2, images, local_server, timed  # noqa: E402


def run_mode(export: Path, batching, callers: int, requests: int, size: int) -> dict[str, float]:
    from gradcam_serving.client import ExplainClient

    pixels = images(1, size)
    latencies: list[float] = []
    lock = threading.Lock()
    with local_server(export, batching=batching) as (server, target), ExplainClient(target, MODEL, timeout=600) as client:
        for _ in range(2):
            client.explain(pixels)
        first_batch = len(server.metrics.batch_sizes(MODEL))

        def caller() -> None:
            for _ in range(requests):
                elapsed = timed(lambda: client.explain(pixels))
                with lock:
                    latencies.append(elapsed)

        threads = [threading.Thread(target=caller) for _ in range(callers)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        sizes = server.metrics.batch_sizes(MODEL)[first_batch:]
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "req_s": count / wall,
        "img_s": count * pixels.shape[0] / wall,
        "p50": statistics.median(latencies) * 1e3,
        "p99": latencies[max(0, int(round(count * 0.99)) - 1)] * 1e3,
        "mean_batch": statistics.mean(sizes) if sizes else 1.0,
        "batches": len(sizes) if sizes else count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--requests", type=int, default=8, help="explain calls per caller and mode")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width multiplier")
    args = parser.parse_args()

    from gradcam_serving.server import BatchingOptions

    batching = BatchingOptions(max_batch_size=args.callers, batch_timeout_micros=5_000, max_enqueued_batches=100,
                               num_batch_threads=os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        export = export_mobilenet_v2(Path(tmp), args.size, args.alpha)
        results = {label: run_mode(export, options, args.callers, args.requests, args.size)
                   for label, options in (("no batching", None), ("batching", batching))}

    print(f"\n`explain` throughput, MobileNetV2 alpha={args.alpha} {args.size} px, {args.callers} concurrent callers x "
          f"{args.requests} single-image requests, loopback gRPC ({os.cpu_count()} CPUs)\n")
    print("| mode | requests | requests/s | images/s | p50 (ms) | p99 (ms) | Session runs | mean batch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in results.items():
        print(f"| {label} | {r['requests']} | {r['req_s']:.1f} | {r['img_s']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} "
              f"| {r['batches']} | {r['mean_batch']:.1f} |")
    print(f"\nbatching: max_batch_size={batching.max_batch_size}, batch_timeout_micros={batching.batch_timeout_micros}, "
          f"num_batch_threads={batching.num_batch_threads}")


if __name__ == "__main__":
    main()
