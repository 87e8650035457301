"""PredictionService / ModelService behaviour against TF Serving's texts, over real gRPC."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2, get_model_metadata_pb2, get_model_status_pb2, inference_pb2, model_pb2, predict_pb2,
    regression_pb2,
)

import model_factory as mf
import server_harness
from gradcam_serving import signatures as sig
from gradcam_serving.server import ModelConfig, ServingError, VersionPolicy

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("clf"))
    mf.write_model(base, 1, scale=1.0)
    mf.write_model(base, 2, scale=2.0)
    models = (ModelConfig("clf", base, VersionPolicy("all"), (("stable", 1), ("canary", 2))),)
    harness = server_harness.start(models)
    yield harness
    harness.close()


def _err(call, *args):
    with pytest.raises(grpc.RpcError) as info:
        call(*args)
    return info.value.code(), info.value.details()


def _values(proto) -> np.ndarray:
    return tf.make_ndarray(proto)


def test_predict_returns_typed_fields_and_echoes_spec(srv):
    images = mf.images(3)
    response = srv.predict(mf.predict_request(images))
    assert (response.model_spec.name, response.model_spec.signature_name, response.model_spec.version.value) == (
        "clf", "predict", 2)
    out = response.outputs
    assert set(out) == set(sig.PREDICT_OUTPUTS)
    assert out[sig.PROBABILITIES].dtype == types_pb2.DT_FLOAT and len(out[sig.PROBABILITIES].float_val) == 9
    assert out[sig.CLASS_INDEX].dtype == types_pb2.DT_INT32 and len(out[sig.CLASS_INDEX].int_val) == 3
    assert out[sig.LABEL].dtype == types_pb2.DT_STRING and len(out[sig.LABEL].string_val) == 3
    assert not any(t.tensor_content for t in out.values())
    want = mf.expected(images, scale=2.0)
    np.testing.assert_allclose(_values(out[sig.PROBABILITIES]), want[sig.PROBABILITIES], rtol=1e-5)
    np.testing.assert_array_equal(_values(out[sig.CLASS_INDEX]), want[sig.CLASS_INDEX])
    assert list(out[sig.LABEL].string_val) == list(want[sig.LABEL])


def test_empty_signature_name_means_serving_default(srv):
    response = srv.predict(mf.predict_request(mf.images(1), signature=""))
    assert response.model_spec.signature_name == "serving_default"
    assert len(response.outputs[sig.SCORE].float_val) == 1


def test_explain_heatmap_values(srv):
    images, classes = mf.images(2, size=5), np.array([0, -1], np.int32)
    request = mf.predict_request(images, sig.EXPLAIN, class_index=classes)
    request.model_spec.version.value = 1
    response = srv.predict(request)
    want = mf.expected(images, 1.0, classes)
    np.testing.assert_allclose(_values(response.outputs[sig.HEATMAP]), want[sig.HEATMAP], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(_values(response.outputs[sig.CLASS_INDEX]), want[sig.CLASS_INDEX])
    assert response.model_spec.version.value == 1


def test_label_resolves_to_numeric_version(srv):
    request = mf.predict_request(mf.images(1))
    request.model_spec.version_label = "stable"
    response = srv.predict(request)
    assert response.model_spec.version.value == 1
    assert not response.model_spec.version_label
    np.testing.assert_allclose(_values(response.outputs[sig.SCORE]),
                               mf.expected(mf.images(1), 1.0)[sig.SCORE], rtol=1e-5)


def test_output_filter_returns_only_requested(srv):
    request = mf.predict_request(mf.images(2))
    request.output_filter.extend([sig.SCORE, sig.LABEL])
    assert set(srv.predict(request).outputs) == {sig.SCORE, sig.LABEL}


def test_lenient_tensor_parsing_repeats_last_value(srv):
    request = mf.predict_request(mf.images(1))
    proto = request.inputs[sig.IMAGES]
    proto.ClearField("tensor_content")
    del proto.int_val[:]
    proto.int_val.append(255)
    response = srv.predict(request)
    want = mf.expected(np.full((1, 4, 4, 3), 255, np.uint8), 2.0)
    np.testing.assert_allclose(_values(response.outputs[sig.PROBABILITIES]), want[sig.PROBABILITIES], rtol=1e-5)


def _request(**changes) -> predict_pb2.PredictRequest:
    request = mf.predict_request(mf.images(2))
    for key, value in changes.items():
        setattr(request.model_spec, key, value)
    return request


def _with_inputs(signature: str, **inputs: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="clf", signature_name=signature))
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return request


IMG = mf.images(2)
IDX = np.array([0, 1], np.int32)


def _bad_content() -> predict_pb2.PredictRequest:
    request = mf.predict_request(IMG)
    request.inputs[sig.IMAGES].tensor_content = b"\x00" * 7
    return request


def _versioned(version: int) -> predict_pb2.PredictRequest:
    request = _request()
    request.model_spec.version.value = version
    return request


def _labelled(label: str) -> predict_pb2.PredictRequest:
    request = _request()
    request.model_spec.version_label = label
    return request


def _filtered(*aliases: str) -> predict_pb2.PredictRequest:
    request = mf.predict_request(IMG)
    request.output_filter.extend(aliases)
    return request


PREDICT_ERRORS = [
    pytest.param(predict_pb2.PredictRequest(), INVALID, "Missing ModelSpec", id="missing-model-spec"),
    pytest.param(_request(name=""), INVALID, "ModelSpec has no name specified.", id="empty-name"),
    pytest.param(_request(name="nope"), grpc.StatusCode.NOT_FOUND,
                 "Servable not found for request: Latest(nope)", id="unknown-model"),
    pytest.param(_versioned(9), grpc.StatusCode.NOT_FOUND,
                 "Servable not found for request: Specific(clf, 9)", id="unknown-version"),
    pytest.param(_labelled("beta"), INVALID, "Unrecognized servable version label: beta", id="unknown-label"),
    pytest.param(_request(signature_name="nope"), grpc.StatusCode.FAILED_PRECONDITION,
                 'Serving signature key "nope" not found.', id="unknown-signature"),
    pytest.param(_with_inputs(sig.EXPLAIN, images=IMG), INVALID,
                 "input size does not match signature: 1!=2 len({images}) != len({class_index,images}). "
                 "Sent extra: {}. Missing but required: {class_index}.", id="missing-input"),
    pytest.param(_with_inputs(sig.PREDICT, images=IMG, zeta=IDX, alpha=IDX), INVALID,
                 "input size does not match signature: 3!=1 len({alpha,images,zeta}) != len({images}). "
                 "Sent extra: {alpha,zeta}. Missing but required: {}.", id="extra-inputs"),
    pytest.param(_with_inputs(sig.PREDICT), INVALID,
                 "input size does not match signature: 0!=1 len({}) != len({images}). "
                 "Sent extra: {}. Missing but required: {images}.", id="no-inputs"),
    pytest.param(_with_inputs(sig.PREDICT, image=IMG), INVALID,
                 "Signature input alias: images(feed name: predict_images:0) not found in request and no "
                 "default value provided. Inputs expected to be in the request {image}, or default input "
                 "alias set: ", id="wrong-input-name"),
    pytest.param(_bad_content(), INVALID, "tensor parsing error: images", id="tensor-parsing"),
    pytest.param(_filtered("nope"), INVALID, "output tensor alias not found in signature: nope Outputs "
                 "expected to be in the set {class_index,label,probabilities,score}.", id="unknown-filter"),
    pytest.param(_filtered(sig.SCORE, sig.SCORE), INVALID, "duplicate output tensor alias: score",
                 id="duplicate-filter"),
    pytest.param(_with_inputs(sig.PREDICT, images=IMG.astype(np.float32)), INVALID,
                 "Expects arg[0] to be uint8 but float is provided", id="dtype-images"),
    pytest.param(_with_inputs(sig.EXPLAIN, images=IMG, class_index=IDX.astype(np.int64)), INVALID,
                 "Expects arg[0] to be int32 but int64 is provided", id="dtype-class-index-arg0"),
    pytest.param(_with_inputs(sig.EXPLAIN, images=IMG.astype(np.int32), class_index=IDX), INVALID,
                 "Expects arg[1] to be uint8 but int32 is provided", id="dtype-images-arg1"),
]


@pytest.mark.parametrize(("request_", "code", "message"), PREDICT_ERRORS)
def test_predict_errors_match_tf_serving(srv, request_, code, message):
    assert _err(srv.predict, request_) == (code, message)


def test_input_of_the_wrong_rank_is_invalid_argument_not_internal(srv):
    """A fixed-rank input fed another rank: TF Serving's op answers INVALID_ARGUMENT, so must we."""
    code, details = _err(srv.predict, _with_inputs(sig.PREDICT, images=np.zeros((1, 3), np.uint8)))
    assert code == INVALID and "shape (1, 3)" in details, details


def test_check_order_signature_before_inputs(srv):
    request = _with_inputs("nope", image=IMG)
    assert _err(srv.predict, request)[0] == grpc.StatusCode.FAILED_PRECONDITION


def test_tf_runtime_error_keeps_tf_code_and_message(srv):
    request = mf.predict_request(IMG, sig.EXPLAIN, class_index=np.array([0, 7], np.int32))
    code, details = _err(srv.predict, request)
    assert code == INVALID
    assert details.startswith("assertion failed: [class_index out of range]")
    assert "{{function_node __inference_explain" in details
    assert "Graph execution error" not in details


def test_readiness_trick_missing_model(srv):
    code, details = _err(srv.predict, _request(name="intentionally_missing_model"))
    assert code == grpc.StatusCode.NOT_FOUND and "Servable" in details


@pytest.mark.parametrize("method, request_", [
    pytest.param("Classify", classification_pb2.ClassificationRequest(), id="classify"),
    pytest.param("Regress", regression_pb2.RegressionRequest(), id="regress"),
    pytest.param("MultiInference", inference_pb2.MultiInferenceRequest(), id="multi-inference"),
])
def test_unimplemented_apis(srv, method, request_):
    code, details = _err(getattr(srv.predict_stub, method), request_, 10)
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert method in details and "Predict" in details


def test_metadata_has_every_signature(srv):
    response = srv.metadata("clf")
    assert response.model_spec.name == "clf" and response.model_spec.version.value == 2
    assert not response.model_spec.signature_name
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    assert set(signature_map.signature_def) == {"serving_default", "predict", "explain", "__saved_model_init_op"}
    explain = signature_map.signature_def["explain"]
    assert explain.inputs["images"].name == "explain_images:0"
    assert explain.inputs["images"].dtype == types_pb2.DT_UINT8
    assert set(explain.outputs) == set(sig.EXPLAIN_OUTPUTS)


@pytest.mark.parametrize("fields, message", [
    pytest.param((), "GetModelMetadataRequest must specify at least one metadata_field", id="no-field"),
    pytest.param(("signature_def", "foo"), "Metadata field foo is not supported", id="unsupported-field"),
])
def test_metadata_field_errors(srv, fields, message):
    assert _err(srv.metadata, "clf", fields) == (INVALID, message)


def test_metadata_errors_for_missing_spec_and_model(srv):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    assert _err(srv.predict_stub.GetModelMetadata, request, 10) == (INVALID, "Missing ModelSpec")
    assert _err(srv.metadata, "nope") == (grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)")


def test_status_lists_all_versions(srv):
    response = srv.status("clf")
    rows = [(s.version, s.state, s.status.error_code, s.status.error_message) for s in response.model_version_status]
    assert rows == [(2, 30, 0, ""), (1, 30, 0, "")]
    assert [s.version for s in srv.status("clf", 1).model_version_status] == [1]


def test_status_errors(srv):
    assert _err(srv.status, "clf", 7) == (grpc.StatusCode.NOT_FOUND, "Could not find version 7 of model clf")
    assert _err(srv.status, "nope") == (grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nope")
    request = get_model_status_pb2.GetModelStatusRequest()
    assert _err(srv.model_stub.GetModelStatus, request, 10) == (INVALID, "Missing ModelSpec")


def test_health_service_reports_serving(srv):
    stub = health_pb2_grpc.HealthStub(srv.channel)
    for service in ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_deadline_becomes_run_timeout_and_deadline_exceeded_maps(srv):
    from gradcam_serving.errors import StatusCode
    from gradcam_serving.server._manager import ModelRef
    from gradcam_serving.server._servicer import timeout_ms

    class _Context:
        def __init__(self, remaining):
            self._remaining = remaining

        def time_remaining(self):
            return self._remaining

    assert timeout_ms(_Context(None)) == 0
    assert timeout_ms(_Context(2.5)) == 2500
    with srv.server.core.manager.servable(ModelRef("clf")) as servable:
        explain = servable.signature_defs[sig.EXPLAIN]
        feeds = {explain.inputs[sig.IMAGES].name: np.zeros((4, 800, 800, 3), np.uint8),
                 explain.inputs[sig.CLASS_INDEX].name: np.zeros(4, np.int32)}
        with pytest.raises(ServingError) as info:
            servable.run(feeds, [explain.outputs[sig.HEATMAP].name], timeout_ms=1)
    assert info.value.code is StatusCode.DEADLINE_EXCEEDED
    from gradcam_serving.server._status import grpc_status

    assert grpc_status(info.value)[0] == grpc.StatusCode.DEADLINE_EXCEEDED


def test_long_error_messages_are_truncated():
    from gradcam_serving.errors import InvalidArgumentError
    from gradcam_serving.server._status import grpc_status

    code, message = grpc_status(InvalidArgumentError("x" * 2000))
    assert code == INVALID and message == "x" * 1024 + "...TRUNCATED"
