"""A tiny fake TF Serving for the client tests, served over real gRPC.

The servicers are registered under the official service names with the
official generated base classes and answer with the official messages, so
the client is tested against exactly what TF Serving puts on the wire.

The fake "model" is hand-checkable: every image gets probabilities
``[0.1, 0.7, 0.2]`` (labels ``daisy``, ``rosé``, ``tulip``; predicted class 1)
and its heatmap is the image's red channel / 255, at the request's size.

The ``*_bytes`` signatures decode each file with Pillow, resize it (nearest)
to the fake model size ``MODEL_SIZE`` for the heatmap, and answer as
``overlay_png`` the decoded image re-encoded as PNG at its own size. Files
Pillow cannot read get INVALID_ARGUMENT; ``Backend.old_export`` makes them
answer like an export made before those signatures existed.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import io  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from tensorflow.core.framework import tensor_pb2, types_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from gradcam_serving.client import Retry  # noqa: E402

PROBABILITIES = np.array([0.1, 0.7, 0.2], dtype=np.float32)
LABELS = ("daisy", "rosé", "tulip")
PREDICTED = 1
VERSION = 7
MODEL = "flowers"
MODEL_SIZE = (4, 5)  # (height, width) the fake resizes encoded images to
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
LOADING = get_model_status_pb2.ModelVersionStatus.LOADING


def official_tensor(array: np.ndarray, *, content: bool) -> tensor_pb2.TensorProto:
    """Encode like TF Serving: typed ``*_val`` fields by default, raw bytes on request."""
    array = np.asarray(array)
    dtype = {np.float32: types_pb2.DT_FLOAT, np.int32: types_pb2.DT_INT32, np.object_: types_pb2.DT_STRING}
    tensor = tensor_pb2.TensorProto(dtype=dtype[array.dtype.type])
    tensor.tensor_shape.dim.extend(tensor.tensor_shape.Dim(size=n) for n in array.shape)
    if array.dtype == object:
        tensor.string_val.extend(array.ravel())
    elif content:
        tensor.tensor_content = array.tobytes()
    elif array.dtype == np.float32:
        tensor.float_val.extend(array.ravel().tolist())
    else:
        tensor.int_val.extend(array.ravel().tolist())
    return tensor


def request_array(tensor: tensor_pb2.TensorProto, dtype: type) -> np.ndarray:
    """What the fake server reads from a request (the client sends ``tensor_content``)."""
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape)


@dataclass
class Backend:
    """What the fake server will answer; each test sets the parts it needs."""

    failures: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)
    delay: float = 0.0
    tensor_content: bool = False
    drop_output: str | None = None
    status_answers: list[Any] = field(default_factory=lambda: [[(VERSION, AVAILABLE)]])
    status_unimplemented: bool = False
    old_export: bool = False
    overlay_alias: str = "overlay_png_bytes"  # contract 2; "overlay_png" answers as exports of contract 1 do
    calls: list[tuple[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each call, for retry timing
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        """Record the call, then fail or stall as programmed."""
        with self.lock:
            self.calls.append((method, request))
            self.arrivals.append(time.monotonic())
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            context.abort(*failure)
        if self.delay:
            time.sleep(self.delay)

    def reset(self) -> None:
        """Forget calls and programmed answers (the servicers keep this object)."""
        self.__dict__.update(Backend().__dict__)

    def next_status(self) -> Any:
        """Answers are used in order; the last one repeats."""
        with self.lock:
            return self.status_answers.pop(0) if len(self.status_answers) > 1 else self.status_answers[0]

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


def missing_signature(name: str) -> str:
    """TF Serving's answer for a signature the export does not have (FAILED_PRECONDITION)."""
    return f'Serving signature key "{name}" not found.'


def decode_files(values: list[bytes], context: grpc.ServicerContext) -> list[np.ndarray]:
    from PIL import Image

    images = []
    for index, data in enumerate(values):
        try:
            with Image.open(io.BytesIO(data)) as image:
                images.append(np.asarray(image.convert("RGB")))
        except OSError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"image {index} is not a JPEG or PNG file: {exc}")
    return images


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def encoded_inputs(
    request: predict_pb2.PredictRequest, backend: Backend, context: grpc.ServicerContext
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``image_bytes`` → images at ``MODEL_SIZE`` plus the decoded originals."""
    if backend.old_export:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, missing_signature(request.model_spec.signature_name))
    from PIL import Image

    originals = decode_files(list(request.inputs["image_bytes"].string_val), context)
    height, width = MODEL_SIZE
    resized = [np.asarray(Image.fromarray(image).resize((width, height), Image.NEAREST)) for image in originals]
    return np.stack(resized), originals


def predict_response(
    request: predict_pb2.PredictRequest, backend: Backend, context: grpc.ServicerContext
) -> predict_pb2.PredictResponse:
    originals = None
    if "image_bytes" in request.inputs:
        images, originals = encoded_inputs(request, backend, context)
    else:
        images = request_array(request.inputs["images"], np.uint8)
    count = images.shape[0]
    probabilities = np.tile(PROBABILITIES, (count, 1))
    if "class_index" in request.inputs:
        wanted = request_array(request.inputs["class_index"], np.int32)
        classes = np.where(wanted == -1, PREDICTED, wanted).astype(np.int32)
    else:
        classes = np.full(count, PREDICTED, dtype=np.int32)
    outputs = {
        "probabilities": probabilities,
        "class_index": classes,
        "score": PROBABILITIES[classes],
        "label": np.array([LABELS[c].encode() for c in classes], dtype=object),
    }
    if "class_index" in request.inputs:
        outputs["heatmap"] = images[..., 0].astype(np.float32) / 255.0
        if originals is not None:
            outputs[backend.overlay_alias] = np.array([png(image) for image in originals], dtype=object)
    outputs.pop(backend.drop_output or "", None)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
    response.model_spec.version.value = VERSION
    for name, array in outputs.items():
        response.outputs[name].CopyFrom(official_tensor(array, content=backend.tensor_content))
    return response


def tensor_info(name: str, dtype: int, dims: list[int]) -> meta_graph_pb2.TensorInfo:
    info = meta_graph_pb2.TensorInfo(name=name, dtype=dtype)
    info.tensor_shape.dim.extend(info.tensor_shape.Dim(size=n) for n in dims)
    return info


def signature_def_map() -> get_model_metadata_pb2.SignatureDefMap:
    """The signatures a gradcam-serving export has, as TF Serving reports them."""
    outputs = {
        "probabilities": tensor_info("Identity:0", types_pb2.DT_FLOAT, [-1, 3]),
        "class_index": tensor_info("Identity_1:0", types_pb2.DT_INT32, [-1]),
        "score": tensor_info("Identity_2:0", types_pb2.DT_FLOAT, [-1]),
        "label": tensor_info("Identity_3:0", types_pb2.DT_STRING, [-1]),
    }
    images = tensor_info("predict_images:0", types_pb2.DT_UINT8, [-1, -1, -1, 3])
    result = get_model_metadata_pb2.SignatureDefMap()
    for key in ("predict", "serving_default"):
        result.signature_def[key].inputs["images"].CopyFrom(images)
        for alias, info in outputs.items():
            result.signature_def[key].outputs[alias].CopyFrom(info)
        result.signature_def[key].method_name = "tensorflow/serving/predict"
    explain = result.signature_def["explain"]
    explain.method_name = "tensorflow/serving/predict"
    explain.inputs["images"].CopyFrom(tensor_info("explain_images:0", types_pb2.DT_UINT8, [-1, -1, -1, 3]))
    explain.inputs["class_index"].CopyFrom(tensor_info("explain_class_index:0", types_pb2.DT_INT32, [-1]))
    for alias, info in outputs.items():
        explain.outputs[alias].CopyFrom(info)
    explain.outputs["heatmap"].CopyFrom(tensor_info("Identity_4:0", types_pb2.DT_FLOAT, [-1, -1, -1]))
    init = result.signature_def["__saved_model_init_op"]
    init.outputs["__saved_model_init_op"].CopyFrom(meta_graph_pb2.TensorInfo(name="NoOp"))
    return result


def status_response(versions: list[tuple[int, int]]) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state in versions:
        response.model_version_status.add(version=version, state=state)
    return response


class FakePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        self.backend.enter("Predict", request, context)
        return predict_response(request, self.backend, context)

    def GetModelMetadata(self, request, context):  # noqa: N802
        self.backend.enter("GetModelMetadata", request, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = VERSION
        response.metadata["signature_def"].Pack(signature_def_map())
        return response


class FakeModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def GetModelStatus(self, request, context):  # noqa: N802
        self.backend.enter("GetModelStatus", request, context)
        if self.backend.status_unimplemented:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "ModelService is not served here")
        answer = self.backend.next_status()
        if isinstance(answer, tuple) and isinstance(answer[0], grpc.StatusCode):
            context.abort(*answer)
        return status_response(answer)


FAST_RETRY = Retry(retries=2, backoff=0.01, multiplier=2.0, max_backoff=0.05)


@dataclass
class Serving:
    """A running fake server: where it listens and what it will answer."""

    target: str
    port: int
    backend: Backend


def start_server(
    backend: Backend, credentials: grpc.ServerCredentials | None = None, port: int = 0
) -> tuple[grpc.Server, int]:
    """Start the fake on ``127.0.0.1:port`` (a free one by default); its receive cap is lifted like TF Serving's."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(FakePredictionService(backend), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(FakeModelService(backend), server)
    if credentials is None:
        port = server.add_insecure_port(f"127.0.0.1:{port}")
    else:
        port = server.add_secure_port(f"127.0.0.1:{port}", credentials)
    assert port, "could not bind a loopback port"
    server.start()
    return server, port


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_tls_files(directory: Path) -> tuple[bytes, bytes]:
    """A self-signed certificate for localhost/127.0.0.1, made with the openssl CLI."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key.read_bytes(), cert.read_bytes()


def rgb_images(count: int, height: int = 8, width: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)
