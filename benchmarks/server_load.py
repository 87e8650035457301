"""Throughput/latency of the local server, with and without batching.

Usage::

    python benchmarks/server_load.py --threads 8 --requests 50 --image-size 64

Builds the tiny test model from ``tests/server/model_factory.py`` in a temp
folder, starts the server in-process on a loopback port and fires Predict
requests from ``--threads`` threads through the official stubs. Prints
requests/s and p50/p99 latency per mode plus the batch sizes seen.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "server"))

import model_factory as mf  # noqa: E402
import server_harness  # noqa: E402

from gradcam_serving.server import BatchingOptions, ModelConfig  # noqa: E402


def run(base: str, threads: int, requests: int, size: int, batching: BatchingOptions | None) -> None:
    harness = server_harness.start((ModelConfig("clf", base),), batching=batching)
    request = mf.predict_request(mf.images(1, size=size), "explain", class_index=mf.np.array([-1], mf.np.int32))
    latencies: list[float] = []

    def worker(_: int) -> None:
        for _ in range(requests):
            start = time.perf_counter()
            harness.predict(request)
            latencies.append(time.perf_counter() - start)

    try:
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(worker, range(threads)))
        elapsed = time.perf_counter() - start
        sizes = harness.server.metrics.batch_sizes("clf")
        latencies.sort()
        label = "batching" if batching else "no batching"
        print(f"{label:12s} {len(latencies) / elapsed:8.1f} req/s  p50 {statistics.median(latencies) * 1e3:6.1f} ms"
              f"  p99 {latencies[int(len(latencies) * 0.99) - 1] * 1e3:6.1f} ms"
              + (f"  mean batch {statistics.mean(sizes):.1f}" if sizes else ""))
    finally:
        harness.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-timeout-micros", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        mf.write_model(base, 1)
        run(base, args.threads, args.requests, args.image_size, None)
        run(base, args.threads, args.requests, args.image_size,
            BatchingOptions(max_batch_size=32, batch_timeout_micros=args.batch_timeout_micros, num_batch_threads=2))


if __name__ == "__main__":
    main()
