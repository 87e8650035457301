"""SIGTERM and SIGINT stop ``python -m gradcam_serving.server`` within seconds at any moment, warmup included.

A warmup record's ``Session.run`` cannot be interrupted, and a real export's
first runs take seconds each, so these tests use a model whose every run
sleeps inside the graph (a ``SleepDataset``): its warmup lasts about a minute
whatever the machine, and a signal always lands in the middle of a run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc

import model_factory as mf
from gradcam_serving.signatures import WARMUP_FILE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLEEP_MICROSECONDS = 500_000  # per element and again at the end of the dataset: about 1 s per run
WARMUP_RECORDS = 60  # about a minute of warmup
EXIT_WITHIN = 5.0
STARTUP_TIMEOUT = 120.0
WARMUP_STARTED = "Starting to read warmup data for model at "


class _SlowModel(tf.Module):
    """``y = x + 0`` after an in-graph sleep: every Session.run blocks for about a second."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def slow(self, x):
        variant = tf.data.experimental.to_variant(tf.data.Dataset.range(1))
        slept = tf.raw_ops.SleepDataset(input_dataset=variant, sleep_microseconds=SLEEP_MICROSECONDS,
                                        output_types=[tf.int64], output_shapes=[[]])
        dataset = tf.data.experimental.from_variant(slept, tf.TensorSpec([], tf.int64))
        waited = dataset.reduce(tf.constant(0, tf.int64), lambda total, element: total + element)
        return {"y": x + tf.cast(waited, tf.float32)}


@pytest.fixture(scope="module")
def slow_version(tmp_path_factory) -> str:
    """A version folder of the slow model with ``WARMUP_RECORDS`` warmup records."""
    folder = str(tmp_path_factory.mktemp("slow_template") / "1")
    module = _SlowModel()
    tf.saved_model.save(module, folder, signatures={"serving_default": module.slow})
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="slow"))
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0], dtype=tf.float32))
    record = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    path = os.path.join(folder, WARMUP_FILE)
    os.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(WARMUP_RECORDS):
            writer.write(record.SerializeToString())
    return folder


class _ServerProcess:
    """A real server subprocess on a free loopback port; its stdout and stderr read line by line."""

    def __init__(self, base: str, *flags: str, name: str = "slow") -> None:
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gradcam_serving.server", "--port=0", "--host=127.0.0.1", f"--model_name={name}",
             f"--model_base_path={base}", "--file_system_poll_wait_seconds=1", "--max_num_load_retries=0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float = STARTUP_TIMEOUT) -> str:
        """The first output line containing ``text``; fails with the output so far."""
        def found() -> str | None:
            return next((line for line in self.lines if text in line), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None or self._ended, timeout):
                raise AssertionError(f"no line with {text!r} within {timeout} s; output:\n" + "\n".join(self.lines))
            line = found()
        assert line is not None, f"the server exited ({self.proc.wait()}) before {text!r}:\n" + "\n".join(self.lines)
        return line

    def signal_and_wait(self, signum: int) -> tuple[int, float]:
        """Send ``signum``; the exit code and the seconds it took, or fail after ``EXIT_WITHIN`` s."""
        sent = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {EXIT_WITHIN} s after signal {signum}; output:\n"
                                 + "\n".join(self.lines)) from None
        self._reader.join(timeout=5)
        return code, time.monotonic() - sent

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.mark.parametrize("signum", [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")])
def test_signal_during_startup_warmup_exits_within_5_s(slow_version, tmp_path, signum):
    base = str(tmp_path / "slow")
    shutil.copytree(slow_version, os.path.join(base, "1"))
    server = _ServerProcess(base)
    try:
        server.wait_for_line(WARMUP_STARTED)
        code, _ = server.signal_and_wait(signum)
        assert code == 0, "\n".join(server.lines)
        assert any(f"Received signal {int(signum)}, shutting down" in line for line in server.lines)
        assert not any("Running gRPC ModelServer" in line for line in server.lines), "the port opened after the signal"
    finally:
        server.close()


def test_sigterm_while_a_new_version_warms_up_exits_within_5_s(slow_version, tmp_path):
    """Serving version 1 while version 2 warms up in the background: the stop must not wait for that warmup."""
    base = str(tmp_path / "slow")
    shutil.copytree(slow_version, os.path.join(base, "1"), ignore=shutil.ignore_patterns("assets.extra"))
    server = _ServerProcess(base)
    try:
        server.wait_for_line("Running gRPC ModelServer at 127.0.0.1:")
        shutil.copytree(slow_version, os.path.join(base, ".2-copying"))
        os.rename(os.path.join(base, ".2-copying"), os.path.join(base, "2"))
        server.wait_for_line(WARMUP_STARTED + os.path.join(base, "2"))
        code, _ = server.signal_and_wait(signal.SIGTERM)
        assert code == 0, "\n".join(server.lines)
        assert any("Received signal 15, shutting down" in line for line in server.lines)
    finally:
        server.close()


def test_second_signal_exits_without_waiting_for_the_drain(tmp_path):
    """The first SIGTERM drains (a request waiting in a 60 s batch window, 60 s grace); the second exits at once."""
    base = str(tmp_path / "clf")
    mf.write_model(base, 1)
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 64 } batch_timeout_micros { value: 60000000 }")
    server = _ServerProcess(base, "--enable_batching", f"--batching_parameters_file={params}",
                            "--grace_period_seconds=60", name="clf")
    try:
        line = server.wait_for_line("Running gRPC ModelServer at 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1].split()[0])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            future = stub.Predict.future(mf.predict_request(mf.images(1)), 120)
            time.sleep(0.5)  # the request now waits in the batch window
            server.proc.send_signal(signal.SIGTERM)
            server.wait_for_line("Received signal 15, shutting down")
            with pytest.raises(subprocess.TimeoutExpired):
                server.proc.wait(timeout=1.0)  # draining: the request holds the stop
            assert not future.done()
            code, _ = server.signal_and_wait(signal.SIGTERM)
        assert code == 0, "\n".join(server.lines)
        assert any("Received signal 15 again, exiting without waiting" in line for line in server.lines)
    finally:
        server.close()
