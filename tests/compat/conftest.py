"""The compatibility suite's ``server`` fixture: the same tests against the local server and the real binary.

Both are started the same way, as a subprocess with tensorflow_model_server's
flags (``--port``, ``--rest_api_port``, ``--model_name``, ``--model_base_path``),
and waited for the way TF Serving's own tests wait: Predict for an
intentionally missing model until the details mention ``Servable``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from gradcam_e2e import MODEL, RPC_TIMEOUT, Official, predict_request  # noqa: E402
from gradcam_serving.client import ExplainClient  # noqa: E402

ENV_VAR = "TENSORFLOW_MODEL_SERVER"
BINARY = "tensorflow_model_server"
READY_TIMEOUT = 120.0
SKIP_REASON = (
    f"no real {BINARY}: set {ENV_VAR}=/path/to/{BINARY} or put {BINARY} on PATH "
    "(tests/compat/README.md shows how to copy it out of the tensorflow/serving Docker image)"
)


def real_server_binary() -> str | None:
    """``$TENSORFLOW_MODEL_SERVER`` (must be an executable file) or ``tensorflow_model_server`` on PATH."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"{ENV_VAR}={configured!r} is not an executable file")
        return str(path.resolve())
    return shutil.which(BINARY)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class ServerProcess:
    """A model server running as a subprocess, reached over loopback gRPC (and REST)."""

    kind: str
    process: subprocess.Popen
    port: int
    rest_port: int
    log: Path
    official: Official

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, model: str = MODEL, **options) -> ExplainClient:
        return ExplainClient(self.target, model, timeout=RPC_TIMEOUT, **options)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _wait_until_serving(server: ServerProcess) -> None:
    """TF Serving's readiness trick; fails loudly (with the server's log) on exit or timeout."""
    probe = predict_request("serving_default", model="intentionally_missing_model")
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"{server.kind} server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.official.prediction.Predict(probe, 2.0)
        except grpc.RpcError as exc:
            last = f"{exc.code().name}: {exc.details()}"
            if "Servable" in (exc.details() or ""):
                return
        time.sleep(0.25)
    pytest.fail(f"{server.kind} server not ready after {READY_TIMEOUT}s (last answer {last}):\n{server.log_tail()}")


@contextlib.contextmanager
def server_process(kind: str, command: list[str], base_path: Path, log: Path) -> Iterator[ServerProcess]:
    port, rest_port = free_port(), free_port()
    flags = [f"--port={port}", f"--rest_api_port={rest_port}", f"--model_name={MODEL}",
             f"--model_base_path={base_path}"]
    with open(log, "wb") as sink:
        process = subprocess.Popen(command + flags, stdout=sink, stderr=subprocess.STDOUT)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    server = ServerProcess(kind, process, port, rest_port, log, Official(channel))
    try:
        _wait_until_serving(server)
        yield server
    finally:
        channel.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module", params=["local", "real"])
def server(request, export_v1: Path, tmp_path_factory) -> Iterator[ServerProcess]:
    """The server under test; ``real`` is skipped (saying what to set) when the binary is absent."""
    if request.param == "real":
        binary = real_server_binary()
        if binary is None:
            pytest.skip(SKIP_REASON)
        command = [binary]
    else:
        command = [sys.executable, "-m", "gradcam_serving.server"]
    log = tmp_path_factory.mktemp(f"{request.param}_server") / "server.log"
    with server_process(request.param, command, export_v1.parent, log) as running:
        yield running
