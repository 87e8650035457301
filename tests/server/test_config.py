"""--model_config_file (policies, labels) and HandleReloadConfigRequest."""

from __future__ import annotations

import os

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import model_management_pb2

import model_factory as mf
import server_harness
from gradcam_serving.server import ServingError, create_server, parse_flags

AVAILABLE, END = 30, 50


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("config")
    a, b, broken = str(root / "a"), str(root / "b"), str(root / "broken")
    for version in (1, 2, 3):
        mf.write_model(a, version, scale=float(version))
    mf.write_model(b, 1)
    os.makedirs(broken)
    mf.write_broken(broken, 1)
    return {"a": a, "b": b, "broken": broken, "root": str(root)}


def _config_text(base: str, labels: dict[str, int]) -> str:
    label_text = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
    return f'''model_config_list {{ config {{ name: "a" base_path: "{base}" model_platform: "tensorflow"
        model_version_policy {{ specific {{ versions: 1 versions: 3 }} }} {label_text} }} }}'''


def _options(tmp_path, text: str):
    path = tmp_path / "models.config"
    path.write_text(text)
    return parse_flags([f"--model_config_file={path}", "--port", "0", "--host=127.0.0.1",
                        "--file_system_poll_wait_seconds=1", "--max_num_load_retries=0"])


@pytest.fixture(scope="module")
def srv(bases, tmp_path_factory):
    options = _options(tmp_path_factory.mktemp("cfg"), _config_text(bases["a"], {"stable": 1, "canary": 3}))
    server, port = create_server(options)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    harness = server_harness.Harness(server, port, channel, prediction_service_pb2_grpc.PredictionServiceStub(channel),
                                     model_service_pb2_grpc.ModelServiceStub(channel))
    yield harness
    harness.close()


def _predict(srv, model: str = "a", label: str | None = None):
    request = mf.predict_request(mf.images(1), model=model)
    if label:
        request.model_spec.version_label = label
    return srv.predict(request)


def test_specific_policy_loads_only_listed_versions(srv):
    assert srv.states("a") == {3: AVAILABLE, 1: AVAILABLE}
    assert _predict(srv).model_spec.version.value == 3


@pytest.mark.parametrize("label, version", [pytest.param("stable", 1, id="stable"), pytest.param("canary", 3, id="canary")])
def test_labels_route_to_versions(srv, label, version):
    response = _predict(srv, label=label)
    assert response.model_spec.version.value == version
    want = mf.expected(mf.images(1), scale=float(version))["score"]
    assert response.outputs["score"].float_val[0] == pytest.approx(float(want[0]), rel=1e-5)


def test_label_on_unavailable_version_fails_startup(bases, tmp_path):
    options = _options(tmp_path, _config_text(bases["a"], {"stable": 2}))
    with pytest.raises(ServingError) as info:
        create_server(options)
    assert info.value.code.name == "FAILED_PRECONDITION"
    assert info.value.message == ("Request to assign label to version 2 of model a, which is not currently "
                                  "available for inference")


def _reload(srv, text: str):
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    return srv.model_stub.HandleReloadConfigRequest(request, 60)


def _reload_error(srv, text: str):
    with pytest.raises(grpc.RpcError) as info:
        _reload(srv, text)
    return info.value.code(), info.value.details()


@pytest.mark.parametrize("text, message", [
    pytest.param('custom_model_config { }', "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                 "Only ModelConfigList is currently supported", id="not-a-list"),
    pytest.param('model_config_list { config { name: "x" base_path: "relative/x" } }',
                 "Expected model x to have an absolute path or URI; got base_path()=relative/x", id="relative-path"),
    pytest.param('model_config_list { config { name: "x" base_path: "/x" } config { name: "x" base_path: "/y" } }',
                 "Illegal to list model x multiple times in config list", id="duplicate-name"),
])
def test_reload_rejects_invalid_configs(srv, text, message):
    assert _reload_error(srv, text) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    assert srv.states("a")[3] == AVAILABLE  # nothing changed


def test_reload_replaces_the_whole_config(srv, bases):
    text = f'model_config_list {{ config {{ name: "b" base_path: "{bases["b"]}" model_platform: "tensorflow" }} }}'
    response = _reload(srv, text)
    assert response.status.error_code == 0
    assert srv.states("b") == {1: AVAILABLE}  # AVAILABLE when the call returned
    assert _predict(srv, "b").model_spec.name == "b"
    assert srv.states("a") == {3: END, 1: END}
    with pytest.raises(grpc.RpcError) as info:
        _predict(srv, "a")
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.NOT_FOUND,
                                                         "Servable not found for request: Latest(a)")


def test_reload_with_broken_new_model_reports_it(srv, bases):
    text = (f'model_config_list {{ config {{ name: "b" base_path: "{bases["b"]}" }} '
            f'config {{ name: "c" base_path: "{bases["broken"]}" }} }}')
    code, details = _reload_error(srv, text)
    assert code == grpc.StatusCode.UNKNOWN
    assert details == ("1 model(s) did not become available: {{{name: c version: 1} due to error: DATA_LOSS: "
                       f"Can't parse {bases['broken']}/1/saved_model.pb as binary proto}}, }}")
    assert srv.states("b") == {1: AVAILABLE}
