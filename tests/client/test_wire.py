"""The client's own messages are wire-compatible with tensorflow-serving-api, both ways.

Each case builds the same content with both APIs, then checks that what one
side serializes parses to an equal message on the other side (official
``==`` and byte-identical deterministic re-serialization), plus a structural
check of every declared field against the official descriptors.
"""

from __future__ import annotations

import pytest
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
    status_pb2,
)

from gradcam_serving import wire as _wire
from gradcam_serving.errors import StatusCode, VersionState

PAIRS = [
    pytest.param(_wire.TensorShapeProto, tensor_shape_pb2.TensorShapeProto, id="TensorShapeProto"),
    pytest.param(_wire.TensorProto, tensor_pb2.TensorProto, id="TensorProto"),
    pytest.param(_wire.TensorInfo, meta_graph_pb2.TensorInfo, id="TensorInfo"),
    pytest.param(_wire.SignatureDef, meta_graph_pb2.SignatureDef, id="SignatureDef"),
    pytest.param(_wire.SignatureDefMap, get_model_metadata_pb2.SignatureDefMap, id="SignatureDefMap"),
    pytest.param(_wire.ModelSpec, model_pb2.ModelSpec, id="ModelSpec"),
    pytest.param(_wire.PredictRequest, predict_pb2.PredictRequest, id="PredictRequest"),
    pytest.param(_wire.PredictResponse, predict_pb2.PredictResponse, id="PredictResponse"),
    pytest.param(_wire.GetModelMetadataRequest, get_model_metadata_pb2.GetModelMetadataRequest, id="MetadataRequest"),
    pytest.param(_wire.GetModelMetadataResponse, get_model_metadata_pb2.GetModelMetadataResponse, id="MetadataResponse"),
    pytest.param(_wire.GetModelStatusRequest, get_model_status_pb2.GetModelStatusRequest, id="StatusRequest"),
    pytest.param(_wire.GetModelStatusResponse, get_model_status_pb2.GetModelStatusResponse, id="StatusResponse"),
    pytest.param(_wire.ModelVersionStatus, get_model_status_pb2.ModelVersionStatus, id="ModelVersionStatus"),
    pytest.param(_wire.StatusProto, status_pb2.StatusProto, id="StatusProto"),
]


def assert_same_both_ways(mine, official) -> None:
    """``mine`` and ``official`` hold the same content; prove it through the wire both ways."""
    from_mine = type(official).FromString(mine.SerializeToString())
    from_official = type(mine).FromString(official.SerializeToString())
    assert from_mine == official
    assert from_official == mine
    assert from_mine.SerializeToString(deterministic=True) == official.SerializeToString(deterministic=True)
    assert from_official.SerializeToString(deterministic=True) == mine.SerializeToString(deterministic=True)


def _structure(descriptor, seen=None) -> dict:
    """Field name → (number, type, repeated, oneof, nested structure) for comparison."""
    seen = set() if seen is None else seen
    if descriptor.name in seen:
        return {"<recursive>": descriptor.name}
    seen = seen | {descriptor.name}
    return {
        field.name: (
            field.number,
            field.type,
            field.is_repeated,
            field.containing_oneof.name if field.containing_oneof else None,
            _enum_values(field.enum_type) if field.enum_type else None,
        )
        for field in descriptor.fields
    }


def _enum_values(enum) -> dict[str, int]:
    return {value.name: value.number for value in enum.values}


@pytest.mark.parametrize(("mine", "official"), PAIRS)
def test_every_declared_field_matches_the_official_descriptor(mine, official) -> None:
    ours, theirs = _structure(mine.DESCRIPTOR), _structure(official.DESCRIPTOR)
    assert ours, "no fields declared"
    for name, (number, kind, repeated, oneof, enum) in ours.items():
        their = theirs[name]
        assert (number, kind, repeated, oneof) == their[:4], name
        if enum is not None:  # our enums may omit values, never renumber them
            assert enum.items() <= their[4].items(), name


@pytest.mark.parametrize(("mine", "official"), PAIRS)
def test_map_entries_match_the_official_ones(mine, official) -> None:
    for field in mine.DESCRIPTOR.fields:
        their = official.DESCRIPTOR.fields_by_name[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            assert their.message_type.GetOptions().map_entry
            assert field.message_type.name == their.message_type.name
            assert _structure(field.message_type).keys() == _structure(their.message_type).keys()


def test_messages_live_in_their_own_package_next_to_the_official_ones() -> None:
    assert _wire.PredictRequest.DESCRIPTOR.full_name == "gradcam_serving.wire.PredictRequest"
    assert predict_pb2.PredictRequest.DESCRIPTOR.full_name == "tensorflow.serving.PredictRequest"


def test_method_paths_match_the_official_services() -> None:
    prediction = prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]
    model = model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]
    assert _wire.PREDICT_METHOD == f"/{prediction.full_name}/{prediction.methods_by_name['Predict'].name}"
    assert _wire.GET_MODEL_METADATA_METHOD == f"/{prediction.full_name}/GetModelMetadata"
    assert _wire.GET_MODEL_STATUS_METHOD == f"/{model.full_name}/{model.methods_by_name['GetModelStatus'].name}"
    assert prediction.methods_by_name["GetModelMetadata"].input_type.name == "GetModelMetadataRequest"


def test_enums_match_the_official_ones() -> None:
    assert _enum_values(_wire.DataType) == {
        name: number for name, number in _enum_values(types_pb2.DataType.DESCRIPTOR).items() if number < 100
    }
    official_codes = _enum_values(error_codes_pb2.Code.DESCRIPTOR)
    assert _enum_values(_wire.ErrorCode).items() <= official_codes.items()
    assert len(_enum_values(_wire.ErrorCode)) == len(official_codes) - 1  # all but DO_NOT_USE_*


def test_status_enums_have_one_definition_that_wire_and_tf_serving_share() -> None:
    """The proto enums are built from errors.StatusCode / VersionState, whose numbers are TF Serving's."""
    codes = {code.name: code.value for code in StatusCode}
    states = {state.name: state.value for state in VersionState}
    assert _enum_values(_wire.ErrorCode) == codes
    assert _enum_values(_wire.ModelVersionStatus.DESCRIPTOR.enum_types_by_name["State"]) == states
    official_codes = _enum_values(error_codes_pb2.Code.DESCRIPTOR)
    assert codes == {name: number for name, number in official_codes.items() if not name.startswith("DO_NOT_USE")}
    assert states == _enum_values(get_model_status_pb2.ModelVersionStatus.State.DESCRIPTOR)


def _tensor_pair(**values) -> tuple:
    mine, official = _wire.TensorProto(**values), tensor_pb2.TensorProto(**values)
    for message in (mine, official):
        message.tensor_shape.dim.add(size=2, name="batch")
        message.tensor_shape.dim.add(size=-1)
    return mine, official


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"dtype": types_pb2.DT_UINT8, "tensor_content": bytes(range(6))}, id="tensor_content"),
        pytest.param({"dtype": types_pb2.DT_FLOAT, "float_val": [0.5, -1.25]}, id="float_val"),
        pytest.param({"dtype": types_pb2.DT_DOUBLE, "double_val": [1e300, 2.0]}, id="double_val"),
        pytest.param({"dtype": types_pb2.DT_INT32, "int_val": [-1, 2**31 - 1]}, id="int_val"),
        pytest.param({"dtype": types_pb2.DT_INT64, "int64_val": [-(2**63), 5]}, id="int64_val"),
        pytest.param({"dtype": types_pb2.DT_STRING, "string_val": [b"ros\xc3\xa9", b""]}, id="string_val"),
        pytest.param({"dtype": types_pb2.DT_BOOL, "bool_val": [True, False]}, id="bool_val"),
        pytest.param({"dtype": types_pb2.DT_HALF, "half_val": [15360, 0]}, id="half_val"),
        pytest.param({"dtype": types_pb2.DT_COMPLEX64, "scomplex_val": [1.0, 2.0]}, id="scomplex_val"),
        pytest.param({"dtype": types_pb2.DT_COMPLEX128, "dcomplex_val": [1.0, 2.0]}, id="dcomplex_val"),
        pytest.param({"dtype": types_pb2.DT_UINT32, "uint32_val": [2**32 - 1]}, id="uint32_val"),
        pytest.param({"dtype": types_pb2.DT_UINT64, "uint64_val": [2**64 - 1]}, id="uint64_val"),
        pytest.param({"dtype": types_pb2.DT_FLOAT8_E5M2, "float8_val": b"\x01\x02"}, id="float8_val"),
        pytest.param({"dtype": types_pb2.DT_FLOAT, "version_number": 3}, id="version_number"),
    ],
)
def test_tensor_proto_fields_round_trip(values) -> None:
    assert_same_both_ways(*_tensor_pair(**values))


def test_unknown_rank_shape_round_trips() -> None:
    mine, official = _wire.TensorShapeProto(unknown_rank=True), tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    assert_same_both_ways(mine, official)


def _fill_predict_request(request, spec_version) -> None:
    request.model_spec.name = "flowers"
    request.model_spec.signature_name = "explain"
    spec_version(request.model_spec)
    request.inputs["images"].dtype = types_pb2.DT_UINT8
    request.inputs["images"].tensor_content = b"\x00\x7f\xff"
    request.inputs["images"].tensor_shape.dim.add(size=1)
    request.inputs["class_index"].dtype = types_pb2.DT_INT32
    request.inputs["class_index"].int_val.append(-1)
    request.output_filter.extend(["heatmap", "label"])


@pytest.mark.parametrize(
    "spec_version",
    [
        pytest.param(lambda spec: spec.version.CopyFrom(wrappers_pb2.Int64Value(value=42)), id="version"),
        pytest.param(lambda spec: setattr(spec, "version_label", "stable"), id="version_label"),
        pytest.param(lambda spec: None, id="latest"),
    ],
)
def test_predict_request_round_trips_with_each_version_choice(spec_version) -> None:
    mine, official = _wire.PredictRequest(), predict_pb2.PredictRequest()
    _fill_predict_request(mine, spec_version)
    _fill_predict_request(official, spec_version)
    assert_same_both_ways(mine, official)
    parsed = _wire.PredictRequest.FromString(official.SerializeToString())
    assert parsed.model_spec.WhichOneof("version_choice") == official.model_spec.WhichOneof("version_choice")
    assert sorted(parsed.inputs) == ["class_index", "images"]


def test_version_oneof_set_on_our_side_reads_as_the_official_oneof() -> None:
    mine = _wire.ModelSpec(name="m", version_label="canary")
    mine.version.value = 3  # setting the other member clears the label, as in the official oneof
    official = model_pb2.ModelSpec.FromString(mine.SerializeToString())
    assert official.WhichOneof("version_choice") == "version"
    assert official.version.value == 3
    assert official.version_label == ""


def _fill_predict_response(response) -> None:
    response.model_spec.name = "flowers"
    response.model_spec.signature_name = "predict"
    response.model_spec.version.value = 7
    response.outputs["score"].dtype = types_pb2.DT_FLOAT
    response.outputs["score"].float_val.extend([0.25, 0.75])
    response.outputs["label"].dtype = types_pb2.DT_STRING
    response.outputs["label"].string_val.extend([b"daisy", b"tulip"])
    response.outputs["heatmap"].tensor_content = b"\x00" * 8


def test_predict_response_round_trips() -> None:
    mine, official = _wire.PredictResponse(), predict_pb2.PredictResponse()
    _fill_predict_response(mine)
    _fill_predict_response(official)
    assert_same_both_ways(mine, official)


def _fill_signature_def_map(signature_map, tensor_info_type) -> None:
    explain = signature_map.signature_def["explain"]
    explain.method_name = "tensorflow/serving/predict"
    explain.inputs["images"].CopyFrom(tensor_info_type(name="explain_images:0", dtype=types_pb2.DT_UINT8))
    explain.inputs["images"].tensor_shape.dim.add(size=-1)
    explain.outputs["heatmap"].CopyFrom(tensor_info_type(name="Identity:0", dtype=types_pb2.DT_FLOAT))
    explain.defaults["class_index"].dtype = types_pb2.DT_INT32
    signature_map.signature_def["predict"].method_name = "tensorflow/serving/predict"


def test_signature_def_map_round_trips() -> None:
    mine, official = _wire.SignatureDefMap(), get_model_metadata_pb2.SignatureDefMap()
    _fill_signature_def_map(mine, _wire.TensorInfo)
    _fill_signature_def_map(official, meta_graph_pb2.TensorInfo)
    assert_same_both_ways(mine, official)


def test_metadata_response_any_keeps_the_official_type_url_both_ways() -> None:
    official_map = get_model_metadata_pb2.SignatureDefMap()
    _fill_signature_def_map(official_map, meta_graph_pb2.TensorInfo)
    official = get_model_metadata_pb2.GetModelMetadataResponse()
    official.model_spec.name = "flowers"
    official.model_spec.version.value = 7
    official.metadata["signature_def"].Pack(official_map, deterministic=True)  # map order inside Any bytes

    mine = _wire.GetModelMetadataResponse.FromString(official.SerializeToString())
    packed = mine.metadata["signature_def"]
    assert packed.type_url == _wire.SIGNATURE_DEF_MAP_TYPE_URL
    ours = _wire.SignatureDefMap.FromString(packed.value)
    assert ours.signature_def["explain"].inputs["images"].name == "explain_images:0"

    built = _wire.GetModelMetadataResponse()
    built.model_spec.name = "flowers"
    built.model_spec.version.value = 7
    built.metadata["signature_def"].type_url = _wire.SIGNATURE_DEF_MAP_TYPE_URL
    built.metadata["signature_def"].value = ours.SerializeToString(deterministic=True)
    back = get_model_metadata_pb2.GetModelMetadataResponse.FromString(built.SerializeToString())
    unpacked = get_model_metadata_pb2.SignatureDefMap()
    assert back.metadata["signature_def"].Unpack(unpacked)
    assert unpacked == official_map
    assert_same_both_ways(built, official)


def test_metadata_request_round_trips() -> None:
    mine = _wire.GetModelMetadataRequest(metadata_field=["signature_def"])
    official = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    for message in (mine, official):
        message.model_spec.name = "flowers"
        message.model_spec.version_label = "stable"
    assert_same_both_ways(mine, official)


def test_status_request_and_response_round_trip() -> None:
    requests = _wire.GetModelStatusRequest(), get_model_status_pb2.GetModelStatusRequest()
    responses = _wire.GetModelStatusResponse(), get_model_status_pb2.GetModelStatusResponse()
    for request in requests:
        request.model_spec.name = "flowers"
        request.model_spec.version.value = 2
    for response in responses:
        response.model_version_status.add(version=2, state=30)
        failed = response.model_version_status.add(version=1, state=50)
        failed.status.error_code = error_codes_pb2.NOT_FOUND
        failed.status.error_message = "Could not find version 1"
    assert_same_both_ways(*requests)
    assert_same_both_ways(*responses)
    official = get_model_status_pb2.GetModelStatusResponse.FromString(responses[0].SerializeToString())
    assert official.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert official.model_version_status[1].status.error_code == error_codes_pb2.NOT_FOUND
