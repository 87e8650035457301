"""The malformed requests of issue 10 against a real export: each gets the caller's error, never INTERNAL.

One server per module, with REST and with a 1 MiB message limit set through
``--grpc_channel_arguments`` (so the limits are cheap to cross) and a 1 MiB
REST body limit.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from gradcam_e2e import MODEL, LocalServer, local_server, predict_request, test_images

LIMIT = 1 << 20
IMAGES = test_images(1)


@pytest.fixture(scope="module")
def served(export_v1: Path) -> Iterator[LocalServer]:
    with local_server(export_v1.parent, rest_api_port=0, rest_api_max_body_bytes=LIMIT,
                      grpc_channel_arguments=(("grpc.max_receive_message_length", LIMIT),)) as server:
        yield server


def _declared(dtype: int, dims: list[int], **fields: list) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]))
    for name, values in fields.items():
        getattr(proto, name).extend(values)
    return proto


def _request(signature: str, **tensors: tensor_pb2.TensorProto):
    request = predict_request(signature)
    for alias, proto in tensors.items():
        request.inputs[alias].CopyFrom(proto)
    return request


CLASS_INDEX = _declared(types_pb2.DT_INT32, [1], int_val=[-1])


@pytest.mark.parametrize(
    ("signature", "alias", "proto"),
    [
        ("explain", "images", _declared(types_pb2.DT_UINT8, [1, 100_000, 100_000, 3])),
        ("explain", "images", _declared(types_pb2.DT_UINT8, [1, 1000, 1000, 3], int_val=[7])),  # 3 MB > 1 MiB
        ("explain", "class_index", _declared(types_pb2.DT_INT32, [10**11])),
        ("explain_bytes", "image_bytes", _declared(types_pb2.DT_STRING, [10**10], string_val=[b"x"])),
        ("explain", "images", _declared(types_pb2.DT_UINT8, [2**62, 2**62])),
    ],
    ids=["images_30GB_empty", "images_over_message_limit", "class_index_1e11", "image_bytes_1e10", "overflow"],
)
def test_declared_shapes_beyond_the_limit_are_tensor_parsing_errors(served, signature, alias, proto):
    inputs = {"images": _declared(types_pb2.DT_UINT8, [1, 8, 8, 3]), "class_index": CLASS_INDEX}
    if signature == "explain_bytes":
        inputs = {"image_bytes": _declared(types_pb2.DT_STRING, [1], string_val=[b"x"]), "class_index": CLASS_INDEX}
    inputs[alias] = proto
    assert served.official.error(_request(signature, **inputs)) == ("INVALID_ARGUMENT", f"tensor parsing error: {alias}")


NOT_AN_IMAGE = b"\xff\xfe\x80 not an image"
HEX_TEXT = "first bytes in hex:] [ff fe 80 20 6e 6f 74 20]"


def test_non_utf8_bytes_in_an_assert_are_shown_in_hex_over_grpc(served):
    request = predict_request("explain_bytes", image_bytes=np.array([NOT_AN_IMAGE], object),
                              class_index=np.array([-1], np.int32))
    code, details = served.official.error(request)
    assert code == "INVALID_ARGUMENT"
    assert "image_bytes must hold JPEG or PNG files; got one that is neither (length] [16]" in details
    assert HEX_TEXT in details
    assert "\ufffd" not in details


def _http(served: LocalServer, method: str, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", served.server.rest_port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


PREDICT = f"/v1/models/{MODEL}:predict"


def test_non_utf8_bytes_in_an_assert_are_a_400_over_rest(served):
    body = json.dumps({"signature_name": "explain_bytes", "inputs": {
        "image_bytes": [{"b64": base64.b64encode(NOT_AN_IMAGE).decode()}], "class_index": [-1]}}).encode()
    status, reply = _http(served, "POST", PREDICT, body)
    assert status == 400 and HEX_TEXT in reply["error"]


@pytest.mark.parametrize("depth", [65, 990, 1000, 50_000])
def test_deeply_nested_json_is_a_400(served, depth):
    body = ('{"signature_name": "explain", "inputs": {"images": ' + "[" * depth + "1" + "]" * depth
            + ', "class_index": [-1]}}').encode()
    status, reply = _http(served, "POST", PREDICT, body)
    assert status == 400 and "nested" in reply["error"], reply


def test_rest_body_over_the_limit_is_a_413_without_reading_it(served):
    status, reply = _http(served, "POST", PREDICT, b" " * (LIMIT + 1))
    assert status == 413
    assert reply["error"] == (f"Request body of {LIMIT + 1} bytes exceeds the server's limit of {LIMIT} bytes "
                              "(--rest_api_max_body_bytes)")


def test_a_bad_content_length_is_a_400(served):
    connection = http.client.HTTPConnection("127.0.0.1", served.server.rest_port, timeout=60)
    try:
        connection.putrequest("POST", PREDICT)
        connection.putheader("Content-Length", "-5")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 400
        assert "Invalid Content-Length header" in json.loads(response.read())["error"]
    finally:
        connection.close()


def test_grpc_message_limit_comes_from_channel_arguments(served):
    small = predict_request("explain", images=np.zeros((1, 400, 400, 3), np.uint8), class_index=np.array([-1], np.int32))
    assert small.ByteSize() < LIMIT
    assert served.official.predict(small).outputs["heatmap"].tensor_shape.dim[0].size == 1
    large = predict_request("explain", images=np.zeros((1, 700, 700, 3), np.uint8), class_index=np.array([-1], np.int32))
    assert large.ByteSize() > LIMIT
    with pytest.raises(grpc.RpcError) as raised:
        served.official.predict(large)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # the server is unharmed
    assert served.official.predict(predict_request("predict", images=IMAGES)).model_spec.version.value == 1
