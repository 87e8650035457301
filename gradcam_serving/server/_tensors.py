"""TensorProto <-> numpy, with TF Serving's parsing rules and output encoding.

Input parsing copies ``Tensor::FromProto``, which is lenient: too few typed
values repeat the last one, none give zeros, too many are cut. Only a
``tensor_content`` of the wrong byte size, an invalid shape or an unsupported
dtype fail, and the caller reports them as ``tensor parsing error: <alias>``.
Outputs use the typed fields (``float_val``, ``int_val`` ...) like
``Tensor::AsProtoField``, TF Serving's default.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from gradcam_serving._dtypes import type_string as dtype_name  # TF's DataTypeString, as in its error texts

__all__ = [
    "TensorParseError",
    "dtype_enum_of",
    "dtype_name",
    "from_numpy",
    "to_numpy",
]


class TensorParseError(ValueError):
    """The TensorProto cannot be turned into a tensor."""


# dtype enum -> (numpy dtype, typed field name)
_FIELDS: dict[int, tuple[Any, str]] = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
    types_pb2.DT_STRING: (object, "string_val"),
    types_pb2.DT_HALF: (np.float16, "half_val"),
    types_pb2.DT_COMPLEX64: (np.complex64, "scomplex_val"),
    types_pb2.DT_COMPLEX128: (np.complex128, "dcomplex_val"),
}
_BY_NUMPY = {np.dtype(npt): enum for enum, (npt, _) in _FIELDS.items() if npt is not object}


def _bfloat16() -> Any:
    import ml_dtypes  # shipped with TensorFlow

    return ml_dtypes.bfloat16


def dtype_enum_of(array: np.ndarray) -> int:
    """The ``DataType`` enum of a numpy array (object/bytes arrays are strings)."""
    if array.dtype == object or array.dtype.kind in "SU":
        return types_pb2.DT_STRING
    if array.dtype == np.dtype(_bfloat16()):
        return types_pb2.DT_BFLOAT16
    try:
        return _BY_NUMPY[array.dtype]
    except KeyError:
        raise TensorParseError(f"unsupported dtype {array.dtype}") from None


def _shape(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    if proto.tensor_shape.unknown_rank:
        raise TensorParseError("unknown rank")
    dims = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if any(d < 0 for d in dims):
        raise TensorParseError("negative dimension")
    return dims


def to_numpy(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode a request TensorProto as ``Tensor::FromProto`` would.

    Raises:
        TensorParseError: the proto does not describe a valid tensor.
    """
    shape = _shape(proto)
    count = math.prod(shape)
    if proto.dtype == types_pb2.DT_BFLOAT16:
        np_type, field = _bfloat16(), "half_val"
    elif proto.dtype in _FIELDS:
        np_type, field = _FIELDS[proto.dtype]
    else:
        raise TensorParseError(f"unsupported dtype {proto.dtype}")
    if proto.tensor_content:
        if np_type is object:
            raise TensorParseError("string tensors cannot use tensor_content")
        itemsize = np.dtype(np_type).itemsize
        if len(proto.tensor_content) != count * itemsize:
            raise TensorParseError("tensor_content has the wrong size")
        return np.frombuffer(proto.tensor_content, dtype=np_type).reshape(shape).copy()
    values: Any = getattr(proto, field)
    if field in ("scomplex_val", "dcomplex_val"):
        flat = np.asarray(values, dtype=np.float64)
        values = flat[0::2] + 1j * flat[1::2] if flat.size >= 2 else flat[:0]
    elif field == "half_val":
        values = np.asarray(values, dtype=np.uint16).view(np_type)
    if np_type is object:
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    else:
        array = np.asarray(values, dtype=np_type)
    if count == 0:
        return np.zeros(shape, dtype=np_type if np_type is not object else object)
    if array.size == 0:
        fill = b"" if np_type is object else 0
        return np.full(shape, fill, dtype=np_type)
    if array.size < count:
        array = np.concatenate([array, np.repeat(array[-1:], count - array.size)])
    return array[:count].reshape(shape)


# float_val (field 5) and double_val (field 6) are packed fixed-width fields: their wire form is
# a tag, a length and the raw little-endian values, so they can be merged from the array's bytes
# instead of a Python list (about 10x faster for a batch of heatmaps; the message is identical).
_PACKED_FIXED = {types_pb2.DT_FLOAT: (5, "<f4"), types_pb2.DT_DOUBLE: (6, "<f8")}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _merge_packed(proto: tensor_pb2.TensorProto, dtype: int, flat: np.ndarray) -> None:
    field, wire_dtype = _PACKED_FIXED[dtype]
    raw = flat.astype(wire_dtype, copy=False).tobytes()
    proto.MergeFromString(_varint(field << 3 | 2) + _varint(len(raw)) + raw)


def from_numpy(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Encode an output tensor with typed fields, like ``Tensor::AsProtoField``."""
    array = np.asarray(array)
    dtype = dtype_enum_of(array)
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
        ),
    )
    flat = array.ravel()
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif dtype in (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16):
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif dtype in _PACKED_FIXED:
        _merge_packed(proto, dtype, flat)
    elif dtype in (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128):
        pairs = np.stack([flat.real, flat.imag], axis=-1).ravel().tolist()
        getattr(proto, _FIELDS[dtype][1]).extend(pairs)
    else:
        getattr(proto, _FIELDS[dtype][1]).extend(flat.tolist())
    return proto
