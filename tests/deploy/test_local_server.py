"""The local stand-in server accepts the generated files and flags, and serves from them."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_pb2, model_service_pb2_grpc

from gradcam_serving.deploy import (
    GPU_BATCHING,
    DeploymentOptions,
    deployment_options,
    model_from_export,
    server_flags,
    write_deployment,
)
from gradcam_serving.server import create_server, parse_flags
from gradcam_serving.server._flags import build_parser

RPC_TIMEOUT = 20.0


def _local(options: DeploymentOptions, folder) -> tuple[DeploymentOptions, list[str]]:
    """Point the config folder at ``folder``, write the files and return flags for a loopback server."""
    options = dataclasses.replace(options, config_dir=str(folder))
    write_deployment(options, folder)
    replaced = {"--port": "--port=0", "--rest_api_port": "--rest_api_port=0"}
    flags = [replaced.get(flag.split("=")[0], flag) for flag in server_flags(options)]
    return options, [*flags, "--host=127.0.0.1"]


@pytest.fixture
def served(tiny_export, tmp_path) -> DeploymentOptions:
    """The tiny export with a label, its base path the real local folder (as if mounted there)."""
    model = model_from_export(tiny_export, container_base=str(tiny_export.parent), labels={"stable": 1})
    return deployment_options([model])


def test_parse_flags_reads_the_generated_files(served, tmp_path):
    options, flags = _local(served, tmp_path)
    parsed = parse_flags(flags)
    assert parsed.models == options.model_configs
    assert parsed.batching == GPU_BATCHING
    assert parsed.model_config_file == str(tmp_path / "models.config")
    assert parsed.model_config_file_poll_wait_seconds == 60
    assert parsed.prometheus_path == "/monitoring/prometheus/metrics"


def test_the_local_server_knows_every_generated_flag_including_the_gpu_ones(served):
    flags = {
        *server_flags(dataclasses.replace(served, gpu_memory_fraction=0.5)),
        *server_flags(dataclasses.replace(served, allow_growth=True)),
    }
    assert any(flag.startswith("--per_process_gpu_memory_fraction") for flag in flags)
    assert any(flag.startswith("--tensorflow_session_config_file") for flag in flags)
    unknown = build_parser().parse_known_args(sorted(flags))[1]
    assert unknown == []


def test_the_gpu_flags_are_checked_like_tf_serving(served, tmp_path):
    from gradcam_serving.server import FlagError, ServingError

    _, flags = _local(dataclasses.replace(served, allow_growth=True), tmp_path)
    parse_flags(flags)  # the generated session config parses
    with pytest.raises(FlagError, match="per_process_gpu_memory_fraction: must be in"):
        parse_flags([*flags, "--per_process_gpu_memory_fraction=1.5"])
    (tmp_path / "session_config.pbtxt").write_text("gpu_options { no_such_field: 1 }")
    with pytest.raises(ServingError, match="Error parsing text-format tensorflow.ConfigProto"):
        parse_flags(flags)


@pytest.mark.parametrize("pruned", [False, True], ids=["default-session", "place-pruned-graph"])
def test_the_local_server_serves_the_generated_config(served, tmp_path, pruned):
    _, flags = _local(dataclasses.replace(served, place_pruned_graph=pruned), tmp_path)
    parsed = parse_flags(flags)
    assert ("place_pruned_graph: true" in (parsed.session_config_text or "")) is pruned
    server, port = create_server(parsed)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        spec = model_pb2.ModelSpec(name="tiny", version_label="stable")
        response = stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec=spec), RPC_TIMEOUT)
        [status] = response.model_version_status
        assert status.version == 1
        assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    finally:
        channel.close()
        server.stop(1)
