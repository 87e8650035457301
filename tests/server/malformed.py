"""Hypothesis strategies for malformed Predict requests and REST bodies, shared by the fuzz tests and
``benchmarks/soak.py``.

Shapes mix small sizes (which the tiny export runs) with sizes beyond any limit
(which must be refused before allocating); nothing in between, so a run
never tries to push gigabytes through the model.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

MODEL = "clf"
SIGNATURES = ["predict", "explain", "predict_bytes", "explain_bytes", "serving_default", "", "nope",
              "__saved_model_init_op"]
ALIASES = ["images", "class_index", "image_bytes", "x"]
DTYPES = [types_pb2.DT_INVALID, types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_UINT8,
          types_pb2.DT_INT8, types_pb2.DT_STRING, types_pb2.DT_INT64, types_pb2.DT_BOOL, types_pb2.DT_HALF,
          types_pb2.DT_BFLOAT16, types_pb2.DT_COMPLEX64, types_pb2.DT_UINT64, types_pb2.DT_QINT8,
          types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT, 99]
SMALL_DIMS = [0, 1, 2, 3, 5, 8, 48]
HUGE_DIMS = [10**10, 2**40, 2**62, 2**63 - 1]
GRPC_ALLOWED = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "OUT_OF_RANGE"}
HTTP_ALLOWED = {200, 400, 404, 413, 429, 501}

dims = st.one_of(st.sampled_from(SMALL_DIMS), st.sampled_from(HUGE_DIMS), st.integers(-3, -1))
shapes = st.one_of(
    st.lists(st.sampled_from(SMALL_DIMS), max_size=4),
    st.lists(dims, max_size=5),
    st.builds(lambda n: [1] * n, st.sampled_from([65, 254, 255, 300])),
)
_numbers = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=20)
_ints = st.lists(st.integers(-(2**31), 2**31 - 1), max_size=20)
contents = st.one_of(
    st.just({}),
    st.builds(lambda v: {"float_val": v}, _numbers),
    st.builds(lambda v: {"int_val": v}, _ints),
    st.builds(lambda v: {"int64_val": v}, st.lists(st.integers(-(2**63), 2**63 - 1), max_size=10)),
    st.builds(lambda v: {"string_val": v}, st.lists(st.binary(max_size=40), max_size=6)),
    st.builds(lambda v: {"half_val": v}, st.lists(st.integers(0, 2**16 - 1), max_size=10)),
    st.builds(lambda v: {"bool_val": v}, st.lists(st.booleans(), max_size=10)),
    st.builds(lambda v: {"scomplex_val": v}, _numbers),
    st.builds(lambda v: {"tensor_content": v}, st.binary(max_size=600)),
)


def tensor(dtype: int, shape: list[int], fields: dict[str, Any], unknown_rank: bool = False) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape], unknown_rank=unknown_rank))
    for name, values in fields.items():
        if name == "tensor_content":
            proto.tensor_content = values
        else:
            getattr(proto, name).extend(values)
    return proto


tensors = st.builds(tensor, st.sampled_from(DTYPES), shapes, contents, st.sampled_from([False] * 9 + [True]))


@st.composite
def predict_requests(draw: Any) -> predict_pb2.PredictRequest:
    """A PredictRequest with any signature, any subset of aliases and any TensorProto per alias."""
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
        name=draw(st.sampled_from([MODEL, MODEL, MODEL, "", "other"])), signature_name=draw(st.sampled_from(SIGNATURES))))
    if draw(st.integers(0, 9)) == 0:
        request.model_spec.version.value = draw(st.sampled_from([0, 1, 2, -1, 2**63 - 1]))
    for alias in draw(st.lists(st.sampled_from(ALIASES), max_size=3, unique=True)):
        request.inputs[alias].CopyFrom(draw(tensors))
    if draw(st.integers(0, 5)) == 0:
        request.output_filter.extend(draw(st.lists(st.sampled_from(["heatmap", "label", "x", "heatmap"]), max_size=3)))
    return request


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=10),
              st.builds(lambda b: {"b64": b}, st.text(max_size=12))),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(ALIASES + ["b64"]), children,
                                                                       max_size=3),
    max_leaves=30,
)
_signature_field = st.one_of(st.sampled_from(SIGNATURES), st.integers(), st.none())


@st.composite
def rest_bodies(draw: Any) -> bytes:
    """A REST predict body: a well-formed envelope with odd contents, raw bytes, or deep nesting."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        depth = draw(st.sampled_from([2, 63, 64, 65, 300, 999, 1000, 5000]))
        return ('{"signature_name": "explain", "inputs": {"images": ' + "[" * depth + "7" + "]" * depth
                + ', "class_index": [-1]}}').encode()
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["signature_name"] = draw(_signature_field)
    key = draw(st.sampled_from(["instances", "inputs", "examples", "both", "none"]))
    for name in (["instances", "inputs"] if key == "both" else [] if key == "none" else [key]):
        doc[name] = draw(json_values)
    text = json.dumps(doc, allow_nan=True)
    if kind == 2 and text:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut]
    return text.encode("utf-8", errors="surrogatepass")
