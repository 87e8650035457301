"""Property-based fuzzing of a running local server on a real tiny export (gRPC and REST).

Every answer must be OK or one of TF Serving's caller-error codes, never
UNKNOWN or INTERNAL (HTTP 500); afterwards the server must be alive and give a
bit-identical reference ``explain``. A share of the cases must reach the
tensor parser, so a server that refused everything could not pass. CI runs a
few hundred cases in total; set ``GRADCAM_FUZZ_EXAMPLES`` (per test) for a
longer soak, e.g.
``GRADCAM_FUZZ_EXAMPLES=5000 pytest tests/fuzz``.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcam_e2e import LocalServer, local_server, predict_request, test_images
from malformed import GRPC_ALLOWED, HTTP_ALLOWED, MODEL, predict_requests, rest_bodies, tensors
from tensorflow_serving.apis import model_pb2, predict_pb2

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


# Answers only a request that got past the model spec and the alias check can get: TF Serving's texts for a
# TensorProto that does not parse, a dtype the signature does not take, and the exported model's own checks.
GRPC_TENSOR_TEXTS = re.compile(r"tensor parsing error: |Expects arg\[\d+\] to be |assertion failed")
# The signature each fully addressed request names, with the aliases it takes.
ADDRESSED = {"predict": ["images"], "explain": ["images", "class_index"], "explain_bytes": ["image_bytes", "class_index"]}


@st.composite
def addressed_requests(draw: Any) -> predict_pb2.PredictRequest:
    """A request with the right model, signature and aliases, and any TensorProto per alias.

    Most of ``predict_requests`` stops at the model spec or the alias check; these get to the tensors.
    """
    signature = draw(st.sampled_from(sorted(ADDRESSED)))
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=MODEL, signature_name=signature))
    for alias in ADDRESSED[signature]:
        request.inputs[alias].CopyFrom(draw(tensors))
    return request


def test_fuzz_predict_tensor_protos(served, reference):
    answers: list[tuple[str, str]] = []

    @FUZZ
    @given(request=st.one_of(predict_requests(), addressed_requests()))
    def check(request):
        code, details = _grpc_code(served, request)
        answers.append((code, details))
        assert code in GRPC_ALLOWED, (code, details, request.model_spec, {k: (v.dtype, v.tensor_shape) for k, v in request.inputs.items()})

    check()
    # A server refusing every request with INVALID_ARGUMENT would pass the checks above.
    reached = sum(code == "OK" or bool(GRPC_TENSOR_TEXTS.search(details)) for code, details in answers)
    assert reached >= MIN_REACH_SHARE * len(answers), f"{reached} of {len(answers)} requests reached the tensors"
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
PREDICT_PATHS = PATHS[:2]
# Answers only a body that got past JSON syntax, routing and the signature into the tensor parser can get:
# TF Serving's texts from filling tensors (util/json_tensor.cc), ours for nesting numpy cannot hold, and the
# exported model's own checks behind the parser.
TENSOR_PARSER_TEXTS = re.compile(
    r"Failed to process element: |instances is a plain list|inputs is a plain value/list|Expecting (object|value/list) "
    r"but got|Missing named input: |found at incorrect level|Encountered list at unexpected|is not of expected type|"
    r"for base64 data|Unable to base64 decode|Conversion of JSON Value|lists deep; |assertion failed")
MIN_REACH_SHARE = 0.3  # well below what the two generators together reach, derandomised or not
DEEP = [63, 64, 65, 66, 300]  # either side of numpy's 64 dimensions, for "inputs" and for batched "instances"


def _nested(flat: list[Any], shape: list[int]) -> Any:
    """``flat`` (row-major) as nested JSON lists of ``shape``."""
    if not shape:
        return flat[0]
    step = math.prod(shape[1:])
    return [_nested(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


_bad_leaves = st.one_of(st.integers(-300, 300), st.floats(), st.none(), st.text(max_size=3), st.booleans())


@st.composite
def tensor_bodies(draw: Any) -> bytes:
    """A predict or explain body for the served export with each part usually right.

    Most of ``rest_bodies`` stops at JSON syntax, routing or the envelope;
    these reach the tensor parser, and some run the model.
    """
    rows = draw(st.integers(1, 2))
    shape = [rows, draw(st.integers(1, 3)), draw(st.integers(1, 3)), 3]
    if draw(st.integers(0, 4)) == 0:  # a wrong shape, or nesting around numpy's 64 dimensions in either form
        shape = draw(st.lists(st.integers(0, 3), max_size=5) | st.builds(lambda n: [1] * n, st.sampled_from(DEEP)))
    pixels = st.integers(0, 255) if draw(st.integers(0, 3)) else _bad_leaves
    inputs = {"images": _nested(draw(st.lists(pixels, min_size=math.prod(shape), max_size=math.prod(shape))), shape)}
    explain = draw(st.booleans())
    if explain:
        inputs["class_index"] = draw(st.lists(st.integers(-2, 5), min_size=rows, max_size=rows)
                                     if draw(st.integers(0, 3)) else st.lists(_bad_leaves, max_size=3))
    doc: dict[str, Any] = {"signature_name": "explain" if explain else draw(st.sampled_from(["predict", ""]))}
    if draw(st.booleans()) and all(isinstance(value, list) for value in inputs.values()):
        doc["instances"] = [dict(zip(inputs, row)) for row in zip(*inputs.values())]
    else:
        doc["inputs"] = inputs
    return json.dumps(doc, allow_nan=True).encode()


def _reached_tensor_parser(status: int, payload: bytes) -> bool:
    return status == 200 or bool(TENSOR_PARSER_TEXTS.search(json.loads(payload)["error"]))


def test_fuzz_rest_bodies(served, reference):
    answers: list[tuple[int, bool]] = []

    @FUZZ
    @given(request=st.one_of(st.tuples(rest_bodies(), st.sampled_from(PATHS)),
                             st.tuples(tensor_bodies(), st.sampled_from(PREDICT_PATHS))))
    def check(request):
        body, path = request
        status, payload = _post(served, path, body)
        assert status in HTTP_ALLOWED, (status, payload[:500], body[:300])
        if status == 200:
            assert json.loads(payload).keys() & {"predictions", "outputs"}, payload[:300]
        else:
            assert isinstance(json.loads(payload)["error"], str)
        answers.append((status, _reached_tensor_parser(status, payload)))

    check()
    # A server refusing every body with 400 or 404 would pass the checks above.
    reached = sum(hit for _, hit in answers)
    assert reached >= MIN_REACH_SHARE * len(answers), f"{reached} of {len(answers)} bodies reached the tensor parser"
    assert any(status == 200 for status, _ in answers), "no body ran the model"
    _assert_alive_and_identical(served, reference)
