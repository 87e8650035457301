"""Property-based fuzzing of a running local server on a real tiny export (gRPC and REST).

Every answer must be OK or one of TF Serving's caller-error codes, never
UNKNOWN or INTERNAL (HTTP 500); afterwards the server must be alive and give a
bit-identical reference ``explain``. CI runs a few hundred cases in total; set
``GRADCAM_FUZZ_EXAMPLES`` (per test) for a longer soak, e.g.
``GRADCAM_FUZZ_EXAMPLES=5000 pytest tests/fuzz``.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from gradcam_e2e import LocalServer, local_server, predict_request, test_images
from malformed import GRPC_ALLOWED, HTTP_ALLOWED, MODEL, predict_requests, rest_bodies

EXAMPLES = int(os.environ.get("GRADCAM_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("GRADCAM_FUZZ_EXAMPLES"),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large], database=None)
REFERENCE = predict_request("explain", images=test_images(2), class_index=np.array([-1, 2], np.int32))


@pytest.fixture(scope="module")
def served(export_v1: Path) -> Iterator[LocalServer]:
    with local_server(export_v1.parent, rest_api_port=0) as server:
        yield server


@pytest.fixture(scope="module")
def reference(served: LocalServer) -> bytes:
    return served.official.predict(REFERENCE).SerializeToString(deterministic=True)


def _assert_alive_and_identical(served: LocalServer, reference: bytes) -> None:
    assert served.official.predict(REFERENCE).SerializeToString(deterministic=True) == reference


def _grpc_code(served: LocalServer, request) -> tuple[str, str]:
    try:
        served.official.prediction.Predict(request, 60)
    except grpc.RpcError as exc:
        return exc.code().name, exc.details() or ""
    return "OK", ""


def test_fuzz_predict_tensor_protos(served, reference):
    seen: dict[str, int] = {}

    @FUZZ
    @given(request=predict_requests())
    def check(request):
        code, details = _grpc_code(served, request)
        seen[code] = seen.get(code, 0) + 1
        assert code in GRPC_ALLOWED, (code, details, request.model_spec, {k: (v.dtype, v.tensor_shape) for k, v in request.inputs.items()})

    check()
    assert seen.get("INVALID_ARGUMENT", 0) > 0  # the generator does reach the parser
    _assert_alive_and_identical(served, reference)


def _post(served: LocalServer, path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", served.server.rest_port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


PATHS = [f"/v1/models/{MODEL}:predict", f"/v1/models/{MODEL}/versions/1:predict", f"/v1/models/{MODEL}:classify",
         f"/v1/models/{MODEL}/labels/x:predict", "/v1/models/nope:predict"]


def test_fuzz_rest_bodies(served, reference):
    from hypothesis import strategies as st

    @FUZZ
    @given(body=rest_bodies(), path=st.sampled_from(PATHS))
    def check(body, path):
        status, payload = _post(served, path, body)
        assert status in HTTP_ALLOWED, (status, payload[:500], body[:300])
        if status != 200:
            assert isinstance(json.loads(payload)["error"], str)

    check()
    _assert_alive_and_identical(served, reference)
