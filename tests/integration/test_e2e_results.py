"""Both clients against the local server on a real export: results, metadata and status."""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_e2e import (
    AVAILABLE, LABELS, MODEL, assert_same_outputs, client_outputs, predict_request, response_outputs,
    saved_signature_names, signature_names_from_metadata, test_images,
)

IMAGES = test_images(3)
CLASS_INDEX = np.array([-1, 0, 3], np.int32)


@pytest.fixture(scope="module")
def client(served):
    with served.client() as client:
        yield client


def test_predict_matches_in_process_with_our_client(client, in_process):
    result = client.predict(IMAGES)
    assert_same_outputs(client_outputs(result), in_process.run("predict", images=IMAGES))
    assert (result.model_spec.name, result.model_spec.signature_name, result.model_spec.version) == (MODEL, "predict", 1)
    assert set(result.label) <= set(LABELS)


def test_explain_matches_in_process_with_our_client(client, in_process):
    result = client.explain(IMAGES, CLASS_INDEX.tolist())
    want = in_process.run("explain", images=IMAGES, class_index=CLASS_INDEX)
    assert_same_outputs(client_outputs(result), want)
    assert result.heatmap.shape == (3, 40, 56)
    assert result.class_index[1:].tolist() == [0, 3]  # explicit classes are explained as asked
    assert result.model_spec.version == 1


@pytest.mark.parametrize("signature", ["predict", "serving_default"])
def test_predict_matches_in_process_with_official_stub(served, in_process, signature):
    response = served.official.predict(predict_request(signature, images=IMAGES))
    assert_same_outputs(response_outputs(response), in_process.run(signature, images=IMAGES))
    assert (response.model_spec.name, response.model_spec.signature_name, response.model_spec.version.value) == (
        MODEL, signature, 1)


def test_explain_matches_in_process_with_official_stub(served, in_process):
    response = served.official.predict(predict_request("explain", images=IMAGES, class_index=CLASS_INDEX))
    assert_same_outputs(response_outputs(response),
                        in_process.run("explain", images=IMAGES, class_index=CLASS_INDEX))


def test_official_output_filter_returns_only_the_asked_outputs(served, in_process):
    request = predict_request("explain", images=IMAGES, class_index=CLASS_INDEX)
    request.output_filter.extend(["heatmap", "label"])
    outputs = response_outputs(served.official.predict(request))
    want = in_process.run("explain", images=IMAGES, class_index=CLASS_INDEX)
    assert_same_outputs(outputs, {k: want[k] for k in ("heatmap", "label")})


def test_both_clients_agree_on_the_predicted_class_explanation(client, served):
    ours = client.explain(IMAGES)
    response = served.official.predict(
        predict_request("explain", images=IMAGES, class_index=np.full(3, -1, np.int32)))
    theirs = response_outputs(response)
    np.testing.assert_array_equal(ours.class_index, theirs["class_index"])
    np.testing.assert_array_equal(ours.heatmap, theirs["heatmap"])


def test_metadata_lists_every_signature(client, served, export_v1):
    signatures = saved_signature_names(export_v1)
    ours = client.metadata()
    assert (ours.model_name, ours.version) == (MODEL, 1)
    assert set(ours.signatures) == signatures
    explain = ours.signatures["explain"]
    assert explain.method_name == "tensorflow/serving/predict"
    assert {k: v.dtype for k, v in explain.inputs.items()} == {"images": "uint8", "class_index": "int32"}
    assert set(explain.outputs) == {"probabilities", "class_index", "score", "label", "method", "heatmap", "cam"}
    assert set(ours.signatures["predict"].outputs) == {"probabilities", "class_index", "score", "label"}

    official = served.official.metadata()
    assert (official.model_spec.name, official.model_spec.version.value) == (MODEL, 1)
    assert official.model_spec.signature_name == ""
    assert signature_names_from_metadata(official) == signatures


def test_status_reports_version_1_available(client, served):
    (status,) = client.status()
    assert (status.version, status.state.name, status.error_code, status.error_message) == (1, "AVAILABLE", "OK", "")
    (official,) = served.official.status().model_version_status
    assert (official.version, official.state, official.status.error_code) == (1, AVAILABLE, 0)


def test_wait_until_ready_sees_the_served_version(client):
    statuses = client.wait_until_ready(timeout=10)
    assert [s.version for s in statuses] == [1]
