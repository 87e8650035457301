"""JSON <-> tensors for the REST API, after TF Serving's ``util/json_tensor.cc``.

Requests are parsed against the signature's ``TensorInfo`` map, so each input
gets the signature's dtype (REST coerces where gRPC would reject a dtype) and
errors carry TF's texts, including the ``JSON Value: <value>`` prefix printed
as rapidjson's pretty writer would (single-line arrays, cut after 256 bytes).
Responses use TF's number formatting: floats in the shortest six-digit form
that round-trips (else full precision), whole numbers with ``.0``, and
``NaN``/``Infinity``; string outputs whose alias ends in ``_bytes`` become
``{"b64": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from tensorflow.core.framework import types_pb2

from gradcam_serving.errors import InvalidArgumentError, UnimplementedError
from gradcam_serving.server._tensors import dtype_name

__all__ = [
    "RequestFormat", "debug_string", "encode_outputs", "format_error", "parse_body", "predict_inputs",
    "signature_name",
]

_DEBUG_LIMIT = 256  # kMaxJsonDebugStringBytes
_NUMBER_TOO_BIG = "Number too big to be stored in double."
_MAX_RANK = 64  # numpy's NPY_MAXDIMS: the most dimensions a tensor fed to the Session can have
_INSTANCE_MAX_RANK = _MAX_RANK - 1  # row requests stack the instances along a new dimension 0
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)
_B64 = "b64"
_BYTES_SUFFIX = "_bytes"
_INT32 = (-(2**31), 2**31 - 1)
# dtype enum -> (numpy dtype, accepts(value)); ints are range-checked like rapidjson's IsInt/IsUint...
_INPUT_TYPES: dict[int, tuple[Any, Any]] = {
    types_pb2.DT_FLOAT: (np.float32, lambda v: _is_number(v)),
    types_pb2.DT_DOUBLE: (np.float64, lambda v: _is_number(v)),
    types_pb2.DT_INT32: (np.int32, lambda v: _is_int(v, *_INT32)),
    types_pb2.DT_INT16: (np.int16, lambda v: _is_int(v, *_INT32)),
    types_pb2.DT_INT8: (np.int8, lambda v: _is_int(v, *_INT32)),
    types_pb2.DT_UINT8: (np.uint8, lambda v: _is_int(v, *_INT32)),
    types_pb2.DT_INT64: (np.int64, lambda v: _is_int(v, -(2**63), 2**63 - 1)),
    types_pb2.DT_UINT32: (np.uint32, lambda v: _is_int(v, 0, 2**32 - 1)),
    types_pb2.DT_UINT64: (np.uint64, lambda v: _is_int(v, 0, 2**64 - 1)),
    types_pb2.DT_BOOL: (np.bool_, lambda v: isinstance(v, bool)),
    types_pb2.DT_STRING: (object, lambda v: isinstance(v, str)),
}


class RequestFormat(enum.Enum):
    """Row (``instances`` -> ``predictions``) or columnar (``inputs`` -> ``outputs``)."""

    ROW = "row"
    COLUMNAR = "columnar"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _type_string(value: Any) -> str:
    """rapidjson's type names, as in ``JsonTypeString``."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    return "String" if isinstance(value, str) else "Number"


# -- error texts ------------------------------------------------------------------------


def _debug_events(value: Any, depth: int, prefix: str) -> Iterator[str]:
    """The writes of rapidjson's pretty writer (4-space indent, single-line arrays), each with its prefix."""
    indent = "    "
    if isinstance(value, dict):
        yield prefix + "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("\n" if index == 0 else ",\n") + indent * (depth + 1) + json.dumps(key, ensure_ascii=False)
            yield from _debug_events(item, depth + 1, ": ")
        yield ("\n" + indent * depth if value else "") + "}"
    elif isinstance(value, list):
        yield prefix + "["
        for index, item in enumerate(value):
            yield from _debug_events(item, depth + 1, ", " if index else "")
        yield "]"
    elif isinstance(value, float) and not math.isfinite(value):
        yield prefix + ("NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity")
    else:
        yield prefix + json.dumps(value, ensure_ascii=False)


def debug_string(value: Any) -> str:
    """``JsonValueToDebugString``: no write starts once 256 bytes are out (``JsonWriterWithLimit``)."""
    out: list[str] = []
    size = 0
    for event in _debug_events(value, 0, ""):
        if size >= _DEBUG_LIMIT:
            break
        out.append(event)
        size += len(event.encode("utf-8", errors="surrogatepass"))
    return "".join(out)


def format_error(doc: Any, text: str) -> InvalidArgumentError:
    """``FormatError``: the offending JSON value, then what is wrong with it."""
    return InvalidArgumentError(f"JSON Value: {debug_string(doc)} {text}")


def _type_error(value: Any, dtype: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"JSON Value: {debug_string(value)} Type: {_type_string(value)} is not of expected type: {dtype_name(dtype)}"
    )


# -- request parsing --------------------------------------------------------------------


def _constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def parse_body(body: bytes) -> dict[str, Any]:
    """``ParseJson``: the body must be one JSON object; NaN/Infinity allowed, trailing bytes ignored.

    Nesting deeper than Python's parser can follow is refused as a parse error
    (400) instead of a RecursionError, and so are lone UTF-16 surrogates, which
    rapidjson refuses too.
    """
    if not body:
        raise InvalidArgumentError("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
        doc, _ = json.JSONDecoder(parse_constant=_constant).raw_decode(text.lstrip())
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from exc
    except json.JSONDecodeError as exc:
        offset = exc.pos + len(text) - len(text.lstrip())
        raise InvalidArgumentError(f"JSON Parse error: {exc.msg} at offset: {offset}") from exc
    except ValueError as exc:  # Python's int-size limit (4300 digits): rapidjson's error for such numbers
        raise InvalidArgumentError(f"JSON Parse error: {_NUMBER_TOO_BIG}") from exc
    except RecursionError as exc:
        raise InvalidArgumentError(
            "JSON Parse error: the document is nested too deeply (a tensor has at most "
            f"{_MAX_RANK} dimensions)") from exc
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(doc):
        raise InvalidArgumentError("JSON Parse error: The surrogate pair in string is invalid.")
    if not isinstance(doc, dict):
        raise format_error(doc, "Is not object")
    return doc


def _has_lone_surrogate(value: Any) -> bool:
    """Walks the (rare) documents that escape a surrogate; iterative, so depth cannot overflow the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def signature_name(doc: Mapping[str, Any]) -> str:
    """``FillSignature``: the optional ``signature_name`` must be a string."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise InvalidArgumentError(
            f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_B64), str)


def _dense_shape(value: Any) -> list[int]:
    """``GetDenseTensorShape``: sizes along the first element of each nesting level."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _scalar(value: Any, dtype: int) -> Any:
    """``AddValueToTensor`` (plus b64 objects for strings) for one leaf value."""
    if dtype not in _INPUT_TYPES:
        raise UnimplementedError(f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_name(dtype)}")
    if isinstance(value, dict):
        if dtype != types_pb2.DT_STRING:
            raise _type_error(value, dtype)
        if not _is_b64(value):
            raise InvalidArgumentError(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
        try:
            return base64.b64decode(value[_B64] + "=" * (-len(value[_B64]) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgumentError("Unable to base64 decode") from exc
    if not _INPUT_TYPES[dtype][1](value):
        raise _type_error(value, dtype)
    return value.encode("utf-8") if isinstance(value, str) else value


def _fill(value: Any, level: int, shape: list[int], dtype: int, out: list[Any]) -> None:
    """``FillTensorProto``: every leaf at depth ``rank``, every list of its level's size."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise InvalidArgumentError(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise InvalidArgumentError(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise InvalidArgumentError(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _array(values: list[Any], shape: list[int], dtype: int) -> np.ndarray:
    try:
        return _typed_array(values, shape, dtype)
    except OverflowError as exc:  # an integer literal beyond a double, which rapidjson refuses while parsing
        raise InvalidArgumentError(f"JSON Parse error: {_NUMBER_TOO_BIG}") from exc


def _typed_array(values: list[Any], shape: list[int], dtype: int) -> np.ndarray:
    np_type = _INPUT_TYPES[dtype][0]
    if np_type is object:
        array = np.empty(len(values), dtype=object)
        array[:] = values
    elif np.issubdtype(np_type, np.integer):
        array = np.array(values, dtype=np.uint64 if np_type == np.uint64 else np.int64).astype(np_type)
    else:
        array = np.array(values, dtype=np_type)
    return array.reshape(shape)


def _too_deep(value: Any, depth: int, batched: bool) -> InvalidArgumentError:
    """TF would accept up to 254 dimensions, but numpy holds 64: past that a 400 naming the limit, not a 500."""
    if batched:
        limit = (f"an instance here has at most {_INSTANCE_MAX_RANK} dimensions (its tensor gains the batch "
                 f"dimension and has at most {_MAX_RANK})")
    else:
        limit = f"a tensor here has at most {_MAX_RANK} dimensions"
    return InvalidArgumentError(f"JSON Value: {debug_string(value)} is nested {depth} lists deep; {limit}")


def _tensor(value: Any, dtype: int, *, batched: bool = False) -> tuple[list[Any], list[int]]:
    """The values and shape of one JSON tensor; ``batched`` for an instance, which gains dimension 0."""
    shape = _dense_shape(value)
    if len(shape) > (_INSTANCE_MAX_RANK if batched else _MAX_RANK):
        raise _too_deep(value, len(shape), batched)
    values: list[Any] = []
    _fill(value, 0, shape, dtype, values)
    return values, shape


def _is_named_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


class _RowBuilder:
    """``AddInstanceItem``: collects one input's instances, checking they all have one shape."""

    def __init__(self, dtypes: Mapping[str, int]) -> None:
        self.dtypes = dtypes
        self.values: dict[str, list[Any]] = {}
        self.shapes: dict[str, list[int]] = {}

    def add(self, name: str, item: Any) -> None:
        if name not in self.dtypes:
            raise InvalidArgumentError(f"JSON object: does not have named input: {name}")
        values, shape = _tensor(item, self.dtypes[name], batched=True)
        if name not in self.shapes:
            self.values[name], self.shapes[name] = values, shape
            return
        expected = math.prod(self.shapes[name])
        if len(values) != expected:
            raise InvalidArgumentError(f"Expecting tensor size: {expected} but got: {len(values)}")
        if shape != self.shapes[name]:
            raise InvalidArgumentError(
                f"Expecting shape [{','.join(map(str, self.shapes[name]))}] but got: [{','.join(map(str, shape))}]"
            )
        self.values[name].extend(values)

    def arrays(self, count: int) -> dict[str, np.ndarray]:
        return {
            name: _array(values, [count, *self.shapes[name]], self.dtypes[name])
            for name, values in self.values.items()
        }


def _from_instances(instances: list[Any], dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInstancesList``: rows are batched along a new dimension 0."""
    if not isinstance(instances[0], dict) and len(dtypes) > 1:
        raise InvalidArgumentError(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    named = _is_named_object(instances[0])
    builder = _RowBuilder(dtypes)
    for index, item in enumerate(instances):
        if named:
            _add_named_instance(builder, index, item)
        elif _is_named_object(item):
            raise InvalidArgumentError(f"Expecting value/list but got object at item {index} of input list")
        else:
            try:
                builder.add(min(dtypes), item)
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(
                    f"Failed to process element: {index} of 'instances' list. Error: {exc.status_string()}"
                ) from exc
    return builder.arrays(len(instances))


def _add_named_instance(builder: _RowBuilder, index: int, item: Any) -> None:
    if not _is_named_object(item):
        raise InvalidArgumentError(f"Expecting object but got list at item {index} of input list")
    for name, value in item.items():
        try:
            builder.add(name, value)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(
                f"Failed to process element: {index} key: {name} of 'instances' list. Error: {exc.status_string()}"
            ) from exc
    if set(item) != set(builder.dtypes):
        raise InvalidArgumentError(
            f"Failed to process element: {index} of 'instances' list. JSON object: {debug_string(item)} keys must "
            f"be equal to: {','.join(sorted(builder.dtypes))}"
        )


def _from_inputs(inputs: Any, dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInputsMap``: one value for a single input, else an object by name (extras ignored)."""
    if not _is_named_object(inputs):
        if len(dtypes) > 1:
            raise InvalidArgumentError(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        name = min(dtypes)
        values, shape = _tensor(inputs, dtypes[name])
        return {name: _array(values, shape, dtypes[name])}
    arrays = {}
    for name in sorted(dtypes):
        if name not in inputs:
            raise InvalidArgumentError(f"Missing named input: {name} in 'inputs' object.")
        values, shape = _tensor(inputs[name], dtypes[name])
        arrays[name] = _array(values, shape, dtypes[name])
    return arrays


def predict_inputs(doc: Mapping[str, Any], dtypes: Mapping[str, int]) -> tuple[dict[str, np.ndarray], RequestFormat]:
    """``FillPredictRequestFromJson`` after the signature lookup: inputs by alias, typed by the signature.

    Args:
        doc: the parsed request object.
        dtypes: the signature's inputs, alias -> ``DataType`` enum.
    """
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise format_error(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise format_error(doc, "Expecting 'instances' to be an list/array")
        if not instances:
            raise format_error(doc, "No values in 'instances' array")
        return _from_instances(instances, dtypes), RequestFormat.ROW
    if has_inputs:
        return _from_inputs(doc["inputs"], dtypes), RequestFormat.COLUMNAR
    raise InvalidArgumentError("Missing 'inputs' or 'instances' key")


# -- response encoding ------------------------------------------------------------------


def _decimal(value: float, dtype: Any) -> str:
    """``WriteDecimal``: six digits when they round-trip in ``dtype``, else max_digits10; ``.0`` for whole numbers."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:.6g}"
    if dtype(text) != dtype(value):
        text = f"{value:.{9 if dtype is np.float32 else 17}g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _leaf_encoder(array: np.ndarray, as_bytes: bool) -> Any:
    if array.dtype.kind == "f":
        np_type = np.float32 if array.dtype.itemsize <= 4 else np.float64
        return lambda v: _decimal(float(v), np_type)
    if array.dtype.kind == "b":
        return lambda v: "true" if v else "false"
    if array.dtype.kind in "iu":
        return lambda v: str(int(v))
    if array.dtype == object or array.dtype.kind in "SU":
        if as_bytes:
            return lambda v: '{"b64": "' + base64.b64encode(_as_bytes(v)).decode("ascii") + '"}'
        return lambda v: json.dumps(_as_bytes(v).decode("utf-8", errors="replace"), ensure_ascii=False)
    raise InvalidArgumentError(f"Failed to write JSON value for tensor type: {array.dtype}")


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _json_values(array: np.ndarray, leaf: Any) -> str:
    """``AddTensorValues``: nested lists, scalars bare (``a[i, ...]`` keeps 0-d arrays, even of objects)."""
    if array.ndim == 0:
        return str(leaf(array.item()))
    return "[" + ", ".join(_json_values(array[i, ...], leaf) for i in range(array.shape[0])) + "]"


def _row_body(outputs: Mapping[str, np.ndarray]) -> str:
    batch = -1
    for name, array in outputs.items():
        if array.ndim == 0:
            raise InvalidArgumentError(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and array.shape[0] != batch:
            raise InvalidArgumentError(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    leaves = {name: _leaf_encoder(array, name.endswith(_BYTES_SUFFIX)) for name, array in outputs.items()}
    rows = []
    for index in range(batch):
        items = {name: _json_values(array[index, ...], leaves[name]) for name, array in outputs.items()}
        rows.append(_object_or_single(items))
    return '{"predictions": [' + ", ".join(rows) + "]}"


def _object_or_single(items: Mapping[str, str]) -> str:
    """With a single output the name is dropped, else an object keyed by output alias."""
    if len(items) == 1:
        return next(iter(items.values()))
    return "{" + ", ".join(f"{json.dumps(name)}: {text}" for name, text in items.items()) + "}"


def encode_outputs(outputs: Mapping[str, np.ndarray], request_format: RequestFormat) -> str:
    """``MakeJsonFromTensors``: ``{"predictions": [...]}`` for row requests, ``{"outputs": ...}`` for columnar."""
    if not outputs:
        raise InvalidArgumentError("Cannot convert empty tensor map to JSON")
    ordered = {name: np.asarray(outputs[name]) for name in sorted(outputs)}
    if request_format is RequestFormat.ROW:
        return _row_body(ordered)
    items = {
        name: _json_values(array, _leaf_encoder(array, name.endswith(_BYTES_SUFFIX)))
        for name, array in ordered.items()
    }
    return '{"outputs": ' + _object_or_single(items) + "}"
