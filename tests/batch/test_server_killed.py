"""A server killed (SIGKILL) in the middle of a remote explain-batch run: nothing is lost.

The server is a real subprocess on a fixed free loopback port. The pipeline runs in a
thread; a handler that drops a marker file per finished batch (and pauses a little, so
the run cannot end first) tells the test when some rows are done, and the server is
killed then. Left dead, every image not yet explained must end in ``failed.jsonl`` at
stage ``server``; restarted on the same port, Beam's retries must carry the job.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batch_data import read_failed, read_rows, write_images

REPO = Path(__file__).resolve().parents[2]
IMAGES = 24
BATCH = 2
KILL_AFTER_IMAGES = 5
STARTUP_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(base: Path, port: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcam_serving.server", f"--port={port}", "--host=127.0.0.1",
         "--model_name=shortcut", f"--model_base_path={base}", "--max_num_load_retries=0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert line.startswith(f"Running gRPC ModelServer at 127.0.0.1:{port}"), (line, proc.poll())
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


def _marking_handler(*args: Any, marks: str, pause: float, **options: Any) -> Any:
    from gradcam_serving.batch import RemoteExplainModelHandler

    class MarkingHandler(RemoteExplainModelHandler):
        """Leaves one file in ``marks`` per image the server answered, then pauses."""

        def request(self, batch: Sequence[Any], model: Any, inference_args: Any = None) -> Any:
            results = super().request(batch, model, inference_args)
            for _ in batch:
                Path(marks, uuid.uuid4().hex).touch()
            time.sleep(pause)
            return results

    return MarkingHandler(*args, **options)


def _wait_for_marks(marks: Path, count: int, runner: threading.Thread, timeout: float = 120.0) -> int:
    """The images answered once at least ``count`` are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and runner.is_alive():
        done = len(os.listdir(marks))
        if done >= count:
            return done
        time.sleep(0.02)
    raise AssertionError(f"the run ended or stalled before {count} images were answered "
                         f"({len(os.listdir(marks))} were)")


def _run_and_kill(export_base: Path, tmp_path: Path, *, restart: bool, num_retries: int) -> tuple[list[str], int]:
    """Run the remote pipeline, SIGKILL the server mid-run (and restart it); the inputs and images done at the kill."""
    import apache_beam as beam

    from gradcam_serving.batch import ExplainTransform, ReadImages, WriteExplanations

    images = write_images(tmp_path / "images", IMAGES, seed=31)
    marks = tmp_path / "marks"
    marks.mkdir()
    port = _free_port()
    server = _start_server(export_base, port)
    handler = _marking_handler(f"127.0.0.1:{port}", "shortcut", methods=["gradcam"], batch_size=BATCH, timeout=10,
                               num_retries=num_retries, throttle_delay_secs=0, marks=str(marks), pause=0.3)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with beam.Pipeline() as pipeline:
                explained = pipeline | ReadImages(str(tmp_path / "images")) | ExplainTransform(handler)
                _ = explained | WriteExplanations(str(tmp_path / "out"))
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        done_at_kill = _wait_for_marks(marks, KILL_AFTER_IMAGES, runner)
        _kill(server)
        if restart:
            time.sleep(0.5)
            server = _start_server(export_base, port)
        runner.join(timeout=300)
        assert not runner.is_alive(), "the pipeline did not finish after the server was killed"
    finally:
        _kill(server)
    assert not errors, errors
    return [str(p) for p in images.paths], done_at_kill


def test_server_killed_and_left_dead_loses_nothing(shortcut_export: Path, tmp_path: Path) -> None:
    inputs, done_at_kill = _run_and_kill(shortcut_export.parent, tmp_path, restart=False, num_retries=0)
    rows = read_rows(tmp_path / "out")
    failed = read_failed(tmp_path / "out")
    explained = [row["path"] for row in rows]
    lost = [line["path"] for line in failed]
    assert len(rows) + len(failed) == len(inputs)
    assert sorted(explained + lost) == sorted(inputs), "every input once: as its row or as its failure"
    answered = len(os.listdir(tmp_path / "marks"))
    assert done_at_kill <= answered < len(inputs)
    assert len(explained) == answered, "every image the server answered has its row, no other has one"
    assert lost, "the server was killed mid-run, so some images must have failed"
    assert {line["stage"] for line in failed} == {"server"}, failed
    assert all(line["error"] for line in failed)


def test_server_killed_and_restarted_retries_carry_the_job(shortcut_export: Path, tmp_path: Path) -> None:
    inputs, done_at_kill = _run_and_kill(shortcut_export.parent, tmp_path, restart=True, num_retries=6)
    rows = read_rows(tmp_path / "out")
    failed = read_failed(tmp_path / "out")
    assert done_at_kill < len(inputs), "the kill must land mid-run"
    assert failed == []
    assert sorted(row["path"] for row in rows) == sorted(inputs)
