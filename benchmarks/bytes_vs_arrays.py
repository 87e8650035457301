"""Explain via encoded files (``explain_bytes``) vs via uint8 arrays (``explain``), end to end.

Usage::

    python benchmarks/bytes_vs_arrays.py [--repeats 10] [--warmup 2]

Exports ``tf_keras.applications.MobileNetV2(weights=None)`` (224x224, 1000
classes, random weights) with ``export_model`` to a temp folder, serves it
with the local server on a loopback port, and writes photo-like JPEGs
(smooth random fields plus a little grain, quality 90) at 224x224 and
640x480. For batch 1 and 8 of each size it times ``ExplainClient.explain``:

* **bytes**: ``client.explain(paths)``; the client reads the files and sends
  them undecoded; the server decodes, resizes and also renders ``overlay_png``
  (one PNG per image at the file's size) into the response.
* **arrays**: the client decodes each file with Pillow, resizes it to the
  model's 224x224 (bilinear; a no-op for the 224x224 files) to keep the
  tensor small, stacks them and calls ``client.explain(batch)``; no overlay
  is made. Decoding and resizing are inside the timed region.
* **arrays + overlay**: the same, then ``overlay_png`` on the client for each
  decoded image at its own size, i.e. what the bytes route returns.
* **predict**: ``predict(paths)`` (``predict_bytes``) vs ``predict`` of the
  decoded+resized arrays, which isolates in-graph decoding from Grad-CAM and
  the overlay.

Both routes run interleaved (alternating which goes first) in one process on
one warm server. "request bytes" is the serialized ``PredictRequest``,
"response bytes" the serialized ``PredictResponse``, of one more call made
through a pass-through proxy that counts the bytes of each message it forwards.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from gradcam_serving.client import ExplainClient  # noqa: E402

MODEL = "mobilenet_v2"
MODEL_SIZE = (224, 224)
SIZES = ((224, 224), (480, 640))  # (height, width)
BATCHES = (1, 8)


def photo_like(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour fields (bicubic-upsampled coarse noise) with mild grain, like a photo."""
    coarse = rng.integers(0, 256, (max(2, height // 40), max(2, width // 40), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    grain = rng.normal(0.0, 4.0, smooth.shape)
    return np.clip(smooth + grain, 0, 255).astype(np.uint8)


def write_jpegs(folder: Path, height: int, width: int, count: int, rng: np.random.Generator) -> list[Path]:
    paths = []
    for index in range(count):
        path = folder / f"{width}x{height}_{index}.jpg"
        Image.fromarray(photo_like(height, width, rng)).save(path, quality=90)
        paths.append(path)
    return paths


def decode_resized(paths: list[Path]) -> tuple[list[np.ndarray], np.ndarray]:
    """What an array caller does: decode with Pillow and bring each file to the model's size.

    Returns the decoded originals and the ``[N, 224, 224, 3]`` batch to send.
    """
    originals, arrays = [], []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            originals.append(np.asarray(image))
            if image.size != MODEL_SIZE[::-1]:
                image = image.resize(MODEL_SIZE[::-1], Image.BILINEAR)
            arrays.append(np.asarray(image))
    return originals, np.stack(arrays)


def explain_with_overlays(client: ExplainClient, paths: list[Path]) -> list[bytes]:
    from gradcam_serving.client import overlay_png

    originals, batch = decode_resized(paths)
    result = client.explain(batch)
    return [overlay_png(image, heatmap) for image, heatmap in zip(originals, result.heatmap)]


def export(base: Path) -> None:
    import tf_keras

    from gradcam_serving.exporter import export_model

    model = tf_keras.applications.MobileNetV2(weights=None, input_shape=(*MODEL_SIZE, 3))
    export_model(model, base, MODEL, version=1)


class WireCounter(grpc.GenericRpcHandler):
    """A gRPC proxy on a loopback port that forwards every unary call's bytes unchanged.

    It keeps the sizes of the last call it forwarded, so a client pointed at it is measured by what
    actually crosses the wire, through the client's public API only.
    """

    def __init__(self, upstream: str) -> None:
        unlimited = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self._channel = grpc.insecure_channel(upstream, options=unlimited)
        self._server = grpc.server(ThreadPoolExecutor(2), handlers=[self], options=unlimited)
        self.target = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self.last: tuple[int, int] = (0, 0)  # (request, response) bytes
        self._server.start()

    def service(self, details: Any) -> Any:
        forward = self._channel.unary_unary(details.method)

        def handle(request: bytes, context: Any) -> bytes:
            try:
                response = forward(request, timeout=300)
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details())
            self.last = (len(request), len(response))
            return response

        return grpc.unary_unary_rpc_method_handler(handle)

    def close(self) -> None:
        self._server.stop(None)
        self._channel.close()


def wire_sizes(counted: ExplainClient, counter: WireCounter, images: object) -> tuple[int, int]:
    """(request, response) serialized sizes of one explain call of ``counted``, a client of ``counter``."""
    counter.last = (0, 0)
    counted.explain(images)
    assert counter.last != (0, 0), "the explain call did not pass through the counting proxy"
    return counter.last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per route and case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per route and case")
    args = parser.parse_args()

    from gradcam_serving.server import ModelConfig, ServerOptions, create_server

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        export(root / "models")
        print(f"exported MobileNetV2 in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        server, port = create_server(
            ServerOptions(models=(ModelConfig(MODEL, str(root / "models" / MODEL)),), port=0, host="127.0.0.1")
        )
        server.start()
        files = {size: write_jpegs(root, *size, max(BATCHES), rng) for size in SIZES}
        file_kib = {size: statistics.mean(p.stat().st_size for p in paths) / 1024 for size, paths in files.items()}
        rows = []
        counter = WireCounter(f"127.0.0.1:{port}")
        try:
            with ExplainClient(f"127.0.0.1:{port}", MODEL, timeout=300) as client, \
                    ExplainClient(counter.target, MODEL, timeout=300) as counted:
                client.wait_until_ready(120)
                for height, width in SIZES:
                    for batch in BATCHES:
                        paths = files[(height, width)][:batch]
                        row = measure(client, paths, f"{width}x{height}", batch, args.repeats, args.warmup)
                        rows.append({**row, **sizes(counted, counter, paths)})
                        print(f"done {width}x{height} batch {batch}", file=sys.stderr)
        finally:
            counter.close()
            server.stop(2)

    print(f"\nMobileNetV2 224px random weights, local server on loopback, {os.cpu_count()} CPUs, "
          f"median of {args.repeats} interleaved calls; mean JPEG file: "
          + ", ".join(f"{w}x{h} {kib:.0f} KiB" for (h, w), kib in file_kib.items()) + "\n")
    print("| images | batch | request B: bytes | request B: arrays | ratio | response B: bytes / arrays "
          "| explain ms: bytes | explain ms: arrays | explain ms: arrays + overlay "
          "| predict ms: bytes | predict ms: arrays |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| {images} | {batch} | {req_bytes:,} | {req_arrays:,} | {ratio:.1f}x | {resp_bytes:,} / {resp_arrays:,} "
              "| {bytes:.0f} | {arrays:.0f} | {arrays_overlay:.0f} | {predict_bytes:.0f} | {predict_arrays:.0f} |"
              .format(**row))


def measure(client: ExplainClient, paths: list[Path], images: str, batch: int, repeats: int, warmup: int) -> dict:
    routes = {
        "bytes": lambda: client.explain(paths),
        "arrays": lambda: client.explain(decode_resized(paths)[1]),
        "arrays_overlay": lambda: explain_with_overlays(client, paths),
        "predict_bytes": lambda: client.predict(paths),
        "predict_arrays": lambda: client.predict(decode_resized(paths)[1]),
    }
    times: dict[str, list[float]] = {name: [] for name in routes}
    for attempt in range(warmup + repeats):
        order = list(routes)[attempt % len(routes):] + list(routes)[: attempt % len(routes)]  # rotate who goes first
        for name in order:
            started = time.perf_counter()
            result = routes[name]()
            elapsed = time.perf_counter() - started
            assert len(result) == batch
            if attempt >= warmup:
                times[name].append(elapsed)
    return {
        "images": images,
        "batch": batch,
        **{name: statistics.median(values) * 1e3 for name, values in times.items()},
    }


def sizes(counted: ExplainClient, counter: WireCounter, paths: list[Path]) -> dict:
    """Request and response bytes of the explain call on each route."""
    req_bytes, resp_bytes = wire_sizes(counted, counter, paths)
    req_arrays, resp_arrays = wire_sizes(counted, counter, decode_resized(paths)[1])
    return {"req_bytes": req_bytes, "req_arrays": req_arrays, "ratio": req_arrays / req_bytes,
            "resp_bytes": resp_bytes, "resp_arrays": resp_arrays}


if __name__ == "__main__":
    main()
