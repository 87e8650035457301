"""The config files parse with the protos TF Serving reads and mean what was asked."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from gradcam_serving.deploy import GPU_BATCHING, DeployedModel, config_files, deployment_options
from gradcam_serving.server import (
    BatchingOptions,
    ModelConfig,
    VersionPolicy,
    batching_parameters_class,
    monitoring_config_class,
)
from gradcam_serving.server._config import read_batching_parameters, read_model_server_config


def _model_server_config(text: str) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_models_config_holds_names_paths_policies_and_labels(options):
    proto = _model_server_config(config_files(options)["models.config"])
    shapes, pets = proto.model_config_list.config
    assert (shapes.name, shapes.base_path, shapes.model_platform) == ("shapes", "/models/shapes", "tensorflow")
    assert list(shapes.model_version_policy.specific.versions) == [1, 2]
    assert dict(shapes.version_labels) == {"stable": 1, "canary": 2}
    assert pets.base_path == "/models/pets"
    assert pets.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert pets.model_version_policy.latest.num_versions == 1


@pytest.mark.parametrize(
    "policy, which",
    [
        pytest.param(VersionPolicy(kind="all"), "all", id="all"),
        pytest.param(VersionPolicy(kind="latest", num_versions=3), "latest", id="latest-3"),
        pytest.param(VersionPolicy(kind="specific", versions=(4, 7)), "specific", id="specific"),
    ],
)
def test_every_version_policy_round_trips_through_the_server_reader(policy, which, tmp_path):
    model = ModelConfig(name="m", base_path="/models/m", version_policy=policy)
    options = deployment_options([_deployed(model)])
    path = tmp_path / "models.config"
    path.write_text(config_files(options)["models.config"])
    assert _model_server_config(path.read_text()).model_config_list.config[0].model_version_policy.WhichOneof(
        "policy_choice") == which
    assert read_model_server_config(str(path)) == (model,)


def _deployed(model: ModelConfig) -> DeployedModel:
    return DeployedModel(model)


def test_batching_file_parses_with_the_server_message_and_keeps_every_value(options, tmp_path):
    text = config_files(options)["batching_parameters.txt"]
    proto = text_format.Parse(text, batching_parameters_class()())
    assert proto.max_batch_size.value == 32
    assert proto.batch_timeout_micros.value == 2000
    assert list(proto.allowed_batch_sizes) == [1, 2, 4, 8, 16, 32]
    path = tmp_path / "batching.txt"
    path.write_text(text)
    assert read_batching_parameters(str(path)) == GPU_BATCHING


def test_custom_batching_is_written_as_given(exports):
    custom = BatchingOptions(max_batch_size=12, batch_timeout_micros=0, max_enqueued_batches=7,
                             num_batch_threads=2, allowed_batch_sizes=(3, 12))
    options = deployment_options([_deployed(ModelConfig("m", "/models/m"))], batching=custom)
    proto = text_format.Parse(config_files(options)["batching_parameters.txt"], batching_parameters_class()())
    assert (proto.max_batch_size.value, proto.max_enqueued_batches.value, proto.num_batch_threads.value) == (12, 7, 2)
    assert proto.HasField("batch_timeout_micros") and proto.batch_timeout_micros.value == 0
    assert list(proto.allowed_batch_sizes) == [3, 12]


def test_no_batching_writes_no_batching_file():
    options = deployment_options([_deployed(ModelConfig("m", "/models/m"))], batching=None)
    assert "batching_parameters.txt" not in config_files(options)


def test_monitoring_file_enables_prometheus_at_the_path(options):
    proto = text_format.Parse(config_files(options)["monitoring.config"], monitoring_config_class()())
    assert proto.prometheus_config.enable is True
    assert proto.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_allow_growth_writes_a_session_config_proto():
    from tensorflow.core.protobuf import config_pb2

    options = deployment_options([_deployed(ModelConfig("m", "/models/m"))], allow_growth=True)
    files = config_files(options)
    proto = text_format.Parse(files["session_config.pbtxt"], config_pb2.ConfigProto())
    assert proto.gpu_options.allow_growth is True
    assert not proto.graph_options.place_pruned_graph
    assert "session_config.pbtxt" not in config_files(deployment_options(options.models))


def test_place_pruned_graph_writes_it_into_the_session_config_with_or_without_allow_growth():
    from tensorflow.core.protobuf import config_pb2

    models = [_deployed(ModelConfig("m", "/models/m"))]
    for growth in (False, True):
        options = deployment_options(models, place_pruned_graph=True, allow_growth=growth)
        proto = text_format.Parse(config_files(options)["session_config.pbtxt"], config_pb2.ConfigProto())
        assert proto.graph_options.place_pruned_graph is True
        assert proto.gpu_options.allow_growth is growth
