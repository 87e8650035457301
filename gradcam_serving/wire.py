"""Wire-compatible copies of the TF Serving and SavedModel messages the project reads without TensorFlow.

The thin client speaks TF Serving's gRPC API with them, and :mod:`gradcam_serving.exports` reads
``saved_model.pb`` with them, so knowing what an export holds never costs a TensorFlow import.

Why not import ``tensorflow_serving.apis``? Those modules pull in
``tensorflow.core`` protos and, through the package, TensorFlow itself; the
thin client must import in well under a second and without TensorFlow.

Why build descriptors in Python instead of committing generated ``_pb2``
code? Generated code pins the protobuf runtime it was made with, while a
``FileDescriptorProto`` built here works with any protobuf >= 5.26.

The messages live in the proto package ``gradcam_serving.wire`` so they never
collide with the official ``tensorflow.serving`` ones in the default
descriptor pool when both are imported in one process. Field numbers, types
and map/oneof layouts match the official ``.proto`` files exactly, so the
bytes on the wire are interchangeable; ``tests/client/test_wire.py`` proves it
both ways. Only the subset of fields the client reads or writes is declared;
anything else a server sends is kept as unknown fields.
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

from gradcam_serving.dtypes import DATA_TYPE_NAMES
from gradcam_serving.errors import StatusCode, VersionState

__all__ = [
    "GET_MODEL_METADATA_METHOD",
    "GET_MODEL_STATUS_METHOD",
    "PACKAGE",
    "PREDICT_METHOD",
    "SIGNATURE_DEF_MAP_TYPE_URL",
    "DataType",
    "ErrorCode",
    "GetModelMetadataRequest",
    "GetModelMetadataResponse",
    "GetModelStatusRequest",
    "GetModelStatusResponse",
    "MetaGraphDef",
    "MetaInfoDef",
    "ModelSpec",
    "ModelVersionStatus",
    "PredictRequest",
    "PredictResponse",
    "SavedModel",
    "SignatureDef",
    "SignatureDefMap",
    "StatusProto",
    "TensorInfo",
    "TensorProto",
    "TensorShapeProto",
]

PACKAGE = "gradcam_serving.wire"
_FILE_NAME = "gradcam_serving/wire/tf_serving_subset.proto"

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
GET_MODEL_METADATA_METHOD = "/tensorflow.serving.PredictionService/GetModelMetadata"
GET_MODEL_STATUS_METHOD = "/tensorflow.serving.ModelService/GetModelStatus"

SIGNATURE_DEF_MAP_TYPE_URL = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
"""The ``Any`` type URL TF Serving puts on ``metadata["signature_def"]``."""

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _FDP.TYPE_STRING,
    "bytes": _FDP.TYPE_BYTES,
    "bool": _FDP.TYPE_BOOL,
    "int32": _FDP.TYPE_INT32,
    "int64": _FDP.TYPE_INT64,
    "uint32": _FDP.TYPE_UINT32,
    "uint64": _FDP.TYPE_UINT64,
    "float": _FDP.TYPE_FLOAT,
    "double": _FDP.TYPE_DOUBLE,
}

_DATA_TYPES = DATA_TYPE_NAMES  # tensorflow/core/framework/types.proto, shared with the server

# tensorflow/core/protobuf/error_codes.proto (tensorflow.error.Code) and
# tensorflow_serving/apis/get_model_status.proto (ModelVersionStatus.State): one definition each, in errors.py.
_ERROR_CODES = tuple((code.name, code.value) for code in StatusCode)
_VERSION_STATES = tuple((state.name, state.value) for state in VersionState)


def _type_name(name: str) -> str:
    """Resolve a short type name to a fully qualified one (``.pkg.Name``)."""
    return name if name.startswith(".") else f".{PACKAGE}.{name}"


def _field(
    name: str,
    number: int,
    kind: str,
    *,
    repeated: bool = False,
    enum: bool = False,
    oneof: int | None = None,
) -> descriptor_pb2.FieldDescriptorProto:
    """One field: ``kind`` is a scalar keyword or a (message or enum) type name."""
    field = _FDP(name=name, number=number)
    field.label = _FDP.LABEL_REPEATED if repeated else _FDP.LABEL_OPTIONAL
    if kind in _SCALARS:
        field.type = _SCALARS[kind]
    else:
        field.type = _FDP.TYPE_ENUM if enum else _FDP.TYPE_MESSAGE
        field.type_name = _type_name(kind)
    if oneof is not None:
        field.oneof_index = oneof
    return field


def _enum(name: str, values: tuple[tuple[str, int], ...]) -> descriptor_pb2.EnumDescriptorProto:
    enum = descriptor_pb2.EnumDescriptorProto(name=name)
    for value_name, number in values:
        enum.value.add(name=value_name, number=number)
    return enum


def _message(
    name: str,
    fields: list[descriptor_pb2.FieldDescriptorProto],
    *,
    maps: tuple[tuple[str, int, str], ...] = (),
    oneofs: tuple[str, ...] = (),
) -> descriptor_pb2.DescriptorProto:
    """A message; each ``maps`` item ``(field, number, value type)`` is a map<string, value>."""
    message = descriptor_pb2.DescriptorProto(name=name, field=fields)
    for oneof in oneofs:
        message.oneof_decl.add(name=oneof)
    for field_name, number, value_type in maps:
        entry_name = "".join(part.capitalize() for part in field_name.split("_")) + "Entry"
        entry = message.nested_type.add(name=entry_name)
        entry.field.extend([_field("key", 1, "string"), _field("value", 2, value_type)])
        entry.options.map_entry = True
        message.field.append(_field(field_name, number, f"{name}.{entry_name}", repeated=True))
    return message


def _tensor_messages() -> list[descriptor_pb2.DescriptorProto]:
    """TensorShapeProto and TensorProto from tensorflow/core/framework/."""
    shape = _message(
        "TensorShapeProto",
        [_field("dim", 2, "TensorShapeProto.Dim", repeated=True), _field("unknown_rank", 3, "bool")],
    )
    shape.nested_type.append(
        _message("Dim", [_field("size", 1, "int64"), _field("name", 2, "string")])
    )
    typed_values = [
        ("half_val", 13, "int32"), ("float_val", 5, "float"), ("double_val", 6, "double"),
        ("int_val", 7, "int32"), ("string_val", 8, "bytes"), ("scomplex_val", 9, "float"),
        ("int64_val", 10, "int64"), ("bool_val", 11, "bool"), ("dcomplex_val", 12, "double"),
        ("uint32_val", 16, "uint32"), ("uint64_val", 17, "uint64"),
    ]  # fmt: skip
    tensor = _message(
        "TensorProto",
        [
            _field("dtype", 1, "DataType", enum=True),
            _field("tensor_shape", 2, "TensorShapeProto"),
            _field("version_number", 3, "int32"),
            _field("tensor_content", 4, "bytes"),
            *(_field(n, num, kind, repeated=True) for n, num, kind in typed_values),
            _field("float8_val", 18, "bytes"),
        ],
    )
    return [shape, tensor]


def _signature_messages() -> list[descriptor_pb2.DescriptorProto]:
    """TensorInfo and SignatureDef (tensorflow/core/protobuf/meta_graph.proto)."""
    tensor_info = _message(
        "TensorInfo",
        [
            _field("name", 1, "string", oneof=0),
            _field("dtype", 2, "DataType", enum=True),
            _field("tensor_shape", 3, "TensorShapeProto"),
        ],
        oneofs=("encoding",),
    )
    signature = _message(
        "SignatureDef",
        [_field("method_name", 3, "string")],
        maps=(("inputs", 1, "TensorInfo"), ("outputs", 2, "TensorInfo"), ("defaults", 4, "TensorProto")),
    )
    return [tensor_info, signature]


def _saved_model_messages() -> list[descriptor_pb2.DescriptorProto]:
    """SavedModel, MetaGraphDef and MetaInfoDef (tensorflow/core/protobuf/): what ``saved_model.pb`` says of its
    tag sets and signatures. The graph, functions and checkpoint fields stay unknown fields."""
    meta_info = _message(
        "MetaInfoDef",
        [_field("meta_graph_version", 1, "string"), _field("tags", 4, "string", repeated=True),
         _field("tensorflow_version", 5, "string"), _field("tensorflow_git_version", 6, "string")],
    )
    meta_graph = _message("MetaGraphDef", [_field("meta_info_def", 1, "MetaInfoDef")],
                          maps=(("signature_def", 5, "SignatureDef"),))
    saved_model = _message(
        "SavedModel",
        [_field("saved_model_schema_version", 1, "int64"), _field("meta_graphs", 2, "MetaGraphDef", repeated=True)],
    )
    return [meta_info, meta_graph, saved_model]


def _serving_messages() -> list[descriptor_pb2.DescriptorProto]:
    """The tensorflow_serving/apis/*.proto messages."""
    spec = _field("model_spec", 1, "ModelSpec")
    model_spec = _message(
        "ModelSpec",
        [
            _field("name", 1, "string"),
            _field("version", 2, ".google.protobuf.Int64Value", oneof=0),
            _field("version_label", 4, "string", oneof=0),
            _field("signature_name", 3, "string"),
        ],
        oneofs=("version_choice",),
    )
    version_status = _message(
        "ModelVersionStatus",
        [
            _field("version", 1, "int64"),
            _field("state", 2, "ModelVersionStatus.State", enum=True),
            _field("status", 3, "StatusProto"),
        ],
    )
    version_status.enum_type.append(_enum("State", _VERSION_STATES))
    return [
        model_spec,
        _message("PredictRequest", [spec, _field("output_filter", 3, "string", repeated=True)],
                 maps=(("inputs", 2, "TensorProto"),)),
        _message("PredictResponse", [_field("model_spec", 2, "ModelSpec")],
                 maps=(("outputs", 1, "TensorProto"),)),
        _message("SignatureDefMap", [], maps=(("signature_def", 1, "SignatureDef"),)),
        _message("GetModelMetadataRequest", [spec, _field("metadata_field", 2, "string", repeated=True)]),
        _message("GetModelMetadataResponse", [spec], maps=(("metadata", 2, ".google.protobuf.Any"),)),
        _message("StatusProto", [_field("error_code", 1, "ErrorCode", enum=True),
                                 _field("error_message", 2, "string")]),
        version_status,
        _message("GetModelStatusRequest", [spec]),
        _message("GetModelStatusResponse", [_field("model_version_status", 1, "ModelVersionStatus", repeated=True)]),
    ]  # fmt: skip


def build_file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    """The whole ``.proto`` file, as a descriptor (also handy for ``protoc --decode``)."""
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=_FILE_NAME,
        package=PACKAGE,
        syntax="proto3",
        dependency=[any_pb2.DESCRIPTOR.name, wrappers_pb2.DESCRIPTOR.name],
    )
    file_proto.enum_type.append(_enum("DataType", tuple((n, i) for i, n in enumerate(_DATA_TYPES))))
    file_proto.enum_type.append(_enum("ErrorCode", _ERROR_CODES))
    file_proto.message_type.extend(_tensor_messages() + _signature_messages() + _saved_model_messages() + _serving_messages())
    return file_proto


def _load_file() -> descriptor_pool.FileDescriptor:  # type: ignore[name-defined]
    """Add the file to the default pool once; a repeated import finds it there."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(_FILE_NAME)
    except KeyError:
        return pool.AddSerializedFile(build_file_descriptor_proto().SerializeToString())


_FILE = _load_file()


def _class(name: str) -> type:
    return message_factory.GetMessageClass(_FILE.message_types_by_name[name])


DataType = _FILE.enum_types_by_name["DataType"]
ErrorCode = _FILE.enum_types_by_name["ErrorCode"]

TensorShapeProto = _class("TensorShapeProto")
TensorProto = _class("TensorProto")
TensorInfo = _class("TensorInfo")
SignatureDef = _class("SignatureDef")
SignatureDefMap = _class("SignatureDefMap")
MetaInfoDef = _class("MetaInfoDef")
MetaGraphDef = _class("MetaGraphDef")
SavedModel = _class("SavedModel")
ModelSpec = _class("ModelSpec")
PredictRequest = _class("PredictRequest")
PredictResponse = _class("PredictResponse")
GetModelMetadataRequest = _class("GetModelMetadataRequest")
GetModelMetadataResponse = _class("GetModelMetadataResponse")
StatusProto = _class("StatusProto")
ModelVersionStatus = _class("ModelVersionStatus")
GetModelStatusRequest = _class("GetModelStatusRequest")
GetModelStatusResponse = _class("GetModelStatusResponse")
