"""The committed ``serving_config/`` folder equals a fresh generation, so it never drifts, and it serves."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).resolve().parents[2] / "serving_config"
RPC_TIMEOUT = 20.0


def _regenerate_module():
    spec = importlib.util.spec_from_file_location("serving_config_regenerate", FOLDER / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_equal_a_fresh_generation():
    expected = _regenerate_module().demo_files()
    stale = [name for name, text in expected.items() if (FOLDER / name).read_text(encoding="utf-8") != text]
    assert not stale, f"run `python serving_config/regenerate.py`; stale: {stale}"


def test_folder_holds_only_generated_files_and_the_script():
    expected = set(_regenerate_module().demo_files()) | {"regenerate.py"}
    present = {path.name for path in FOLDER.iterdir() if path.name != "__pycache__"}
    assert present == expected


def _docker_run(script: str) -> tuple[dict[str, str], list[str]]:
    """The script's mounts (container path -> host variable) and the flags it passes to the server."""
    words = shlex.split(script[script.index("exec docker run"):].replace("\\\n", " "), comments=True)
    volumes = [words[i + 1].split(":") for i, word in enumerate(words) if word == "-v"]  # HOST:CONTAINER:ro
    mounts = {container: host for host, container, *_ in volumes}
    image = next(i for i, word in enumerate(words) if word.startswith("tensorflow/serving:"))
    return mounts, words[image + 1:]


def _mounted(text: str, mounts: dict[str, Path]) -> str:
    """``text`` with each container path replaced by the host folder mounted there."""
    for container, host in mounts.items():
        text = text.replace(f"{container}/", f"{host}/")
    return text


def test_the_docker_script_serves_the_shapes_model_with_the_committed_files(tiny_export, tmp_path):
    """The script's own server flags and config files, run by the local server on a loopback port.

    The folders stand where the script mounts them: ``MODELS_DIR`` holds a real SavedModel as
    ``shapes/1`` (the base path the committed ``models.config`` names), ``CONFIG_DIR`` the committed files.
    """
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import (
        get_model_status_pb2, model_pb2, model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc,
    )

    from gradcam_serving.server import create_server, parse_flags

    assert os.access(FOLDER / "docker-run.sh", os.X_OK)
    mounts, flags = _docker_run((FOLDER / "docker-run.sh").read_text())
    assert mounts == {"/models": "$MODELS_DIR", "/config": "$CONFIG_DIR"}
    hosts = {"/models": tmp_path / "models", "/config": tmp_path / "config"}
    shutil.copytree(tiny_export / "1", hosts["/models"] / "shapes" / "1")
    hosts["/config"].mkdir()
    for path in FOLDER.iterdir():
        if path.is_file():
            (hosts["/config"] / path.name).write_text(_mounted(path.read_text(), hosts))
    local = {"--port": "--port=0", "--rest_api_port": "--rest_api_port=0"}
    options = parse_flags([local.get(flag.split("=")[0], _mounted(flag, hosts)) for flag in flags] + ["--host=127.0.0.1"])
    assert [model.name for model in options.models] == ["shapes"] and options.batching is not None
    server, port = create_server(options)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        spec = model_pb2.ModelSpec(name="shapes")
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec=spec), RPC_TIMEOUT, wait_for_ready=True)
        assert [(s.version, s.state) for s in status.model_version_status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
        request = predict_pb2.PredictRequest(model_spec=spec)
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 4.0], np.float32)))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, RPC_TIMEOUT)
        assert list(response.outputs["y"].float_val) == [2.5, 4.0]  # the tiny model is y = 0.5 x + 2
    finally:
        channel.close()
        server.stop(1)

