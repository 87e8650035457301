"""The one table of TensorFlow dtypes the client and the server convert, without TensorFlow.

Each ``DataType`` (``tensorflow/core/framework/types.proto``) is described once:
its enum number, its two names and how its values travel in a ``TensorProto``.

* :attr:`DType.name` is ``tf.DType.name`` (``float32``): what users read, e.g.
  in the client's model metadata, and what numpy calls it.
* :attr:`DType.type_string` is TensorFlow's C++ ``DataTypeString`` (``float``):
  TensorFlow's own error texts use it, and TF Serving echoes them, e.g.
  ``Expects arg[0] to be float but uint8 is provided``; the local server
  copies those texts.

Both converters look names up here, so a dtype is never spelled two ways for
one purpose. A test checks every row against TensorFlow's ``types_pb2`` and
``tf.dtypes``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATA_TYPE_NAMES", "DTYPES", "DType", "by_enum", "dtype_name", "type_string"]

DATA_TYPE_NAMES: tuple[str, ...] = tuple(
    (
        "DT_INVALID DT_FLOAT DT_DOUBLE DT_INT32 DT_UINT8 DT_INT16 DT_INT8 DT_STRING DT_COMPLEX64 "
        "DT_INT64 DT_BOOL DT_QINT8 DT_QUINT8 DT_QINT32 DT_BFLOAT16 DT_QINT16 DT_QUINT16 DT_UINT16 "
        "DT_COMPLEX128 DT_HALF DT_RESOURCE DT_VARIANT DT_UINT32 DT_UINT64 DT_FLOAT8_E5M2 "
        "DT_FLOAT8_E4M3FN DT_FLOAT8_E4M3FNUZ DT_FLOAT8_E4M3B11FNUZ DT_FLOAT8_E5M2FNUZ DT_INT4 "
        "DT_UINT4 DT_INT2 DT_UINT2 DT_FLOAT4_E2M1FN"
    ).split()
)
"""``DataType`` names by number (the non-reference values of types.proto)."""


@dataclass(frozen=True)
class DType:
    """One ``DataType``: its enum number, names, numpy type and typed ``TensorProto`` field.

    Attributes:
        enum: the ``DataType`` number (``DT_FLOAT`` is 1).
        name: ``tf.DType.name``, e.g. ``"float32"``.
        type_string: TensorFlow's ``DataTypeString``, e.g. ``"float"``.
        numpy: little-endian numpy type code, ``None`` when numpy has none
            (strings are object arrays; bfloat16 needs ``ml_dtypes``).
        field: the ``TensorProto`` field holding typed values.
    """

    enum: int
    name: str
    type_string: str
    numpy: str | None
    field: str


DTYPES: tuple[DType, ...] = (
    DType(1, "float32", "float", "<f4", "float_val"),
    DType(2, "float64", "double", "<f8", "double_val"),
    DType(3, "int32", "int32", "<i4", "int_val"),
    DType(4, "uint8", "uint8", "|u1", "int_val"),
    DType(5, "int16", "int16", "<i2", "int_val"),
    DType(6, "int8", "int8", "|i1", "int_val"),
    DType(7, "string", "string", None, "string_val"),
    DType(8, "complex64", "complex64", "<c8", "scomplex_val"),
    DType(9, "int64", "int64", "<i8", "int64_val"),
    DType(10, "bool", "bool", "|b1", "bool_val"),
    DType(14, "bfloat16", "bfloat16", None, "half_val"),
    DType(17, "uint16", "uint16", "<u2", "int_val"),
    DType(18, "complex128", "complex128", "<c16", "dcomplex_val"),
    DType(19, "float16", "half", "<f2", "half_val"),
    DType(22, "uint32", "uint32", "<u4", "uint32_val"),
    DType(23, "uint64", "uint64", "<u8", "uint64_val"),
)

_BY_ENUM = {dtype.enum: dtype for dtype in DTYPES}


def by_enum(enum: int) -> DType | None:
    """The row of a ``DataType`` number, or ``None`` for one neither side converts."""
    return _BY_ENUM.get(enum)


def dtype_name(enum: int) -> str:
    """``tf.DType.name`` of a ``DataType`` number (``1`` -> ``"float32"``, ``20`` -> ``"resource"``)."""
    dtype = _BY_ENUM.get(enum)
    return dtype.name if dtype else _other_name(enum)


def type_string(enum: int) -> str:
    """TensorFlow's ``DataTypeString`` (``1`` -> ``"float"``), as its error texts spell it."""
    dtype = _BY_ENUM.get(enum)
    return dtype.type_string if dtype else _other_name(enum)


def _other_name(enum: int) -> str:
    """Types neither side converts are spelled alike by both namings (``qint8``, ``variant``)."""
    if 0 <= enum < len(DATA_TYPE_NAMES):
        return DATA_TYPE_NAMES[enum].removeprefix("DT_").lower()
    return f"unknown({enum})"
