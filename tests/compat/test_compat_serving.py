"""End-to-end compatibility: the same checks against the local server and a real tensorflow_model_server."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from gradcam_e2e import (
    AVAILABLE, ERROR_CASES, LABELS, MODEL, NO_MODEL_SPEC, assert_same_outputs, client_outputs, predict_request,
    response_outputs, saved_signature_names, send_raw, signature_names_from_metadata, test_images,
)
from gradcam_serving import errors

IMAGES = test_images(2)
CLASS_INDEX = np.array([-1, 3], np.int32)
CASES = {case.id: case for case in (NO_MODEL_SPEC, *ERROR_CASES)}
OFFICIAL_CASES = ["missing_model_spec", "unknown_model", "unknown_version", "unknown_signature", "missing_input",
                  "extra_input", "wrong_dtype", "bad_output_filter", "class_index_out_of_range"]


@pytest.fixture(scope="module")
def client(server):
    with server.client() as client:
        yield client


def test_predict_equals_in_process_for_both_clients(server, client, in_process):
    want = in_process.run("predict", images=IMAGES)
    assert_same_outputs(client_outputs(client.predict(IMAGES)), want)
    response = server.official.predict(predict_request("predict", images=IMAGES))
    assert_same_outputs(response_outputs(response), want)
    assert (response.model_spec.name, response.model_spec.signature_name, response.model_spec.version.value) == (
        MODEL, "predict", 1)


def test_explain_equals_in_process_for_both_clients(server, client, in_process):
    want = in_process.run("explain", images=IMAGES, class_index=CLASS_INDEX)
    ours = client.explain(IMAGES, CLASS_INDEX.tolist())
    assert_same_outputs(client_outputs(ours), want)
    assert ours.model_spec.version == 1 and set(ours.label) <= set(LABELS)
    response = server.official.predict(predict_request("explain", images=IMAGES, class_index=CLASS_INDEX))
    assert_same_outputs(response_outputs(response), want)


@pytest.mark.parametrize("case_id", OFFICIAL_CASES)
def test_error_code_and_text_official_stub(server, case_id):
    CASES[case_id].check(*server.official.error(CASES[case_id].build(IMAGES)))


@pytest.mark.parametrize("case_id", ["unknown_model", "unknown_version", "wrong_dtype", "class_index_out_of_range"])
def test_error_code_and_text_our_client(client, case_id):
    with pytest.raises(errors.RpcError) as raised:
        send_raw(client, CASES[case_id].build(IMAGES))
    CASES[case_id].check(raised.value.code_name, raised.value.details)


def test_metadata_lists_every_signature(server, client, export_v1):
    signatures = saved_signature_names(export_v1)
    assert signature_names_from_metadata(server.official.metadata()) == signatures
    ours = client.metadata()
    assert (ours.model_name, ours.version, set(ours.signatures)) == (MODEL, 1, signatures)
    assert {k: v.dtype for k, v in ours.signatures["explain"].inputs.items()} == {"images": "uint8",
                                                                                  "class_index": "int32"}


def test_status_reports_available(server, client):
    (official,) = server.official.status().model_version_status
    assert (official.version, official.state, official.status.error_code) == (1, AVAILABLE, 0)
    assert [(s.version, s.state.name, s.error_code) for s in client.wait_until_ready(10)] == [(1, "AVAILABLE", "OK")]


def _rest(server, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_rest_status(server):
    status = _rest(server, f"/v1/models/{MODEL}")
    assert status == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_rest_explain_equals_in_process(server, in_process):
    body = {"signature_name": "explain",
            "inputs": {"images": IMAGES.tolist(), "class_index": CLASS_INDEX.tolist()}}
    outputs = _rest(server, f"/v1/models/{MODEL}:predict", body)["outputs"]
    want = in_process.run("explain", images=IMAGES, class_index=CLASS_INDEX)
    got = {name: np.asarray(value, want[name].dtype if want[name].dtype.kind != "O" else object)
           for name, value in outputs.items()}
    assert_same_outputs(got, want)
