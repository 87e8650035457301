"""numpy <-> TensorProto without TensorFlow, checked against TensorFlow's own codec."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from gradcam_serving import wire as _wire
from gradcam_serving.client._tensors import array_to_tensor, dtype_name, shape_from_proto, tensor_to_array


def as_ours(official: tensor_pb2.TensorProto):
    return _wire.TensorProto.FromString(official.SerializeToString())


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3), id="uint8-images"),
        pytest.param(np.array([-1, 0, 7], dtype=np.int32), id="int32"),
        pytest.param(np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), id="float32"),
        pytest.param(np.array([1.5, -2.0], dtype=np.float64), id="float64"),
        pytest.param(np.array([2**40], dtype=np.int64), id="int64"),
        pytest.param(np.array([True, False]), id="bool"),
        pytest.param(np.zeros((0, 5, 5, 3), dtype=np.uint8), id="empty-batch"),
    ],
)
def test_our_encoding_is_read_back_by_tensorflow(array: np.ndarray) -> None:
    official = tensor_pb2.TensorProto.FromString(array_to_tensor(array).SerializeToString())
    decoded = tf.make_ndarray(official)
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4), id="float32"),
        pytest.param(np.array([[1, -2], [3, 4]], dtype=np.int32), id="int32"),
        pytest.param(np.array([1, 2, 255], dtype=np.uint8), id="uint8"),
        pytest.param(np.array([0.5, -3.0], dtype=np.float16), id="float16"),
        pytest.param(np.array([2**40, -1], dtype=np.int64), id="int64"),
        pytest.param(np.array([True, False, True]), id="bool"),
        pytest.param(np.array([1 + 2j, -3j], dtype=np.complex64), id="complex64"),
        pytest.param(np.array([[b"daisy", "rosé".encode()]], dtype=object), id="string"),
    ],
)
def test_tensorflow_encodings_decode_to_the_same_array(array: np.ndarray) -> None:
    for official in (tf.make_tensor_proto(array), _typed_proto(array)):
        decoded = tensor_to_array(as_ours(official))
        assert decoded.shape == array.shape
        assert decoded.dtype == array.dtype
        np.testing.assert_array_equal(decoded, array)


def _typed_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """The typed ``*_val`` encoding TF Serving uses for responses by default."""
    proto = tf.make_tensor_proto(array)
    if proto.tensor_content:
        content = tf.make_ndarray(proto)
        proto.ClearField("tensor_content")
        field = {
            "f4": "float_val", "f8": "double_val", "f2": "half_val", "i4": "int_val", "u1": "int_val",
            "i8": "int64_val", "b1": "bool_val", "c8": "scomplex_val",
        }[array.dtype.str[1:]]  # fmt: skip
        values = content.view(np.uint16) if field == "half_val" else content
        if field == "scomplex_val":
            values = np.stack([content.real, content.imag], axis=-1)
        getattr(proto, field).extend(values.ravel().tolist())
    return proto


def test_short_typed_fields_repeat_the_last_value_like_tensorflow() -> None:
    official = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0, 2.0])
    official.tensor_shape.dim.add(size=4)
    np.testing.assert_array_equal(tensor_to_array(as_ours(official)), tf.make_ndarray(official))
    np.testing.assert_array_equal(tensor_to_array(as_ours(official)), [1.0, 2.0, 2.0, 2.0])


def test_no_values_mean_zeros() -> None:
    tensor = _wire.TensorProto(dtype=_wire.DataType.values_by_name["DT_INT32"].number)
    tensor.tensor_shape.dim.add(size=3)
    np.testing.assert_array_equal(tensor_to_array(tensor), [0, 0, 0])


def test_content_of_the_wrong_size_is_refused() -> None:
    tensor = array_to_tensor(np.zeros(4, dtype=np.float32))
    tensor.tensor_content = tensor.tensor_content[:-1]
    with pytest.raises(ValueError, match="15 bytes but shape \\[4\\]"):
        tensor_to_array(tensor)


def test_unknown_shape_and_dtype_are_refused() -> None:
    unknown_rank = _wire.TensorProto(dtype=1)
    unknown_rank.tensor_shape.unknown_rank = True
    with pytest.raises(ValueError, match="unknown shape"):
        tensor_to_array(unknown_rank)
    resource = _wire.TensorProto(dtype=_wire.DataType.values_by_name["DT_RESOURCE"].number)
    with pytest.raises(ValueError, match="dtype resource"):
        tensor_to_array(resource)
    with pytest.raises(TypeError, match="dtype object"):
        array_to_tensor(np.array(["x"], dtype=object))


def test_big_endian_arrays_are_sent_little_endian() -> None:
    array = np.array([1, 256], dtype=">i4")
    tensor = array_to_tensor(array)
    assert tensor.tensor_content == np.array([1, 256], dtype="<i4").tobytes()
    np.testing.assert_array_equal(tensor_to_array(tensor), [1, 256])


@pytest.mark.parametrize(
    ("dt", "name"),
    [
        pytest.param(types_pb2.DT_FLOAT, "float32", id="float"),
        pytest.param(types_pb2.DT_DOUBLE, "float64", id="double"),
        pytest.param(types_pb2.DT_UINT8, "uint8", id="uint8"),
        pytest.param(types_pb2.DT_STRING, "string", id="string"),
        pytest.param(types_pb2.DT_HALF, "float16", id="half"),
        pytest.param(999, "unknown(999)", id="unknown"),
    ],
)
def test_dtype_names_match_tensorflow(dt: int, name: str) -> None:
    assert dtype_name(dt) == name
    if dt != 999:
        assert name == tf.dtypes.as_dtype(dt).name


def test_shapes_with_unknown_dims_and_rank() -> None:
    shape = _wire.TensorShapeProto()
    shape.dim.add(size=-1)
    shape.dim.add(size=3)
    assert shape_from_proto(shape) == (None, 3)
    assert shape_from_proto(_wire.TensorShapeProto(unknown_rank=True)) is None
    assert shape_from_proto(_wire.TensorShapeProto()) == ()
