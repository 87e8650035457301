"""The REST API and Prometheus page against TF Serving's JSON, texts and HTTP codes, over real HTTP."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

import model_factory as mf
import server_harness
from gradcam_serving import signatures as sig
from gradcam_serving.server import ModelConfig, VersionPolicy, parse_flags
from gradcam_serving.server._metrics import Metrics
from gradcam_serving.server._prometheus import render

METRICS_PATH = "/monitoring/prometheus/metrics"


class _Echo(tf.Module):
    """A string-input model: ``data`` -> its byte length, itself as text and as ``_bytes``."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data")])
    def serve(self, data):
        return {"length": tf.strings.length(data), "text": data, "echo_bytes": data}


class _Rank(tf.Module):
    """A float input of any rank (as the exporter's signatures take) -> its rank, once per row."""

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="x")])
    def serve(self, x):
        return {"rank": tf.fill(tf.shape(x)[:1], tf.rank(x))}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("clf"))
    mf.write_model(base, 1, scale=1.0)
    mf.write_model(base, 2, scale=2.0)
    echo = str(tmp_path_factory.mktemp("echo"))
    module = _Echo()
    tf.saved_model.save(module, os.path.join(echo, "1"), signatures={"serving_default": module.serve})
    rank = str(tmp_path_factory.mktemp("rank"))
    ranker = _Rank()
    tf.saved_model.save(ranker, os.path.join(rank, "1"), signatures={"serving_default": ranker.serve})
    models = (
        ModelConfig("clf", base, VersionPolicy("all"), (("stable", 1), ("canary", 2))),
        ModelConfig("echo", echo),
        ModelConfig("rank", rank),
    )
    harness = server_harness.start(models, rest_api_port=0, prometheus_path=METRICS_PATH)
    yield harness
    harness.close()


def _call(srv, method: str, path: str, body: object = None) -> tuple[int, str]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{srv.server.rest_port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=server_harness.RPC_TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _ok(srv, method: str, path: str, body: object = None) -> dict:
    status, text = _call(srv, method, path, body)
    assert status == 200, text
    return json.loads(text)


def _grpc_outputs(srv, request) -> dict[str, np.ndarray]:
    return {k: tf.make_ndarray(v) for k, v in srv.predict(request).outputs.items()}


def _assert_same(rest: dict, grpc: dict[str, np.ndarray]) -> None:
    assert set(rest) == set(grpc)
    for alias, want in grpc.items():
        if want.dtype == object:
            assert rest[alias] == [v.decode() for v in want.ravel()]
        else:
            np.testing.assert_allclose(np.asarray(rest[alias], dtype=want.dtype), want, rtol=1e-6)


def test_row_predict_matches_grpc(srv):
    images = mf.images(3)
    body = _ok(srv, "POST", "/v1/models/clf:predict", {"signature_name": "predict", "instances": images.tolist()})
    rows = body["predictions"]
    assert len(rows) == 3 and set(rows[0]) == set(sig.PREDICT_OUTPUTS)
    columns = {alias: [row[alias] for row in rows] for alias in rows[0]}
    _assert_same(columns, _grpc_outputs(srv, mf.predict_request(images)))


def test_columnar_explain_matches_grpc(srv):
    images, classes = mf.images(2, size=5), np.array([0, -1], np.int32)
    body = _ok(srv, "POST", "/v1/models/clf/versions/1:predict", {
        "signature_name": "explain", "inputs": {"images": images.tolist(), "class_index": classes.tolist()}})
    request = mf.predict_request(images, sig.EXPLAIN, class_index=classes)
    request.model_spec.version.value = 1
    _assert_same(body["outputs"], _grpc_outputs(srv, request))


def test_row_explain_with_named_instances_and_label(srv):
    images = mf.images(2, size=3)
    instances = [{"images": image.tolist(), "class_index": 1} for image in images]
    body = _ok(srv, "POST", "/v1/models/clf/labels/stable:predict", {"signature_name": "explain", "instances": instances})
    want = mf.expected(images, 1.0, np.array([1, 1], np.int32))
    heatmaps = np.array([row[sig.HEATMAP] for row in body["predictions"]])
    np.testing.assert_allclose(heatmaps, want[sig.HEATMAP], rtol=1e-5, atol=1e-6)
    assert [row[sig.LABEL] for row in body["predictions"]] == ["dog", "dog"]


def test_default_signature_and_single_output_name_dropped(srv):
    body = _ok(srv, "POST", "/v1/models/echo:predict", {"inputs": ["abc"]})
    assert body["outputs"]["length"] == [3]
    status, text = _call(srv, "POST", "/v1/models/echo:predict", {"instances": ["ab", {"b64": "AP8="}]})
    rows = json.loads(text)["predictions"]
    assert status == 200 and [row["length"] for row in rows] == [2, 2]


def test_b64_input_and_bytes_output(srv):
    raw = b"\x00\xffgradcam"
    body = _ok(srv, "POST", "/v1/models/echo:predict", {"inputs": [{"b64": base64.b64encode(raw).decode()}]})
    out = body["outputs"]
    assert out["length"] == [len(raw)]
    assert base64.b64decode(out["echo_bytes"][0]["b64"]) == raw
    assert out["text"] == [raw.decode("utf-8", errors="replace")]


def test_rest_coerces_types_where_grpc_would_not(srv):
    body = _ok(srv, "POST", "/v1/models/clf:predict", {"inputs": mf.images(1).astype(np.int64).tolist()})
    assert len(body["outputs"][sig.SCORE]) == 1


def test_status_json_is_tf_messagetojson(srv):
    assert _ok(srv, "GET", "/v1/models/clf/versions/2") == {"model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    versions = [row["version"] for row in _ok(srv, "GET", "/v1/models/clf")["model_version_status"]]
    assert sorted(versions) == ["1", "2"]


def test_metadata_json_shape(srv):
    body = _ok(srv, "GET", "/v1/models/clf/labels/stable/metadata")
    assert body["model_spec"] == {"name": "clf", "version": "1", "signature_name": ""}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"predict", "explain", "serving_default"} <= set(signatures)
    images = signatures["explain"]["inputs"]["images"]
    assert images["dtype"] == "DT_UINT8" and images["tensor_shape"]["dim"][0]["size"] == "-1"


@pytest.mark.parametrize(("method", "path", "body", "code", "error"), [
    pytest.param("POST", "/v1/models/nope:predict", {"instances": [1]}, 404,
                 "Servable not found for request: Latest(nope)", id="unknown-model-predict"),
    pytest.param("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope",
                 id="unknown-model-status"),
    pytest.param("GET", "/v1/models/clf/versions/9", None, 404, "Could not find version 9 of model clf",
                 id="wrong-version-status"),
    pytest.param("POST", "/v1/models/clf/versions/9:predict", {"instances": [1]}, 404,
                 "Servable not found for request: Specific(clf, 9)", id="wrong-version-predict"),
    pytest.param("POST", "/v1/models/clf:predict", {"signature_name": "nope", "instances": [1]}, 400,
                 'Serving signature name: "nope" not found in signature def', id="unknown-signature"),
    pytest.param("POST", "/v1/models/clf:predict", {"instances": [1], "inputs": [1]}, 400,
                 'JSON Value: {\n    "instances": [1],\n    "inputs": [1]\n} Not formatted correctly expecting only '
                 "one of 'inputs' or 'instances' keys to exist ", id="instances-and-inputs"),
    pytest.param("POST", "/v1/models/clf:predict", {"signature_name": "predict"}, 400,
                 "Missing 'inputs' or 'instances' key", id="no-inputs"),
    pytest.param("POST", "/v1/models/clf:predict", b'{"instances": [1,', 400,
                 "JSON Parse error: Expecting value at offset: 17", id="bad-json"),
    pytest.param("POST", "/v1/models/clf:predict", b"", 400, "JSON Parse error: The document is empty",
                 id="empty-body"),
    pytest.param("POST", "/v1/models/clf:predict", {"instances": [1.5]}, 400,
                 "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1.5 "
                 "Type: Number is not of expected type: uint8", id="type-error"),
    pytest.param("POST", "/v1/models/clf:predict", {"signature_name": "explain", "instances": [[1]]}, 400,
                 "instances is a plain list, but expecting list of objects as multiple input tensors required as "
                 "per tensorinfo_map", id="plain-list-for-two-inputs"),
    pytest.param("POST", "/v1/models/clf:classify", {"examples": [{}]}, 501,
                 "Classify is not implemented by the gradcam-serving local server; use Predict with the 'predict' "
                 "or 'explain' signature", id="classify"),
    pytest.param("POST", "/v1/models/clf:regress", {}, 400,
                 "JSON Value: {} When method is classify, key 'examples' is expected and was not found",
                 id="regress-no-examples"),
    pytest.param("GET", "/v1/models/clf/versions/x", None, 400, "Malformed request: GET /v1/models/clf/versions/x",
                 id="malformed-url"),
    pytest.param("PUT", "/v1/models/clf", b"{}", 400, "Malformed request: PUT /v1/models/clf", id="wrong-method"),
    pytest.param("GET", "/v1/models", None, 400, "Missing model name in request.", id="no-model-name"),
])
def test_errors(srv, method, path, body, code, error):
    status, text = _call(srv, method, path, body)
    assert status == code, text
    assert json.loads(text)["error"] == error


def _nested_body(key: str, depth: int) -> bytes:
    """A body whose one value is ``depth`` JSON arrays around a single number."""
    return (f'{{"{key}": ' + "[" * depth + "7" + "]" * depth + "}").encode()


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_json_nested_64_deep_is_a_64_dimensional_tensor(srv, key):
    body = _ok(srv, "POST", "/v1/models/rank:predict", _nested_body(key, 64))
    assert body == ({"predictions": [64]} if key == "instances" else {"outputs": [64]})


@pytest.mark.parametrize("key", ["instances", "inputs"])
@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_json_nested_deeper_than_a_tensor_can_be_is_a_400(srv, key, depth):
    status, text = _call(srv, "POST", "/v1/models/rank:predict", _nested_body(key, depth))
    assert status == 400, text
    assert re.search(r"nested (too deeply|\d+ lists deep)", json.loads(text)["error"]), text


def test_unknown_url_outside_v1_is_404(srv):
    status, _ = _call(srv, "GET", "/v2/models/clf")
    assert status == 404


def test_metrics_page_counts_requests(srv):
    def count(page: str) -> int:
        prefix = ':tensorflow:serving:request_count{model_name="clf",status="OK"} '
        return sum(int(line[len(prefix):]) for line in page.splitlines() if line.startswith(prefix))

    status, before = _call(srv, "GET", METRICS_PATH)
    assert status == 200
    assert "# TYPE :tensorflow:serving:request_count counter" in before
    started, finished = srv.server.metrics.activity()
    _ok(srv, "POST", "/v1/models/clf:predict", {"instances": mf.images(1).tolist()})
    srv.predict(mf.predict_request(mf.images(1)))
    _call(srv, "POST", "/v1/models/nope:predict", {"instances": [1]})  # a failure ends its request too
    after = _call(srv, "GET", METRICS_PATH)[1]
    assert count(after) == count(before) + 2
    # what the server's IdleTrimmer reads: both entrypoints start and end each request, errors included
    assert srv.server.metrics.activity() == (started + 3, finished + 3)
    assert "# TYPE :tensorflow:serving:request_latency histogram" in after
    assert ':tensorflow:serving:request_latency_count{model_name="clf",API="predict",entrypoint="REST"}' in after
    assert ':tensorflow:serving:request_latency_count{model_name="clf",API="Predict",entrypoint="GRPC"}' in after


def test_rest_timeout_is_the_predict_deadline(srv, monkeypatch):
    seen = {}
    original = srv.server.core.predict

    def spy(*args, **kwargs):
        seen["timeout_ms"] = kwargs["timeout_ms"]
        return original(*args, **kwargs)

    monkeypatch.setattr(srv.server.core, "predict", spy)
    _ok(srv, "POST", "/v1/models/clf:predict", {"instances": mf.images(1).tolist()})
    assert seen["timeout_ms"] == srv.server.options.rest_api_timeout_in_ms == 30000


def test_histogram_buckets_follow_tf_upper_bound():
    metrics = Metrics()
    metrics.record_request("m", "predict", "OK", latency_s=10e-6, entrypoint="REST")
    metrics.record_request("m", "GetModelStatus", "OK", latency_s=1.0)
    page = render(metrics)
    assert ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="REST",le="10"} 0' in page
    assert ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="REST",le="18"} 1' in page
    assert "GetModelStatus" not in page  # TF counts gRPC Predict/Classify/Regress only


def test_monitoring_and_rest_flags(tmp_path):
    config = tmp_path / "monitoring.config"
    config.write_text('prometheus_config { enable: true path: "/metrics" }\n')
    options = parse_flags(["--model_base_path=/m", "--rest_api_port=8501", f"--monitoring_config_file={config}",
                           "--rest_api_timeout_in_ms=5"])
    assert (options.rest_api_port, options.prometheus_path, options.rest_api_timeout_in_ms) == (8501, "/metrics", 5)
    config.write_text("prometheus_config { enable: true }\n")
    assert parse_flags(["--model_base_path=/m", f"--monitoring_config_file={config}"]).prometheus_path == METRICS_PATH
    default = parse_flags(["--model_base_path=/m"])
    assert (default.rest_api_port, default.prometheus_path) == (None, None)
    assert parse_flags(["--model_base_path=/m", "--port=9000", "--rest_api_port=9000"]).rest_api_port is None
