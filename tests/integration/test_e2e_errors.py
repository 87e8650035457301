"""Every error case over the wire, for the official stub and for our client, with TF Serving's texts."""

from __future__ import annotations

import pytest

from gradcam_e2e import CLASS_INDEX_MESSAGE, ERROR_CASES, NO_MODEL_SPEC, MODEL, send_raw, test_images
from gradcam_serving import errors

IMAGES = test_images(2)
EXPECTED_TYPES = {
    "INVALID_ARGUMENT": errors.InvalidArgumentError,
    "NOT_FOUND": errors.NotFoundError,
    "FAILED_PRECONDITION": errors.FailedPreconditionError,
}


@pytest.fixture(scope="module")
def client(served):
    with served.client() as client:
        yield client


@pytest.mark.parametrize("case", (NO_MODEL_SPEC, *ERROR_CASES), ids=lambda case: case.id)
def test_official_stub_gets_tf_serving_code_and_text(served, case):
    case.check(*served.official.error(case.build(IMAGES)))


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
def test_our_client_raises_the_matching_error_with_code_and_details(client, case):
    with pytest.raises(errors.RpcError) as raised:
        send_raw(client, case.build(IMAGES))
    assert type(raised.value) is EXPECTED_TYPES[case.code]
    case.check(raised.value.code_name, raised.value.details)
    assert str(raised.value) == f"{raised.value.code}: {raised.value.details}"



@pytest.mark.parametrize(
    ("model", "pin", "error", "details"),
    [
        ("nope", {}, errors.NotFoundError, "Servable not found for request: Latest(nope)"),
        (MODEL, {"version": 7}, errors.NotFoundError, f"Servable not found for request: Specific({MODEL}, 7)"),
        (MODEL, {"version_label": "canary"}, errors.InvalidArgumentError, "Unrecognized servable version label: canary"),
    ],
    ids=["unknown_model", "unknown_version", "unknown_label"],
)
@pytest.mark.parametrize("method", ["predict", "explain"])
def test_our_client_public_api_selection_errors(served, model, pin, error, details, method):
    with served.client(model, **pin) as client, pytest.raises(error) as raised:
        getattr(client, method)(IMAGES)
    assert (raised.value.code_name, raised.value.details) == (error.code_name, details)


def test_our_client_public_api_class_index_out_of_range(client):
    with pytest.raises(errors.InvalidArgumentError) as raised:
        client.explain(IMAGES, [-1, 9])
    assert raised.value.code_name == "INVALID_ARGUMENT"
    assert raised.value.details.startswith(CLASS_INDEX_MESSAGE)


def test_errors_leave_the_server_serving(client):
    result = client.explain(IMAGES)
    assert result.heatmap.shape == (2, 40, 56)
    assert result.model_spec.version == 1
