"""End-to-end helpers shared by tests/integration and tests/compat.

Everything here talks to a server over real gRPC on loopback, with either our
``ExplainClient`` or the official ``tensorflow-serving-api`` stubs, and
compares the answers with the same export run in-process
(``tf.saved_model.load(export).signatures[...]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from gradcam_serving.client import ExplainClient
from gradcam_serving import wire as _wire
from gradcam_serving.client._base import Call
from gradcam_serving.server import ModelConfig, ServerOptions, create_server

MODEL = "clf"
LABELS = ("zero", "one", "two", "three")
RPC_TIMEOUT = 30.0
HEATMAP_ATOL = 1e-5
SIGNATURES = {"predict", "serving_default", "explain", "__saved_model_init_op"}
AVAILABLE = 30
END = 50


def test_images(count: int = 3, height: int = 40, width: int = 56, seed: int = 7) -> np.ndarray:
    """uint8 RGB images at a size other than the model's (48x48), so in-graph resizing runs."""
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


test_images.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


def export_tiny(tiny_models: Any, base: str | Path, version: int = 1) -> Path:
    """Export the session's tiny hub classifier with ``LABELS`` to ``base/clf/<version>``."""
    from gradcam_serving.exporter import export_model

    result = export_model(tiny_models.hub_classifier, base, MODEL, version=version, labels=list(LABELS))
    assert result.path == Path(base) / MODEL / str(version)
    return result.path


# -- in-process reference ------------------------------------------------------------------------


class InProcess:
    """The export loaded with ``tf.saved_model.load``; each signature run eagerly."""

    def __init__(self, export_path: str | Path) -> None:
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(str(export_path))

    def run(self, signature: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        function = self._loaded.signatures[signature]
        return {k: v.numpy() for k, v in function(**{k: self._tf.constant(v) for k, v in inputs.items()}).items()}


def texts(values: Any) -> tuple[str, ...]:
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel())


def assert_same_outputs(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    """Floats within ``HEATMAP_ATOL``; class indices and labels exactly."""
    assert set(got) == set(want), (sorted(got), sorted(want))
    for name, expected in want.items():
        actual = np.asarray(got[name])
        assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(actual, expected, rtol=0, atol=HEATMAP_ATOL, err_msg=name)
        elif expected.dtype.kind in "SUO":
            assert texts(actual) == texts(expected), name
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=name)


def client_outputs(result: Any) -> dict[str, np.ndarray]:
    """Our client's Prediction/Explanation as ``{output alias: array}``: the predict fields, then every output
    the answer's family has (``Explanation.outputs``)."""
    names = ["probabilities", "class_index", "score", "label"]
    outputs = {name: np.asarray(getattr(result, name)) for name in names}
    outputs.update({alias: np.asarray(value) for alias, value in getattr(result, "outputs", {}).items()})
    return outputs


# -- the official stubs --------------------------------------------------------------------------


def tensor_proto(value: np.ndarray) -> Any:
    import tensorflow as tf

    return tf.make_tensor_proto(value)


def predict_request(signature: str, model: str = MODEL, **inputs: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model, signature_name=signature))
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tensor_proto(value))
    return request


def response_outputs(response: predict_pb2.PredictResponse) -> dict[str, np.ndarray]:
    import tensorflow as tf

    return {alias: tf.make_ndarray(tensor) for alias, tensor in response.outputs.items()}


@dataclasses.dataclass
class Official:
    """The official ``PredictionServiceStub`` / ``ModelServiceStub`` on one channel."""

    channel: grpc.Channel

    def __post_init__(self) -> None:
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        return self.prediction.Predict(request, RPC_TIMEOUT)

    def metadata(self, model: str = MODEL) -> get_model_metadata_pb2.GetModelMetadataResponse:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name=model), metadata_field=["signature_def"])
        return self.prediction.GetModelMetadata(request, RPC_TIMEOUT)

    def status(self, model: str = MODEL) -> get_model_status_pb2.GetModelStatusResponse:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=model))
        return self.model.GetModelStatus(request, RPC_TIMEOUT)

    def states(self, model: str = MODEL) -> dict[int, int]:
        return {s.version: s.state for s in self.status(model).model_version_status}

    def error(self, request: predict_pb2.PredictRequest) -> tuple[str, str]:
        """``(code name, details)`` of a Predict that must fail."""
        try:
            self.predict(request)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details()
        raise AssertionError(f"Predict unexpectedly succeeded: {request.model_spec}")


def saved_signature_names(export_path: str | Path) -> set[str]:
    """Every SignatureDef key in the export's ``saved_model.pb`` (what GetModelMetadata must list)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((Path(export_path) / "saved_model.pb").read_bytes())
    (meta_graph,) = saved.meta_graphs
    names = set(meta_graph.signature_def)
    assert names >= SIGNATURES, names
    return names


def signature_names_from_metadata(response: get_model_metadata_pb2.GetModelMetadataResponse) -> set[str]:
    from tensorflow_serving.apis import get_model_metadata_pb2 as md

    signature_map = md.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    return set(signature_map.signature_def)


# -- our client with a hand-made request -----------------------------------------------------------


def send_raw(client: ExplainClient, request: predict_pb2.PredictRequest) -> Any:
    """Send an official ``PredictRequest`` through our client's transport and error mapping.

    The public API only builds well-formed requests; this reaches the same
    ``_send`` path (deadline, retries, ``gradcam_serving.errors`` mapping) with
    any request, re-parsed into the client's wire-compatible message.
    """
    wire_request = _wire.PredictRequest.FromString(request.SerializeToString())
    return client._send(Call(_wire.PREDICT_METHOD, wire_request, _wire.PredictResponse, lambda r: r), RPC_TIMEOUT)


# -- the local server in-process -------------------------------------------------------------------


@dataclasses.dataclass
class LocalServer:
    server: Any
    port: int
    official: Official

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, model: str = MODEL, **options: Any) -> ExplainClient:
        return ExplainClient(self.target, model, timeout=RPC_TIMEOUT, **options)


@contextlib.contextmanager
def local_server(base_path: str | Path, model: str = MODEL, **options: Any) -> Iterator[LocalServer]:
    """``create_server(port=0)`` on loopback, started; stopped (and the channel closed) on exit."""
    options.setdefault("file_system_poll_wait_seconds", 0.2)
    options.setdefault("max_num_load_retries", 0)
    options.setdefault("grpc_max_threads", 16)
    server, port = create_server(
        ServerOptions(models=(ModelConfig(model, str(base_path)),), port=0, host="127.0.0.1", **options))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
        yield LocalServer(server, port, Official(channel))
    finally:
        channel.close()
        server.stop(2)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``condition`` until true; fail loudly on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# -- concurrent callers ---------------------------------------------------------------------------


@dataclasses.dataclass
class Outcomes:
    """What concurrent callers saw: versions that answered and every failure."""

    versions: list[int] = dataclasses.field(default_factory=list)
    failures: list[BaseException] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def record(self, call: Callable[[], Any]) -> None:
        try:
            result = call()
        except Exception as exc:  # every failure counts, whatever its type
            with self.lock:
                self.failures.append(exc)
        else:
            with self.lock:
                self.versions.append(result.model_spec.version)

    def count(self) -> int:
        with self.lock:
            return len(self.versions) + len(self.failures)


def run_callers(threads: int, call: Callable[[], Any], *, requests: int | None = None,
                stop: threading.Event | None = None) -> tuple[Outcomes, list[threading.Thread]]:
    """Start ``threads`` callers, each making ``requests`` calls or calling until ``stop`` is set."""
    outcomes = Outcomes()

    def worker() -> None:
        done = 0
        while (requests is None or done < requests) and not (stop is not None and stop.is_set()):
            outcomes.record(call)
            done += 1

    workers = [threading.Thread(target=worker, name=f"caller-{i}", daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    return outcomes, workers


def join_all(workers: list[threading.Thread], timeout: float = 120.0) -> None:
    for thread in workers:
        thread.join(timeout)
        assert not thread.is_alive(), f"{thread.name} did not finish within {timeout}s"


# -- the error cases, as (request, code, details) over the wire --------------------------------------

CLASS_INDEX_MESSAGE = (
    "assertion failed: [class_index must be an int32 vector with one entry per image, each -1 (the predicted "
    "class) or a class in 0..3 (the model has 4 classes); got class_index] [-1 9] [for a batch of images of size] [2]"
)
CHANNELS_MESSAGE = (
    "assertion failed: [images must be a uint8 tensor of shape [N, H, W, 3] (RGB, at least 1x1 pixels); "
    "got shape] [2 40 56 1]"
)


@dataclasses.dataclass(frozen=True)
class ErrorCase:
    """A request that must fail with ``code`` and ``details`` (exactly, or as a prefix for kernel errors)."""

    id: str
    build: Callable[[np.ndarray], predict_pb2.PredictRequest]
    code: str
    details: str
    prefix: bool = False

    def check(self, code: str, details: str) -> None:
        assert code == self.code, (self.id, code, details)
        if self.prefix:
            assert details.startswith(self.details), (self.id, details)
        else:
            assert details == self.details, (self.id, details)


def _explain(images: np.ndarray, signature: str = "explain", **changes: Any) -> predict_pb2.PredictRequest:
    inputs = {"images": images, "class_index": np.array([-1, 2], np.int32)}
    inputs.update(changes)
    return predict_request(signature, **{k: v for k, v in inputs.items() if v is not None})


def _with_spec(**spec: Any) -> Callable[[np.ndarray], predict_pb2.PredictRequest]:
    def build(images: np.ndarray) -> predict_pb2.PredictRequest:
        request = _explain(images)
        for field, value in spec.items():
            if field == "version":
                request.model_spec.version.value = value
            else:
                setattr(request.model_spec, field, value)
        return request

    return build


def _with_filter(images: np.ndarray) -> predict_pb2.PredictRequest:
    request = _explain(images)
    request.output_filter.append("bogus")
    return request


NO_MODEL_SPEC = ErrorCase("missing_model_spec", lambda images: predict_pb2.PredictRequest(), "INVALID_ARGUMENT",
                          "Missing ModelSpec")
ERROR_CASES = (
    ErrorCase("unknown_model", _with_spec(name="nope"), "NOT_FOUND", "Servable not found for request: Latest(nope)"),
    ErrorCase("unknown_version", _with_spec(version=7), "NOT_FOUND",
              f"Servable not found for request: Specific({MODEL}, 7)"),
    ErrorCase("unknown_label", _with_spec(version_label="canary"), "INVALID_ARGUMENT",
              "Unrecognized servable version label: canary"),
    ErrorCase("unknown_signature", lambda images: _explain(images, "nosig"), "FAILED_PRECONDITION",
              'Serving signature key "nosig" not found.'),
    ErrorCase("missing_input", lambda images: _explain(images, class_index=None), "INVALID_ARGUMENT",
              "input size does not match signature: 1!=2 len({images}) != len({class_index,images}). "
              "Sent extra: {}. Missing but required: {class_index}."),
    ErrorCase("extra_input", lambda images: _explain(images, extra=np.array([1], np.int32)), "INVALID_ARGUMENT",
              "input size does not match signature: 3!=2 len({class_index,extra,images}) != "
              "len({class_index,images}). Sent extra: {extra}. Missing but required: {}."),
    ErrorCase("wrong_dtype", lambda images: _explain(images.astype(np.float32)), "INVALID_ARGUMENT",
              "Expects arg[1] to be uint8 but float is provided"),
    ErrorCase("bad_output_filter", _with_filter, "INVALID_ARGUMENT",
              "output tensor alias not found in signature: bogus "
              "Outputs expected to be in the set {cam,class_index,heatmap,label,method,probabilities,score}."),
    ErrorCase("class_index_out_of_range", lambda images: _explain(images, class_index=np.array([-1, 9], np.int32)),
              "INVALID_ARGUMENT", CLASS_INDEX_MESSAGE, prefix=True),
    ErrorCase("wrong_channel_count", lambda images: _explain(images[..., :1].copy()), "INVALID_ARGUMENT",
              CHANNELS_MESSAGE, prefix=True),
)
