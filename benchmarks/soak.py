"""Soak test of ``gradcam-serving serve`` on a real tiny export: malformed input, memory, load, hot swap, batching.

Usage::

    nice python benchmarks/soak.py            # the full run (5,000 malformed, 5,000 explain)
    python benchmarks/soak.py --quick         # a few hundred of each, for a smoke test

Trains nothing: the test suite's seeded tiny tf_keras classifier (48 px, conv-bn-conv-gap-dense) is
exported with ``export_model`` into a temp folder and served by the server
*process* (``python -m gradcam_serving.server``, the code behind
``gradcam-serving serve``), so its RSS can be read from ``/proc``. With a fixed
``--seed`` it prints one table:

* requests by status code for the malformed requests (hypothesis strategies of
  ``tests/server/malformed.py``: TensorProtos over gRPC, bodies over REST);
* RSS at rest before and after the malformed requests plus a burst of large requests,
  and after a second such round with new inputs (one-time cost or repeated growth);
* 5,000 ``explain`` at 16 concurrent callers: errors, p50, p99;
* a hot swap to version 2 under load: failed requests;
* ``--enable_batching`` throughput (images/s, 16 and then 32 callers of one
  image) against the same export run in-process at batch 16, as a ratio; the two
  are measured in alternating slices, so load from other processes affects both
  alike. ``--model mobilenet_v2`` serves MobileNetV2 at 128 px instead of the tiny model.

Goals: 0 UNKNOWN/INTERNAL (HTTP 500), 0 failed, RSS growth < 100 MB, ratio >= 0.8.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "server")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from gradcam_serving import signatures as sig  # noqa: E402

MODEL = "clf"
TIMEOUT = 60.0


# -- the export ---------------------------------------------------------------------------------


def build_export(base: Path, seed: int, model: str = "tiny") -> Path:
    """A seeded classifier exported with labels to ``base/clf/1``.

    ``tiny``: the test suite's 48 px classifier (``tests/conftest.py``), where per-request overhead
    dominates; ``mobilenet_v2``: ``tf_keras.applications.MobileNetV2(weights=None)`` at 128 px, where the
    model's own compute does.
    """
    import tensorflow as tf
    import tf_keras

    from conftest import build_tf_keras_classifier
    from gradcam_serving.exporter import export_model

    tf_keras.utils.set_random_seed(seed)
    classifier = build_tf_keras_classifier(seed) if model == "tiny" else tf_keras.applications.MobileNetV2(
        weights=None, input_shape=(128, 128, 3), classes=4)
    saved = base / "keras_model"
    tf.saved_model.save(classifier, str(saved))
    return export_model(saved, base / "models", MODEL, version=1, labels=["a", "b", "c", "d"]).path


# -- the server process ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m gradcam_serving.server`` on free loopback ports, stopped with SIGTERM."""

    def __init__(self, base_path: Path, *flags: str) -> None:
        self.port, self.rest_port = _free_port(), _free_port()
        command = [sys.executable, "-m", "gradcam_serving.server", f"--port={self.port}",
                   f"--rest_api_port={self.rest_port}", "--host=127.0.0.1", f"--model_name={MODEL}",
                   f"--model_base_path={base_path}", "--file_system_poll_wait_seconds=1", *flags]
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}",
                                             options=[("grpc.max_receive_message_length", -1)])
        try:
            grpc.channel_ready_future(self.channel).result(timeout=180)
        except grpc.FutureTimeoutError:
            self.stop()
            raise RuntimeError(f"server did not start: {self.output()[-2000:]}") from None
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_stub = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def states(self) -> dict[int, int]:
        from tensorflow_serving.apis import get_model_status_pb2, model_pb2

        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=MODEL))
        return {s.version: s.state for s in self.model_stub.GetModelStatus(request, TIMEOUT).model_version_status}

    def stop(self) -> int:
        self.channel.close()
        self.process.terminate()
        try:
            return self.process.wait(60)
        finally:
            self.log.close()


@contextlib.contextmanager
def serving(base_path: Path, *flags: str) -> Iterator[ServerProcess]:
    server = ServerProcess(base_path, *flags)
    try:
        yield server
    finally:
        server.stop()


# -- requests -----------------------------------------------------------------------------------


def explain_request(images: np.ndarray) -> Any:
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2

    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=MODEL, signature_name="explain"))
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    request.inputs["class_index"].CopyFrom(tf.make_tensor_proto(np.full(len(images), -1, np.int32)))
    return request


def grpc_code(server: ServerProcess, request: Any) -> str:
    try:
        server.predict_stub.Predict(request, TIMEOUT)
    except grpc.RpcError as exc:
        return exc.code().name
    return "OK"


def http_status(server: ServerProcess, path: str, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=TIMEOUT)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    except (ConnectionError, http.client.HTTPException):
        return -1  # the connection broke: counted, never expected
    finally:
        connection.close()


def draw_examples(strategy: Any, count: int, seed: int) -> list[Any]:
    """``count`` values of a hypothesis strategy, reproducible for one seed (generation only, no shrinking)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    out: list[Any] = []
    round_ = 0
    while len(out) < count:
        @hypothesis_seed(seed + round_)
        @settings(max_examples=count - len(out), phases=[Phase.generate], database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def collect(value: Any) -> None:
            out.append(value)

        collect()
        round_ += 1
    return out[:count]


def malformed_round(server: ServerProcess, count: int, seed: int) -> Counter[str]:
    """70% TensorProtos over gRPC, 30% bodies over REST; returns counts by status."""
    from hypothesis import strategies as st

    from malformed import predict_requests, rest_bodies

    n_grpc = count * 7 // 10
    requests = draw_examples(predict_requests(), n_grpc, seed)
    paths = [f"/v1/models/{MODEL}:predict", f"/v1/models/{MODEL}/versions/1:predict", f"/v1/models/{MODEL}:classify"]
    bodies = draw_examples(st.tuples(rest_bodies(), st.sampled_from(paths)), count - n_grpc, seed + 1)
    counts: Counter[str] = Counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for code in pool.map(lambda r: grpc_code(server, r), requests):
            counts[f"gRPC {code}"] += 1
        for status in pool.map(lambda b: http_status(server, b[1], b[0]), bodies):
            counts[f"HTTP {status}"] += 1
    return counts


def large_burst(server: ServerProcess, seed: int) -> Counter[str]:
    """Requests that each hold or declare tens of MB: real 1500x1500 images, empty declared shapes, 100 MB bodies."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    rng = np.random.default_rng(seed)
    big = explain_request(rng.integers(0, 256, (1, 1500, 1500, 3), dtype=np.uint8))
    declared = explain_request(np.zeros((1, 8, 8, 3), np.uint8))
    declared.inputs["images"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_UINT8, tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in (1, 100_000, 100_000, 3)])))
    counts: Counter[str] = Counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for code in pool.map(lambda r: grpc_code(server, r), [big] * 24 + [declared] * 24):
            counts[f"gRPC {code}"] += 1
        oversized = b'{"inputs": [' + b"1," * (50 * 1024 * 1024) + b"1]}"
        for status in pool.map(lambda _: http_status(server, f"/v1/models/{MODEL}:predict", oversized), range(4)):
            counts[f"HTTP {status}"] += 1
    return counts


def timed_load(server: ServerProcess, request: Any, total: int, callers: int,
               stop: threading.Event | None = None) -> tuple[list[float], list[str], float]:
    """``total`` calls (or until ``stop``) from ``callers`` threads: latencies, error codes, wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    left = [total]

    def worker() -> None:
        while True:
            with lock:
                if left[0] <= 0 or (stop is not None and stop.is_set()):
                    return
                left[0] -= 1
            started = time.perf_counter()
            code = grpc_code(server, request)
            with lock:
                (latencies.append(time.perf_counter() - started) if code == "OK" else errors.append(code))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else float("nan")


def hot_swap(server: ServerProcess, models: Path, export: Path, request: Any,
             callers: int) -> tuple[int, int, float | None]:
    """Copy version 2 in atomically while ``callers`` threads call; (requests, failed, seconds until v2 took over)."""
    stop = threading.Event()
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(zip(
        ("latencies", "errors", "wall"), timed_load(server, request, 10**9, callers, stop))))
    runner.start()
    time.sleep(2.0)
    staging = models / MODEL / ".incoming-2"
    shutil.copytree(export, staging)
    os.rename(staging, models / MODEL / "2")
    swapped = time.monotonic()
    while time.monotonic() < swapped + 600 and server.states() != {2: 30, 1: 50}:
        time.sleep(0.2)
    took_over = time.monotonic() - swapped if server.states() == {2: 30, 1: 50} else None
    time.sleep(2.0)
    stop.set()
    runner.join()
    return len(result["latencies"]) + len(result["errors"]), len(result["errors"]), took_over


class InProcess:
    """The export's ``explain`` in this process through TF Serving's Session path, at one fixed batch."""

    def __init__(self, export: Path, images: np.ndarray) -> None:
        from gradcam_serving.runtime import ExportSession

        self.export = ExportSession(export)
        self.batch = len(images)
        self.inputs = {sig.IMAGES: images, sig.CLASS_INDEX: np.full(len(images), sig.PREDICTED_CLASS, np.int32)}
        self.export.run(sig.EXPLAIN, self.inputs)

    def run_for(self, seconds: float) -> tuple[int, float]:
        """(images, wall seconds) of back-to-back runs for about ``seconds``."""
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.export.run(sig.EXPLAIN, self.inputs)
            done += self.batch
        return done, time.perf_counter() - started


def batching_ratio(models: Path, export: Path, images: np.ndarray, seconds: float,
                   rounds: int = 4, callers: int | None = None) -> tuple[float, float]:
    """Images/s of ``callers`` one-image callers (default: the batch size) against ``--enable_batching``
    (``max_batch_size`` = batch) and of the
    same export in-process at that batch, measured in alternating slices so that load from other processes
    hits both sides alike. Returns (served, in-process)."""
    batch = len(images)
    params = models.parent / "batching.config"
    params.write_text(f"max_batch_size {{ value: {batch} }} batch_timeout_micros {{ value: 5000 }} "
                      f"max_enqueued_batches {{ value: 1000 }} num_batch_threads {{ value: {os.cpu_count() or 1} }}")
    local = InProcess(export, images)
    totals = {"served": [0, 0.0], "local": [0, 0.0]}
    callers = callers or batch
    # Every caller must be able to be inside the server at once, or a batch never fills: TF Serving's
    # default --grpc_max_threads is 4 x CPUs, 8 on 2 cores, below max_batch_size 16.
    with serving(models / MODEL, "--enable_batching", f"--batching_parameters_file={params}",
                 "--file_system_poll_wait_seconds=0", f"--grpc_max_threads={2 * callers}") as server:
        request = explain_request(images[:1])
        timed_load(server, request, 64, callers)  # warm up
        for _ in range(rounds):
            stop = threading.Event()
            timer = threading.Timer(seconds / rounds, stop.set)
            timer.start()
            latencies, errors, wall = timed_load(server, request, 10**9, callers, stop)
            if errors:
                raise RuntimeError(f"batching run failed: {Counter(errors)}")
            totals["served"][0] += len(latencies)
            totals["served"][1] += wall
            done, wall = local.run_for(seconds / rounds)
            totals["local"][0] += done
            totals["local"][1] += wall
    local.session.close()
    return totals["served"][0] / totals["served"][1], totals["local"][0] / totals["local"][1]


# -- the report -------------------------------------------------------------------------------------


def row(rows: list[tuple[str, str, str]], what: str, value: str, goal: str = "") -> None:
    rows.append((what, value, goal))
    print(f"  {what}: {value}", file=sys.stderr, flush=True)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"| {'measure':<{width}} | {'value':<{value_width}} | goal |")
    print(f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|------|")
    for what, value, goal in rows:
        print(f"| {what:<{width}} | {value:<{value_width}} | {goal} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--malformed", type=int, default=5000)
    parser.add_argument("--explain", type=int, default=5000)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each throughput run")
    parser.add_argument("--model", choices=["tiny", "mobilenet_v2"], default="tiny")
    parser.add_argument("--quick", action="store_true", help="300 malformed, 500 explain, 5 s throughput runs")
    args = parser.parse_args()
    if args.quick:
        args.malformed, args.explain, args.seconds = 300, 500, 5.0
    rng = np.random.default_rng(args.seed)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        export = build_export(Path(tmp), args.seed, args.model)
        models = Path(tmp) / "models"
        pristine = Path(tmp) / "pristine"
        shutil.copytree(export, pristine)
        images = rng.integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
        reference_request = explain_request(images)
        with serving(models / MODEL) as server:
            reference = server.predict_stub.Predict(reference_request, TIMEOUT).SerializeToString(deterministic=True)
            timed_load(server, explain_request(images[:1]), 200, 4)  # warm up every code path once
            time.sleep(2.0)  # at rest, as after the bursts: the server trims its heap once idle
            rss_before = server.rss_mb()
            counts = malformed_round(server, args.malformed, args.seed)
            counts.update(large_burst(server, args.seed))
            time.sleep(2.0)
            rss_after = server.rss_mb()
            identical = server.predict_stub.Predict(reference_request, TIMEOUT).SerializeToString(
                deterministic=True) == reference
            bad = sum(n for key, n in counts.items() if key in ("gRPC UNKNOWN", "gRPC INTERNAL", "HTTP 500", "HTTP -1"))
            total = sum(counts.values())
            row(rows, f"malformed requests ({total}, incl. {total - args.malformed} large)",
                ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), "")
            row(rows, "UNKNOWN / INTERNAL / HTTP 500 / broken connections", str(bad), "0")
            row(rows, "server alive, reference explain bit-identical after", str(identical), "True")
            row(rows, "RSS before -> after malformed + large burst (MB)",
                f"{rss_before:.0f} -> {rss_after:.0f} ({rss_after - rss_before:+.0f})", "< +100")
            # A second round with new inputs tells a one-time cost (kernels and caches for shapes seen
            # once) from growth that repeats with every burst, which is what a leak looks like.
            malformed_round(server, args.malformed, args.seed + 100)
            large_burst(server, args.seed + 100)
            time.sleep(2.0)
            rss_again = server.rss_mb()
            row(rows, "RSS after a second round with new inputs (MB)",
                f"{rss_again:.0f} ({rss_again - rss_after:+.0f} over the first round)", "< +100")

            latencies, errors, wall = timed_load(server, explain_request(images[:1]), args.explain, args.callers)
            row(rows, f"{args.explain} explain at {args.callers} callers: errors", str(len(errors)), "0")
            row(rows, "  p50 / p99 latency (ms)", f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.99):.1f}")
            row(rows, "  throughput (req/s)", f"{len(latencies) / wall:.0f}")
            requests, failed, took_over = hot_swap(server, models, pristine, explain_request(images[:1]), 8)
            row(rows, f"hot swap v1 -> v2 under 8 callers ({requests} requests): failed", str(failed), "0")
            row(rows, "  v2 AVAILABLE and v1 unloaded after (s)", "never" if took_over is None else f"{took_over:.1f}")
            rss_end = server.rss_mb()
            row(rows, "RSS at the end of the gRPC server run (MB)", f"{rss_end:.0f}")
        shutil.rmtree(models / MODEL / "2")
        batch_images = rng.integers(0, 256, (args.batch, 40, 56, 3), dtype=np.uint8)
        # Callers wait for their answer before sending again, so with as many callers as the batch
        # size no request is queued while a batch runs; twice as many keep a full batch waiting.
        for callers in (args.batch, 2 * args.batch):
            served, local = batching_ratio(models, pristine, batch_images, args.seconds, callers=callers)
            row(rows, f"--enable_batching, {callers} callers x 1 image (images/s)", f"{served:.0f}")
            row(rows, f"in-process Session, batch {args.batch} (images/s; alternating slices)", f"{local:.0f}")
            row(rows, "  ratio served / in-process", f"{served / local:.2f}", ">= 0.8")
    print(f"\nsoak.py --model {args.model} --seed {args.seed} --malformed {args.malformed} --explain {args.explain} "
          f"--callers {args.callers} --batch {args.batch} (CPUs: {os.cpu_count()})\n")
    print_table(rows)


if __name__ == "__main__":
    main()
