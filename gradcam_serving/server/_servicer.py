"""Thin gRPC servicers on the official tensorflow-serving-api protos.

Each RPC decodes the request, calls :class:`ServingCore`, and encodes the
answer; status mapping lives in ``_status.rpc_method``. RPC names are the
proto's PascalCase names.
"""

from __future__ import annotations

import functools
from typing import Any

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2, get_model_status_pb2, model_management_pb2, model_service_pb2_grpc,
    predict_pb2, prediction_service_pb2_grpc,
)

from gradcam_serving.errors import InvalidArgumentError
from gradcam_serving.server._config import models_from_proto
from gradcam_serving.server._core import SIGNATURE_DEF_FIELD, ModelMetadata, ServingCore
from gradcam_serving.server._manager import ModelRef, VersionStatus
from gradcam_serving.server._status import rpc_method, unimplemented
from gradcam_serving.server._tensors import from_numpy, to_numpy

__all__ = ["ModelServicer", "PredictionServicer", "metadata_response", "model_ref", "status_response"]


def model_ref(request: Any) -> ModelRef | None:
    """The request's ``ModelSpec`` as a :class:`ModelRef`; None when it is missing."""
    if not request.HasField("model_spec"):
        return None
    spec = request.model_spec
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return ModelRef(spec.name, version=spec.version.value)
    if choice == "version_label":
        return ModelRef(spec.name, label=spec.version_label)
    return ModelRef(spec.name)


def timeout_ms(context: grpc.ServicerContext) -> int:
    """The call's remaining deadline as ``RunOptions.timeout_in_ms`` (0 = none)."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 2**31 / 1000:
        return 0
    return max(1, int(remaining * 1000))


def metadata_response(metadata: ModelMetadata) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadataResponse as TF builds it; REST prints the same message as JSON."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in metadata.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = metadata.model_name
    response.model_spec.version.value = metadata.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response


def status_response(rows: list[VersionStatus]) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatusResponse; like ``get_model_status_impl.cc`` every version carries a status (OK too)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for row in rows:
        status = response.model_version_status.add(version=row.version, state=int(row.state))
        status.status.SetInParent()
        if row.error is not None:
            status.status.error_code = int(row.error.code)
            status.status.error_message = row.error.message
    return response


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService``."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core
        # No tensor may decode to more bytes than the largest request the server accepts: a declared
        # shape with little or no content is refused before anything is allocated.
        self._decode = functools.partial(to_numpy, max_bytes=core.options.max_receive_message_length)

    @rpc_method("Predict")
    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
        result = self.core.predict(
            model_ref(request), signature_name=request.model_spec.signature_name, inputs=request.inputs,
            decode=self._decode, output_filter=list(request.output_filter), timeout_ms=timeout_ms(context),
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = result.model_name
        response.model_spec.signature_name = result.signature_name
        response.model_spec.version.value = result.version
        for alias, value in result.outputs.items():
            response.outputs[alias].CopyFrom(from_numpy(value))
        return response

    @rpc_method("GetModelMetadata")
    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return metadata_response(self.core.metadata(model_ref(request), list(request.metadata_field)))

    @rpc_method("Classify")
    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        raise unimplemented("Classify")

    @rpc_method("Regress")
    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        raise unimplemented("Regress")

    @rpc_method("MultiInference")
    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        raise unimplemented("MultiInference")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService``."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    @rpc_method("GetModelStatus")
    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return status_response(self.core.status(model_ref(request)))

    @rpc_method("HandleReloadConfigRequest")
    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        if request.config.WhichOneof("config") != "model_config_list":
            raise InvalidArgumentError(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported"
            )
        self.core.reload_config(models_from_proto(request.config.model_config_list))
        return model_management_pb2.ReloadConfigResponse()
