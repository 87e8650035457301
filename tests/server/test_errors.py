"""One exception tree and one set of status enums for the server and the client.

The server refuses a request with a :class:`~gradcam_serving.errors.ServingError`
subclass; the client turns the gRPC status it receives back into one. Both
must land on the same class for the same code, and every table keyed by a
code (the gRPC/HTTP mapping, the wire's enums) must cover the one
:class:`~gradcam_serving.errors.StatusCode`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest
import tensorflow as tf

from gradcam_serving import client, errors
from gradcam_serving.client._base import map_rpc_errors
from gradcam_serving.errors import ServingError, StatusCode, VersionState, rpc_error_for_code
from gradcam_serving.server._status import GRPC_CODES, HTTP_CODES, grpc_status
from gradcam_serving.server._tf_errors import from_tf_error

FAILURES = [code for code in StatusCode if code is not StatusCode.OK]


class _ReceivedStatus(grpc.RpcError):
    """What a gRPC stub raises for a failed call: a code and details."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def _received_by_the_client(code: grpc.StatusCode, details: str) -> ServingError:
    with pytest.raises(ServingError) as caught, map_rpc_errors():
        raise _ReceivedStatus(code, details)
    return caught.value


@pytest.mark.parametrize("code", FAILURES, ids=lambda code: code.name)
def test_a_code_is_one_class_on_both_ends_of_the_wire(code: StatusCode) -> None:
    """TensorFlow's error -> the server's error -> gRPC status -> the client's error: one class, code and text."""
    op_error = tf.errors.OpError(None, None, f"refused with {code.name}", int(code))
    refused = from_tf_error(op_error)
    grpc_code, details = grpc_status(refused)
    received = _received_by_the_client(grpc_code, details)
    assert type(received) is type(refused) is type(rpc_error_for_code(code, ""))
    assert type(rpc_error_for_code(code.name, "")) is type(refused)
    assert (refused.code, received.code) == (code, code)
    assert received.details == refused.message == f"refused with {code.name}"
    assert str(received) == str(refused) == refused.status_string() == f"{code.name}: refused with {code.name}"


def test_every_code_with_a_class_of_its_own_maps_to_it_and_the_rest_to_the_base() -> None:
    own = {cls.code: cls for cls in vars(errors).values()
           if isinstance(cls, type) and issubclass(cls, ServingError) and cls is not ServingError}
    assert own.keys() >= {StatusCode.INVALID_ARGUMENT, StatusCode.NOT_FOUND, StatusCode.UNKNOWN, StatusCode.INTERNAL}
    for code in FAILURES:
        error = rpc_error_for_code(code, "text")
        assert type(error) is own.get(code, ServingError), code
        assert error.code_name == code.name
    assert errors.NotFoundError.code_name == "NOT_FOUND"  # readable on the class too
    assert rpc_error_for_code("NOT_A_CODE", "text").code is StatusCode.UNKNOWN


def test_the_status_table_covers_every_code_with_grpcs_own_number() -> None:
    assert set(GRPC_CODES) == set(HTTP_CODES) == set(StatusCode)
    for code, grpc_code in GRPC_CODES.items():
        assert grpc_code.value[0] == code and grpc_code.name == code.name


def test_public_names_are_aliases_of_the_one_definition() -> None:
    from gradcam_serving import server

    assert client.ModelState is VersionState
    assert server.ServingError is errors.RpcError is ServingError


def test_the_enums_and_the_tree_import_nothing_heavy() -> None:
    probe = ("import json, sys; import gradcam_serving.errors; "
             "print(json.dumps(sorted(m for m in ('tensorflow', 'grpc', 'google.protobuf') if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert json.loads(loaded) == []
