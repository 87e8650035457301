"""Flags, startup failures and SIGTERM draining of ``python -m gradcam_serving.server``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

import model_factory as mf
from gradcam_serving import signatures as sig
from gradcam_serving.server import BatchingOptions, FlagError, VersionPolicy, main, parse_flags
import gradcam_serving.server as server_pkg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_public_api_is_pinned_and_every_name_is_the_packages_own():
    assert sorted(server_pkg.__all__) == [
        "BatchingOptions", "FlagError", "ModelConfig", "ModelManager", "ModelServer", "Servable",
        "ServerOptions", "ServingCore", "ServingError", "VersionPolicy", "batching_parameters_class",
        "create_server", "main", "monitoring_config_class", "parse_flags", "serve_command", "ssl_config_message"]
    # Every public name is a class or function of the server's own modules, including the lazily
    # imported ones: a wrong entry in the lazy table names another module's object or none at all.
    # (ServingError is the one exception tree's, in gradcam_serving.errors.)
    # (serve_command is a click command: its callback is the server's own function.)
    homes = {name: getattr(getattr(server_pkg, name), "callback", getattr(server_pkg, name)).__module__
             for name in server_pkg.__all__}
    assert {name for name, home in homes.items() if not home.startswith("gradcam_serving.server._")} == {"ServingError"}
    assert homes["ServingError"] == "gradcam_serving.errors"
    assert (server_pkg.ModelManager.__module__, server_pkg.create_server.__module__) == (
        "gradcam_serving.server._manager", "gradcam_serving.server._server")


def test_importing_the_package_and_parsing_flags_loads_neither_tensorflow_nor_numpy():
    """The lazy names are what keeps ``python -m gradcam_serving.server --help`` fast."""
    code = ("import sys, gradcam_serving.server as s; s.parse_flags(['--model_base_path=/m']); "
            "print(sorted(m for m in ('tensorflow', 'numpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_both_flag_syntaxes_and_defaults():
    a = parse_flags(["--port=9000", "--model_name=m", "--model_base_path=/models/m"])
    b = parse_flags(["--port", "9000", "--model_name", "m", "--model_base_path", "/models/m"])
    assert a == b
    assert a.port == 9000 and a.models[0].name == "m" and a.models[0].base_path == "/models/m"
    assert a.models[0].version_policy == VersionPolicy("latest", 1)
    assert (a.file_system_poll_wait_seconds, a.saved_model_tags, a.enable_model_warmup, a.batching) == (
        1.0, ("serve",), True, None)


def test_bool_tags_batching_and_rest_flags(tmp_path):
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size {value:128} batch_timeout_micros {value:0} "
                      "max_enqueued_batches {value:1000000} num_batch_threads {value:8}\n"
                      "allowed_batch_sizes: 64 allowed_batch_sizes: 128")
    options = parse_flags(["--model_base_path=/m", "--enable_batching", f"--batching_parameters_file={params}",
                           "--enable_model_warmup=false", "--saved_model_tags=serve,gpu", "--rest_api_port=8501"])
    assert options.batching == BatchingOptions(max_batch_size=128, batch_timeout_micros=0,
                                               max_enqueued_batches=1_000_000, num_batch_threads=8,
                                               allowed_batch_sizes=(64, 128))
    assert (options.enable_model_warmup, options.saved_model_tags, options.rest_api_port) == (
        False, ("serve", "gpu"), 8501)
    assert parse_flags(["--model_base_path=/m", "--enable_batching"]).batching == BatchingOptions()


@pytest.mark.parametrize("argv, text", [
    pytest.param(["--bogus=1"], "unrecognized arguments: --bogus=1", id="unknown-flag"),
    pytest.param(["--port=abc"], "argument --port: invalid int value: 'abc'", id="bad-int"),
    pytest.param(["--port=70000"], "argument --port: invalid value 70000", id="port-range"),
    pytest.param(["--enable_batching=maybe"], "argument --enable_batching", id="bad-bool"),
])
def test_flag_errors_exit_2(argv, text, capsys):
    with pytest.raises(FlagError):
        parse_flags(argv + ["--model_base_path=/m"])
    assert main(argv + ["--model_base_path=/m"]) == 2
    assert text in capsys.readouterr().err


def _start_failure(argv, capsys) -> str:
    assert main(argv) == 255
    return capsys.readouterr().out.strip()


def test_batching_file_without_enable_batching_is_fatal(tmp_path, capsys):
    params = tmp_path / "b.txt"
    params.write_text("")
    assert _start_failure(["--model_base_path=/m", f"--batching_parameters_file={params}"], capsys) == (
        "Failed to start server. Error: INVALID_ARGUMENT: server_options.batching_parameters_file is set "
        "without setting server_options.enable_batching to true.")


def test_no_model_is_fatal(capsys):
    assert _start_failure([], capsys) == ("Failed to start server. Error: INVALID_ARGUMENT: Both "
                                          "server_options.model_base_path and server_options.model_config_file "
                                          "are empty!")


def test_unparsable_config_file_is_fatal(tmp_path, capsys, caplog):
    config = tmp_path / "models.config"
    config.write_text("model_config_list { config { name: 'x' nonsense: 1 } }")
    assert _start_failure([f"--model_config_file={config}"], capsys) == (
        f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{config}'")
    assert any("Error parsing text-format tensorflow.serving.ModelServerConfig" in m for m in caplog.messages)


def test_failed_load_at_startup_is_fatal(tmp_path, capsys):
    base = str(tmp_path / "broken")
    os.makedirs(base)
    mf.write_broken(base, 1)
    out = _start_failure(["--port=0", f"--model_base_path={base}", "--model_name=b", "--max_num_load_retries=0"],
                         capsys)
    assert out == ("Failed to start server. Error: UNKNOWN: 1 servable(s) did not become available: "
                   f"{{{{{{name: b version: 1}} due to error: DATA_LOSS: Can't parse {base}/1/saved_model.pb as "
                   "binary proto}, }")


def test_sigterm_drains_in_flight_request_and_exits_0(tmp_path):
    base = str(tmp_path / "clf")
    mf.write_model(base, 1)
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 64 } batch_timeout_micros { value: 2000000 }")  # requests wait 2 s
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcam_serving.server", "--port=0", "--host=127.0.0.1", "--model_name=clf",
         f"--model_base_path={base}", "--enable_batching", f"--batching_parameters_file={params}",
         "--grace_period_seconds=20"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Running gRPC ModelServer at 127.0.0.1:"), line
        port = int(line.split(":")[1].split()[0])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            images = mf.images(1)
            future = stub.Predict.future(mf.predict_request(images), 30)
            time.sleep(0.5)  # the request now waits in the 2 s batch window
            assert not future.done()
            proc.send_signal(signal.SIGTERM)
            response = future.result()
        assert response.outputs[sig.SCORE].float_val[0] == pytest.approx(float(mf.expected(images)[sig.SCORE][0]),
                                                                         rel=1e-5)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
