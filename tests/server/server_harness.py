"""Start the server in-process on an ephemeral loopback port and talk to it
with the official tensorflow-serving-api stubs."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2, get_model_status_pb2, model_pb2, model_service_pb2_grpc, predict_pb2,
    prediction_service_pb2_grpc,
)

from gradcam_serving.server import ModelConfig, ServerOptions, create_server

RPC_TIMEOUT = 20.0


@dataclasses.dataclass
class Harness:
    server: object
    port: int
    channel: grpc.Channel
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub
    model_stub: model_service_pb2_grpc.ModelServiceStub

    def predict(self, request: predict_pb2.PredictRequest, timeout: float = RPC_TIMEOUT) -> predict_pb2.PredictResponse:
        return self.predict_stub.Predict(request, timeout)

    def status(self, name: str, version: int | None = None) -> get_model_status_pb2.GetModelStatusResponse:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=name))
        if version is not None:
            request.model_spec.version.value = version
        return self.model_stub.GetModelStatus(request, RPC_TIMEOUT)

    def states(self, name: str) -> dict[int, int]:
        return {s.version: s.state for s in self.status(name).model_version_status}

    def metadata(self, name: str, fields: tuple[str, ...] = ("signature_def",)):
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name=name), metadata_field=list(fields))
        return self.predict_stub.GetModelMetadata(request, RPC_TIMEOUT)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(1)


def start(models: tuple[ModelConfig, ...], **options: object) -> Harness:
    """Create, start and connect; the caller must ``close()`` the harness."""
    options.setdefault("file_system_poll_wait_seconds", 0.2)
    options.setdefault("max_num_load_retries", 0)
    options.setdefault("grpc_max_threads", 16)
    server, port = create_server(ServerOptions(models=models, port=0, host="127.0.0.1", **options))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
    return Harness(server, port, channel, prediction_service_pb2_grpc.PredictionServiceStub(channel),
                   model_service_pb2_grpc.ModelServiceStub(channel))


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition`` until true; fail loudly on timeout."""
    event = threading.Event()
    deadline = timeout
    step = 0.05
    while deadline > 0:
        if condition():
            return
        event.wait(step)
        deadline -= step
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
