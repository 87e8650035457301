"""Where the time goes before an export serves: load, first runs, ``serve`` and ``validate`` (issue 16).

Usage::

    python benchmarks/load_ready.py [--rounds 2] [--export BASE/NAME/VERSION] [--configs tf_serving,place_pruned_graph]

Unless ``--export`` names a version folder, saves
``keras.applications.MobileNetV2(weights=None)`` (224x224, 1000 classes; nothing
is downloaded) as a ``.keras`` file and exports it as a user would,
``gradcam-serving export MODEL.keras --methods all``. Then, per round, each in
a fresh process so no cache carries over:

* for each Session config, TF Serving's loading path in-process (TF1 loader,
  ``serve`` tag, one Session): the load, then the first and the second
  ``Session.run`` of every warmup record, with the record's own inputs.
  ``tf_serving`` is the empty ConfigProto that ``tensorflow_model_server``
  uses; ``place_pruned_graph`` sets ``graph_options.place_pruned_graph`` and
  ``no_tfg`` sets ``rewrite_options.disable_tfg_optimizer``, both of which TF
  Serving reads from ``--tensorflow_session_config_file``. A name ending in
  ``+run_each`` runs the records side by side with ``ExportSession.run_each``
  (one thread per core), as the project's own tools do.
* ``python -m gradcam_serving.server`` on a free loopback port, per Session
  config given as ``--tensorflow_session_config_file`` (the local server checks
  that file, and builds its Sessions from it only if it applies the flag as TF
  Serving does): process start to the port open (the model AVAILABLE), split by
  the server's log at the end of the load and of the warmup; then SIGTERM and
  the time to exit.
  The same for a copy of the export whose warmup file keeps only the records
  ``export --warmup default`` writes (the signatures that name no method).
* ``gradcam-serving validate``: its wall time.

Prints one table per measure, a row per round. The 2 cores of the CI machine
are shared, so compare rows of the same round.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _children import child_env, run_child

# Session configs as --tensorflow_session_config_file holds them (text ConfigProto); empty is TF Serving's default.
CONFIGS = {
    "tf_serving": "",
    "place_pruned_graph": "graph_options { place_pruned_graph: true }\n",
    "no_tfg": "graph_options { rewrite_options { disable_tfg_optimizer: true } }\n",
}
RUN_EACH = "+run_each"
LIGHT = ", --warmup default"
MODEL_NAME = "mobilenet_v2"
SIZE = 224
READY_TIMEOUT = 1800.0


def _run_child(*args: str) -> dict:
    return run_child(__file__, *args)


# -- child modes: each runs in its own process -----------------------------------------------------

def child_save_model(path: str) -> dict:
    import keras

    keras.applications.MobileNetV2(weights=None, input_shape=(SIZE, SIZE, 3)).save(path)
    return {"path": path}


def _session_config(name: str):
    from google.protobuf import text_format
    from tensorflow.core.protobuf import config_pb2

    return text_format.Parse(CONFIGS[name.removesuffix(RUN_EACH)], config_pb2.ConfigProto())


def child_session(export_dir: str, config_name: str) -> dict:
    """Load TF Serving's way with one Session config; time the load and two runs of every record."""
    from gradcam_serving.runtime import ExportSession, read_warmup_requests

    records = list(read_warmup_requests(export_dir))
    started = time.perf_counter()
    export = ExportSession(export_dir, config=_session_config(config_name))
    load = time.perf_counter() - started
    runs: dict[str, list[float]] = {name: [] for name, _ in records}

    def timed(name: str, inputs: dict) -> dict:
        started = time.perf_counter()
        answer = export.run(name, inputs)
        runs[name].append(time.perf_counter() - started)
        return answer

    walls = []
    for _ in range(2):
        started = time.perf_counter()
        export.run_each(records, run=timed, threads=None if config_name.endswith(RUN_EACH) else 1)
        walls.append(time.perf_counter() - started)
    functions = len(export.meta_graph.graph_def.library.function)
    export.close()
    return {"load": load, "runs": runs, "functions": functions, "first_wall": walls[0]}


def child_default_warmup(source: str, target: str) -> dict:
    """Copy a version folder, keeping the warmup records ``export --warmup default`` would write."""
    import shutil

    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from gradcam_serving import signatures as sig
    from gradcam_serving.exports import read_export

    shutil.copytree(source, target)
    metadata = read_export(source).metadata
    kept = set(sig.warmup_signatures(sig.WARMUP_DEFAULT, metadata.methods, metadata.topk))
    path = str(Path(target) / sig.WARMUP_FILE)
    records = list(tf.data.TFRecordDataset(str(Path(source) / sig.WARMUP_FILE)).as_numpy_iterator())
    count = 0
    with tf.io.TFRecordWriter(path) as writer:
        for raw in records:
            name = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request.model_spec.signature_name
            if name in kept:
                writer.write(raw)
                count += 1
    return {"records": count}


# -- measures run from the parent ------------------------------------------------------------------

def export(folder: Path) -> tuple[Path, float]:
    model = folder / "mobilenet_v2.keras"
    _run_child("--child-save-model", str(model))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "gradcam_serving.cli", "export", str(model), "--output", str(folder / "models"),
         "--name", MODEL_NAME, "--methods", "all"],
        capture_output=True, text=True, env=child_env(), check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"export failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1]), seconds


def _config_flags(folder: Path, config_name: str) -> list[str]:
    """``--tensorflow_session_config_file`` holding the config; none for TF Serving's default."""
    if not CONFIGS[config_name.removesuffix(RUN_EACH)]:
        return []
    path = folder / f"{config_name.removesuffix(RUN_EACH)}.pbtxt"
    path.write_text(CONFIGS[config_name.removesuffix(RUN_EACH)])
    return [f"--tensorflow_session_config_file={path}"]


def serve(export_dir: Path, flags: list[str]) -> dict[str, float]:
    """Process start -> port open, split at the log lines that end the load and the warmup; then SIGTERM."""
    events = {
        "loaded": "Successfully loaded servable version",
        "warmed": "Finished reading warmup data",
        "ready": "Running gRPC ModelServer at",
    }
    seen: dict[str, float] = {}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcam_serving.server", "--port=0", "--host=127.0.0.1", f"--model_name={MODEL_NAME}",
         f"--model_base_path={export_dir.parent}", "--file_system_poll_wait_seconds=0", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env())
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            for key, text in events.items():
                if text in line and key not in seen:
                    seen[key] = time.perf_counter() - started
            if "ready" in seen:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready.wait(READY_TIMEOUT)
        if "ready" not in seen:
            raise SystemExit(f"the server did not open its port (exit code {proc.poll()})")
        signalled = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        seen["stop"] = time.perf_counter() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return seen


def validate(export_dir: Path) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gradcam_serving.cli", "validate", str(export_dir)],
                          capture_output=True, text=True, env=child_env(), check=False)
    return time.perf_counter() - started, done.returncode


# -- report -------------------------------------------------------------------------------------

def _session_row(round_: int, config: str, result: dict) -> str:
    firsts = [runs[0] for runs in result["runs"].values()]
    seconds = [runs[1] * 1e3 for runs in result["runs"].values()]
    return (f"| {round_} | `{config}` | {result['load']:.1f} | {sum(firsts):.1f} | {min(firsts):.1f}–{max(firsts):.1f} "
            f"| {statistics.median(seconds):.0f} ({min(seconds):.0f}–{max(seconds):.0f}) "
            f"| {result['first_wall']:.1f} | {result['load'] + result['first_wall']:.1f} |")


def _signature_table(sessions: dict[tuple[int, str], dict], configs: list[str], rounds: int) -> None:
    names = list(next(iter(sessions.values()))["runs"])
    columns = [(r, c) for r in range(1, rounds + 1) for c in configs]
    print("\nFirst Session.run per signature, seconds (second run in ms):\n")
    print("| signature | " + " | ".join(f"round {r} `{c}`" for r, c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name in names:
        cells = [f"{sessions[key]['runs'][name][0]:.2f} ({sessions[key]['runs'][name][1] * 1e3:.0f})" for key in columns]
        print(f"| `{name}` | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--export", type=Path, help="an existing version folder (default: export MobileNetV2)")
    parser.add_argument("--configs", default=f"tf_serving,place_pruned_graph,place_pruned_graph{RUN_EACH}",
                        help=f"Session configs to compare, from {', '.join(CONFIGS)} (each may end in {RUN_EACH})")
    parser.add_argument("--child-save-model", help=argparse.SUPPRESS)
    parser.add_argument("--child-session", nargs=2, metavar=("EXPORT", "CONFIG"), help=argparse.SUPPRESS)
    parser.add_argument("--child-default-warmup", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_default_warmup:
        print(json.dumps(child_default_warmup(*args.child_default_warmup)))
        return
    if args.child_save_model:
        print(json.dumps(child_save_model(args.child_save_model)))
        return
    if args.child_session:
        print(json.dumps(child_session(*args.child_session)))
        return
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for config in configs:
        if config.removesuffix(RUN_EACH) not in CONFIGS:
            parser.error(f"unknown config {config!r}; expected one of {', '.join(CONFIGS)}")
    with tempfile.TemporaryDirectory(prefix="load_ready_") as tmp:
        if args.export is None:
            export_dir, export_seconds = export(Path(tmp))
            print(f"exported MobileNetV2 {SIZE} px with --methods all in {export_seconds:.1f} s: {export_dir}")
        else:
            export_dir = args.export.resolve()
        light_dir = Path(tmp) / "default_warmup" / MODEL_NAME / export_dir.name
        light = _run_child("--child-default-warmup", str(export_dir), str(light_dir))
        print(f"copy with the {light['records']} records of --warmup default: {light_dir}")
        sessions: dict[tuple[int, str], dict] = {}
        served: dict[tuple[int, str], dict[str, float]] = {}
        validated: list[tuple[float, int]] = []
        for round_ in range(1, args.rounds + 1):
            for config in configs:
                sessions[(round_, config)] = _run_child("--child-session", str(export_dir), config)
                if not config.endswith(RUN_EACH):  # the server replays its warmup one record at a time
                    served[(round_, config)] = serve(export_dir, _config_flags(Path(tmp), config))
                    served[(round_, config + LIGHT)] = serve(light_dir, _config_flags(Path(tmp), config))
            validated.append(validate(export_dir))
        report(sessions, configs, served, validated, args.rounds)


def report(sessions: dict[tuple[int, str], dict], configs: list[str], served: dict[tuple[int, str], dict[str, float]],
           validated: list[tuple[float, int]], rounds: int) -> None:
    first = next(iter(sessions.values()))
    print(f"\n{len(first['runs'])} warmup records; the graph's function library holds {first['functions']} functions.")
    print("\nTF Serving's loading path in-process, seconds:\n")
    print("| round | Session config | load | first runs, sum | first run, min–max | second run ms, median (min–max) "
          "| first runs, wall | load + first runs, wall |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for (round_, config), result in sessions.items():
        print(_session_row(round_, config, result))
    _signature_table(sessions, configs, rounds)
    print("\n`python -m gradcam_serving.server`, seconds from process start:\n")
    print("| round | Session config | version loaded | warmup done | port open (ready) | warmup | exit after SIGTERM |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    nan = float("nan")
    for (round_, config), seen in served.items():
        print(f"| {round_} | `{config}` | {seen.get('loaded', nan):.1f} | {seen.get('warmed', nan):.1f} "
              f"| {seen['ready']:.1f} | {seen.get('warmed', nan) - seen.get('loaded', nan):.1f} | {seen['stop']:.1f} |")
    print("\n`gradcam-serving validate`:\n")
    print("| round | wall time (s) | exit code |")
    print("|---:|---:|---:|")
    for round_, (seconds, code) in enumerate(validated, start=1):
        print(f"| {round_} | {seconds:.1f} | {code} |")


if __name__ == "__main__":
    main()
