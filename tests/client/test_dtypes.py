"""The shared dtype table against TensorFlow's own enum, names and numpy types."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from gradcam_serving import dtypes as _dtypes
from gradcam_serving.client import _tensors as client_tensors
from gradcam_serving.server import _tensors as server_tensors


@pytest.mark.parametrize("row", _dtypes.DTYPES, ids=lambda row: row.name)
def test_every_row_matches_tensorflow(row: _dtypes.DType) -> None:
    dtype = tf.dtypes.as_dtype(row.enum)
    assert types_pb2.DataType.Name(row.enum) == _dtypes.DATA_TYPE_NAMES[row.enum]
    assert row.name == dtype.name
    if row.numpy is not None:
        assert np.dtype(row.numpy) == np.dtype(dtype.as_numpy_dtype).newbyteorder("<")


def test_the_enum_names_are_types_proto_in_order() -> None:
    for number, name in enumerate(_dtypes.DATA_TYPE_NAMES):
        assert types_pb2.DataType.Value(name) == number


@pytest.mark.parametrize(
    ("enum", "name", "type_string"),
    [
        pytest.param(types_pb2.DT_FLOAT, "float32", "float", id="float"),
        pytest.param(types_pb2.DT_DOUBLE, "float64", "double", id="double"),
        pytest.param(types_pb2.DT_HALF, "float16", "half", id="half"),
        pytest.param(types_pb2.DT_UINT8, "uint8", "uint8", id="uint8"),
        pytest.param(types_pb2.DT_RESOURCE, "resource", "resource", id="unconverted"),
        pytest.param(999, "unknown(999)", "unknown(999)", id="unknown"),
    ],
)
def test_client_and_server_name_dtypes_from_the_one_table(enum: int, name: str, type_string: str) -> None:
    """The client shows tf.DType names; the server's errors use DataTypeString, as TF Serving's do."""
    assert client_tensors.dtype_name(enum) == name
    assert server_tensors.dtype_name(enum) == type_string
