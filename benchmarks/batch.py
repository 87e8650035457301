"""Batch explanations: the Beam pipeline against a plain in-process loop over the same export (issue 17).

Usage::

    python benchmarks/batch.py [--images 5000] [--batch-size 16] [--export BASE/NAME/VERSION] [--no-remote]

Unless ``--export`` names a version folder, saves
``keras.applications.MobileNetV2(weights=None)`` (224x224, 1000 classes;
nothing is downloaded) and exports it with ``gradcam-serving export``. Writes
``--images`` JPEGs of mixed sizes (about 160 to 320 px a side), then, in one
run and each in a fresh process so no warm state carries over:

* ``loop``: the export loaded through ``ExportSession`` and
  ``explain_bytes_<method>`` run on batches of ``--batch-size`` files, one
  after the other (what a user would write without Beam);
* ``beam``: ``gradcam-serving explain-batch`` on the DirectRunner with
  ``--workers`` ``multi_processing`` workers, same export, same batch size;
* ``remote`` (unless ``--no-remote``): ``explain-batch --server`` against the
  local server (``python -m gradcam_serving.server``) on a free loopback port.

Each Beam job is also run on ``--batch-size`` images only: that wall time is
its fixed cost (worker start, model load, first run of the signature), and
the steady rate is ``(N - n) / (T_N - T_n)``. The loop's fixed cost is its load
plus its first batch. Prints one table; the ratio column is against the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _children import REPO, child_env, run_child

SIZE = 224
MODEL_NAME = "mobilenet_v2"


def _child(*args: str) -> dict:
    return run_child(__file__, *args)


# -- child modes -------------------------------------------------------------------------------------------


def child_save_model(path: str) -> dict:
    import keras

    keras.applications.MobileNetV2(weights=None, input_shape=(SIZE, SIZE, 3)).save(path)
    return {"path": path}


def child_images(folder: str, count: int) -> dict:
    """``count`` JPEGs of mixed sizes: smooth random colour fields with a bright square, like photos compress."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        height, width = (int(v) for v in rng.integers(160, 321, 2))
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)).copy()
        top, left = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
        image[top:top + height // 4, left:left + width // 4] = rng.integers(180, 256, 3)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=90)
        path = Path(folder) / f"{i // 1000:02d}" / f"img_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return {"count": len(paths)}


def child_loop(export_dir: str, folder: str, batch_size: int, method: str) -> dict:
    """The plain loop: read files, run ``explain_bytes_<method>`` batch after batch."""
    import numpy as np

    from gradcam_serving import signatures as sig
    from gradcam_serving.runtime import ExportSession

    paths = sorted(str(p) for p in Path(folder).rglob("*.jpg"))
    started = time.perf_counter()
    export = ExportSession(export_dir)
    row = export.metadata.signature_table()[sig.explain_signature(method, encoded=True)]
    outputs = [name for name in row.outputs if name != sig.OVERLAY_PNG]
    first_done = None
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        inputs = {row.pixels: np.asarray([Path(p).read_bytes() for p in chunk], dtype=object),
                  sig.CLASS_INDEX: np.full(len(chunk), sig.PREDICTED_CLASS, np.int32)}
        export.run(row.name, inputs, outputs)
        if first_done is None:
            first_done = time.perf_counter()
    ended = time.perf_counter()
    export.close()
    steady = (len(paths) - batch_size) / (ended - first_done) if len(paths) > batch_size else float("nan")
    return {"images": len(paths), "seconds": ended - started, "fixed": first_done - started, "steady": steady}


# -- measures from the parent ------------------------------------------------------------------------------


def export_mobilenet(folder: Path) -> Path:
    model = folder / "mobilenet_v2.keras"
    _child("--child-save-model", str(model))
    done = subprocess.run(
        [sys.executable, "-m", "gradcam_serving.cli", "export", str(model), "--output", str(folder / "models"),
         "--name", MODEL_NAME, "--methods", "gradcam"],
        capture_output=True, text=True, env=child_env(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"export failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def explain_batch(source: Path, output: Path, args: list[str]) -> float:
    """Wall time of one ``explain-batch`` command (a fresh process), checking it explained every image."""
    command = [sys.executable, "-c", "import sys; from gradcam_serving.cli import main; sys.exit(main())",
               "explain-batch", str(source), "--output", str(output), "--overwrite", *args]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or " 0 failed" not in done.stdout:
        raise SystemExit(f"explain-batch failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    return seconds


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(export_dir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gradcam_serving.server", f"--port={port}", f"--model_name={export_dir.parent.name}",
         f"--model_base_path={export_dir.parent}"],
        env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sys.path.insert(0, str(REPO))
    from gradcam_serving.client import ExplainClient

    with ExplainClient(f"127.0.0.1:{port}", export_dir.parent.name) as client:
        client.wait_until_ready(timeout=1800)
    return server, f"127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--tf-threads", type=int, default=0, help="TensorFlow threads per Beam worker process")
    parser.add_argument("--export", type=Path, help="an existing version folder (default: export MobileNetV2)")
    parser.add_argument("--no-remote", action="store_true")
    parser.add_argument("--child-save-model", help=argparse.SUPPRESS)
    parser.add_argument("--child-images", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-loop", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_save_model:
        print(json.dumps(child_save_model(args.child_save_model)))
        return
    if args.child_images:
        print(json.dumps(child_images(args.child_images[0], int(args.child_images[1]))))
        return
    if args.child_loop:
        export_dir, folder, batch_size, method = args.child_loop
        print(json.dumps(child_loop(export_dir, folder, int(batch_size), method)))
        return

    work = Path(tempfile.mkdtemp(prefix="batch_bench_"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    export_dir = args.export or export_mobilenet(work)
    images, few = work / "images", work / "few"
    _child("--child-images", str(images), str(args.images))
    _child("--child-images", str(few), str(args.batch_size))
    common = ["--method", args.method, "--batch-size", str(args.batch_size)]
    beam_args = ["--export", str(export_dir), *common, "--tf-threads", str(args.tf_threads),
                 "--direct_num_workers", str(args.workers), "--direct_running_mode", "multi_processing"]
    rows = []
    loop = _child("--child-loop", str(export_dir), str(images), str(args.batch_size), args.method)
    rows.append(("plain loop, in-process", loop["images"] / loop["seconds"], loop["fixed"], loop["steady"]))
    rows.append(_beam_row(f"Beam DirectRunner, {args.workers} multi_processing workers", images, few, work,
                          beam_args, args.images, args.batch_size))
    if not args.no_remote:
        server, target = start_server(Path(export_dir))
        try:
            remote_args = ["--server", target, "--model", Path(export_dir).parent.name, *common]
            rows.append(_beam_row("Beam DirectRunner, remote (local server)", images, few, work, remote_args,
                                  args.images, args.batch_size))
        finally:
            server.terminate()
            server.wait(60)
    print(f"\n{args.images} JPEGs (160-320 px), {Path(export_dir)}, explain_bytes_{args.method}, "
          f"batch {args.batch_size}, {os.cpu_count()} cores")
    print(f"| {'run':45} | images/s (all) | fixed cost s | images/s (steady) | steady vs loop |")
    print(f"|{'-' * 47}|---------------:|-------------:|------------------:|---------------:|")
    for name, overall, fixed, steady in rows:
        print(f"| {name:45} | {overall:14.1f} | {fixed:12.1f} | {steady:17.1f} | {steady / rows[0][3]:13.2f}x |")


def _beam_row(name: str, images: Path, few: Path, work: Path, args: list[str], count: int,
              batch_size: int) -> tuple[str, float, float, float]:
    fixed = explain_batch(few, work / "out_few", args)
    seconds = explain_batch(images, work / "out", args)
    steady = (count - batch_size) / max(seconds - fixed, 1e-9)
    return name, count / seconds, fixed, steady


if __name__ == "__main__":
    main()
