"""Convert between numpy arrays and ``TensorProto`` without TensorFlow.

Requests are always sent as ``tensor_content`` (little-endian raw bytes): it is
the compact encoding TF Serving parses fastest. Responses may use either
``tensor_content`` or the typed ``*_val`` fields (TF Serving's default), so
both are decoded, with TensorFlow's rule for short typed fields: the last
value is repeated to fill the shape, and no values at all mean zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcam_serving import dtypes as _dtypes
from gradcam_serving import wire as _wire

__all__ = ["array_to_tensor", "dtype_name", "shape_from_proto", "strings_to_tensor", "tensor_to_array"]

# One table for the client and the server (gradcam_serving.dtypes); numpy has no string or bfloat16.
_NUMPY_BY_DT: dict[int, np.dtype] = {dtype.enum: np.dtype(dtype.numpy) for dtype in _dtypes.DTYPES if dtype.numpy}
_DT_BY_NUMPY: dict[np.dtype, int] = {dtype.newbyteorder("="): dt for dt, dtype in _NUMPY_BY_DT.items()}
DT_STRING = _wire.DataType.values_by_name["DT_STRING"].number
_TYPED_FIELD: dict[int, str] = {dtype.enum: dtype.field for dtype in _dtypes.DTYPES}
dtype_name = _dtypes.dtype_name
"""``DT_UINT8`` (as a number) -> ``"uint8"``, the name ``tf.DType`` uses (``"unknown(N)"`` otherwise)."""


def shape_from_proto(shape: Any) -> tuple[int | None, ...] | None:
    """``TensorShapeProto`` → tuple with ``None`` for unknown dims; ``None`` if rank unknown."""
    if shape.unknown_rank:
        return None
    return tuple(None if dim.size < 0 else int(dim.size) for dim in shape.dim)


def array_to_tensor(array: np.ndarray) -> Any:
    """Encode a numeric numpy array as a ``TensorProto`` using ``tensor_content``.

    Raises:
        TypeError: the dtype has no TensorFlow counterpart here (e.g. object).
    """
    array = np.asarray(array)
    dt = _DT_BY_NUMPY.get(array.dtype.newbyteorder("="))
    if dt is None:
        raise TypeError(f"cannot send a numpy array of dtype {array.dtype} as a tensor")
    tensor = _wire.TensorProto(dtype=dt)
    tensor.tensor_shape.dim.extend(_wire.TensorShapeProto.Dim(size=n) for n in array.shape)
    tensor.tensor_content = np.ascontiguousarray(array, dtype=_NUMPY_BY_DT[dt]).tobytes()
    return tensor


def strings_to_tensor(values: list[bytes]) -> Any:
    """Encode byte strings as a string ``TensorProto`` of shape ``[len(values)]``."""
    tensor = _wire.TensorProto(dtype=DT_STRING)
    tensor.tensor_shape.dim.add(size=len(values))
    tensor.string_val.extend(values)
    return tensor


def tensor_to_array(tensor: Any) -> np.ndarray:
    """Decode a ``TensorProto`` (either encoding) into a numpy array.

    Strings come back as an object array of ``bytes``.

    Raises:
        ValueError: unknown dtype, unknown rank, or a ``tensor_content`` whose
            size does not match the shape.
    """
    shape = shape_from_proto(tensor.tensor_shape)
    if shape is None or None in shape:
        raise ValueError(f"cannot decode a tensor of unknown shape {shape}")
    if tensor.dtype == DT_STRING:
        return _fill(np.array(list(tensor.string_val), dtype=object), shape)
    if tensor.dtype not in _NUMPY_BY_DT:
        raise ValueError(f"cannot decode a tensor of dtype {dtype_name(tensor.dtype)}")
    dtype = _NUMPY_BY_DT[tensor.dtype]
    if tensor.tensor_content:
        return _from_content(tensor.tensor_content, dtype, shape)
    return _fill(_typed_values(tensor, dtype), shape).astype(dtype.newbyteorder("="))


def _from_content(content: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    expected = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(content) != expected:
        raise ValueError(
            f"tensor_content has {len(content)} bytes but shape {list(shape)} of "
            f"{dtype.name} needs {expected}"
        )
    return np.frombuffer(content, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _typed_values(tensor: Any, dtype: np.dtype) -> np.ndarray:
    field = _TYPED_FIELD[tensor.dtype]
    values = getattr(tensor, field)
    if field == "half_val":  # float16 bit patterns stored in int32
        return np.array(values, dtype=np.uint16).view(np.float16)
    if dtype.kind == "c":  # interleaved real, imaginary
        pairs = np.array(values, dtype=np.float64).reshape(-1, 2)
        return pairs[:, 0] + 1j * pairs[:, 1]
    return np.array(values, dtype=dtype.newbyteorder("="))


def _fill(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """TensorFlow's rule for typed fields: repeat the last value; none means zeros."""
    size = int(np.prod(shape, dtype=np.int64))
    if values.size == 0:
        filler = b"" if values.dtype == object else 0
        return np.full(shape, filler, dtype=values.dtype)
    if values.size < size:
        values = np.concatenate([values, np.repeat(values[-1:], size - values.size)])
    return values[:size].reshape(shape)
