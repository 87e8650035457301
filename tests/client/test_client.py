"""ExplainClient against a real gRPC server speaking the official TF Serving protos."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from client_fakes import (
    AVAILABLE,
    FAST_RETRY,
    LABELS,
    LOADING,
    MODEL,
    PROBABILITIES,
    VERSION,
    Backend,
    Serving,
    closed_port,
    make_tls_files,
    request_array,
    rgb_images,
    start_server,
)
from PIL import Image
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from gradcam_serving.client import (
    Explanation,
    ExplainClient,
    ModelState,
    Prediction,
    Retry,
    Timeout,
)
from gradcam_serving.client._tensors import array_to_tensor
from gradcam_serving.errors import (
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    GradcamServingError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    RpcError,
    StatusCode,
    UnavailableError,
    UnimplementedError,
    UnknownError,
)

UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, "replica restarting")


def test_predict_decodes_every_output(client: ExplainClient, fake: Serving) -> None:
    result = client.predict(rgb_images(2))
    assert isinstance(result, Prediction)
    assert result.probabilities.dtype == np.float32
    np.testing.assert_array_equal(result.probabilities, [PROBABILITIES, PROBABILITIES])
    np.testing.assert_array_equal(result.class_index, [1, 1])
    assert result.class_index.dtype == np.int32
    np.testing.assert_array_equal(result.score, PROBABILITIES[[1, 1]])
    assert result.label == ("rosé", "rosé")
    assert len(result) == 2
    assert (result.model_spec.name, result.model_spec.signature_name, result.model_spec.version) == (
        MODEL,
        "predict",
        VERSION,
    )


def test_predict_sends_the_images_and_signature(client: ExplainClient, fake: Serving) -> None:
    images = rgb_images(3, 5, 4)
    client.predict(images)
    [(method, request)] = fake.backend.calls
    assert method == "Predict"
    assert request.model_spec.name == MODEL
    assert request.model_spec.signature_name == "predict"
    assert request.model_spec.WhichOneof("version_choice") is None
    assert list(request.inputs) == ["images"]
    np.testing.assert_array_equal(request_array(request.inputs["images"], np.uint8), images)


def test_results_are_frozen_and_read_only(client: ExplainClient) -> None:
    result = client.predict(rgb_images(1))
    with pytest.raises(AttributeError):
        result.score = None  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.score[0] = 1.0


@pytest.mark.parametrize(
    ("class_index", "sent", "explained"),
    [
        pytest.param(None, [-1, -1], [1, 1], id="predicted"),
        pytest.param(2, [2, 2], [2, 2], id="same-for-all"),
        pytest.param([0, -1], [0, -1], [0, 1], id="per-image"),
    ],
)
def test_explain_sends_class_indices_and_decodes_heatmaps(
    client: ExplainClient, fake: Serving, class_index, sent, explained
) -> None:
    images = rgb_images(2, 6, 5)
    result = client.explain(images, class_index)
    assert isinstance(result, Explanation)
    [(_, request)] = fake.backend.calls
    assert request.model_spec.signature_name == "explain"
    np.testing.assert_array_equal(request_array(request.inputs["class_index"], np.int32), sent)
    np.testing.assert_array_equal(result.class_index, explained)
    np.testing.assert_array_equal(result.score, PROBABILITIES[explained])
    assert result.label == tuple(LABELS[c] for c in explained)
    assert result.heatmap.shape == (2, 6, 5)
    assert result.heatmap.dtype == np.float32
    np.testing.assert_allclose(result.heatmap, images[..., 0] / 255.0, rtol=1e-6)
    assert result.model_spec.signature_name == "explain"


def test_explain_accepts_arrays_and_pil_images_together(client: ExplainClient) -> None:
    """Paths and bytes go to ``explain_bytes`` instead, and cannot join them (test_bytes.py)."""
    image = rgb_images(1, 4, 4)[0]
    result = client.explain([image, Image.fromarray(image).convert("RGBA")])
    np.testing.assert_allclose(result.heatmap, np.stack([image, image])[..., 0] / 255.0, rtol=1e-6)


def test_tensor_content_responses_decode_the_same(client: ExplainClient, fake: Serving) -> None:
    images = rgb_images(2)
    typed = client.explain(images)
    fake.backend.tensor_content = True
    raw = client.explain(images)
    for name in ("probabilities", "class_index", "score", "heatmap"):
        np.testing.assert_array_equal(getattr(raw, name), getattr(typed, name))
    assert raw.label == typed.label


def test_bad_inputs_fail_before_any_rpc(client: ExplainClient, fake: Serving) -> None:
    with pytest.raises(ValueError, match="one request per size"):
        client.explain([rgb_images(1, 4, 4)[0], rgb_images(1, 5, 4)[0]])
    with pytest.raises(ValueError, match="class_index has 3 values but 2 images"):
        client.explain(rgb_images(2), [0, 1, 2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        client.predict(np.full((2, 2, 3), 3.0))
    assert fake.backend.calls == []


@pytest.mark.parametrize(
    ("kwargs", "oneof", "value"),
    [
        pytest.param({"version": 3}, "version", 3, id="version"),
        pytest.param({"version_label": "stable"}, "version_label", "stable", id="label"),
    ],
)
def test_version_pinning_reaches_the_server(fake: Serving, kwargs, oneof, value) -> None:
    with ExplainClient(fake.target, MODEL, **kwargs) as client:
        result = client.predict(rgb_images(1))
    request = fake.backend.calls[0][1]
    assert request.model_spec.WhichOneof("version_choice") == oneof
    sent = request.model_spec.version.value if oneof == "version" else request.model_spec.version_label
    assert sent == value
    assert result.model_spec.version == VERSION  # the server resolves labels to numbers


def test_version_and_label_are_mutually_exclusive() -> None:
    with pytest.raises(ValueError, match="version and version_label"):
        ExplainClient("localhost:1", MODEL, version=1, version_label="stable")
    with pytest.raises(ValueError, match="version must be an int >= 0"):
        ExplainClient("localhost:1", MODEL, version=-1)
    with pytest.raises(ValueError, match="model_name"):
        ExplainClient("localhost:1", "")


def test_unavailable_is_retried_until_success(client: ExplainClient, fake: Serving) -> None:
    fake.backend.failures = [UNAVAILABLE, UNAVAILABLE]
    result = client.predict(rgb_images(1))
    assert result.label == ("rosé",)
    assert fake.backend.methods() == ["Predict"] * 3


def test_retries_back_off_exponentially_with_jitter(fake: Serving) -> None:
    """gRPC waits each backoff +-20 %: growing waits, and not the same every time."""
    waits = []
    with ExplainClient(fake.target, MODEL, retries=Retry(retries=2, backoff=0.1, multiplier=3.0)) as client:
        for _ in range(8):
            fake.backend.reset()
            fake.backend.failures = [UNAVAILABLE, UNAVAILABLE]
            client.predict(rgb_images(1))
            first, second, third = fake.backend.arrivals
            waits.append((second - first, third - second))
    firsts, seconds = np.array(waits).T
    assert 0.1 * 0.8 - 0.01 < firsts.min() and firsts.max() < 0.1 * 1.2 + 0.05
    assert 0.3 * 0.8 - 0.01 < seconds.min() and seconds.max() < 0.3 * 1.2 + 0.05
    assert firsts.max() - firsts.min() > 0.005  # jittered: a fixed schedule would give 8 equal waits


def test_a_request_beyond_grpcs_default_retry_buffer_is_still_retried(client: ExplainClient, fake: Serving) -> None:
    """gRPC stops retrying requests over its 256 KiB retry buffer unless the buffer is raised, as the client does."""
    fake.backend.failures = [UNAVAILABLE]
    images = rgb_images(8, 224, 224)  # 1.2 MB of pixels
    assert client.predict(images).label == ("rosé",) * 8
    assert fake.backend.methods() == ["Predict"] * 2


def test_unavailable_after_the_last_retry_is_raised(fake: Serving) -> None:
    fake.backend.failures = [UNAVAILABLE] * 3
    with ExplainClient(fake.target, MODEL, retries=Retry(retries=1, backoff=0.01)) as client:
        with pytest.raises(UnavailableError, match="replica restarting") as caught:
            client.predict(rgb_images(1))
    assert fake.backend.methods() == ["Predict"] * 2
    assert caught.value.code is StatusCode.UNAVAILABLE


def test_other_codes_are_never_retried_and_carry_code_and_message(client: ExplainClient, fake: Serving) -> None:
    message = "indices[1] = 9 is not in [0, 3)"
    fake.backend.failures = [(grpc.StatusCode.INVALID_ARGUMENT, message)]
    with pytest.raises(InvalidArgumentError) as caught:
        client.explain(rgb_images(2), [0, 9])
    assert fake.backend.methods() == ["Predict"]
    assert (caught.value.code, caught.value.code_name) == (StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert caught.value.details == caught.value.message == message
    assert str(caught.value) == f"INVALID_ARGUMENT: {message}"
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    assert caught.value.__cause__.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        pytest.param(grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError, id="invalid-argument"),
        pytest.param(grpc.StatusCode.NOT_FOUND, NotFoundError, id="not-found"),
        pytest.param(grpc.StatusCode.FAILED_PRECONDITION, FailedPreconditionError, id="failed-precondition"),
        pytest.param(grpc.StatusCode.UNAVAILABLE, UnavailableError, id="unavailable"),
        pytest.param(grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError, id="deadline-exceeded"),
        pytest.param(grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhaustedError, id="resource-exhausted"),
        pytest.param(grpc.StatusCode.UNIMPLEMENTED, UnimplementedError, id="unimplemented"),
        pytest.param(grpc.StatusCode.DATA_LOSS, DataLossError, id="data-loss"),
        pytest.param(grpc.StatusCode.INTERNAL, InternalError, id="internal"),
        pytest.param(grpc.StatusCode.UNKNOWN, UnknownError, id="unknown"),
        pytest.param(grpc.StatusCode.ABORTED, RpcError, id="code-without-a-class"),
    ],
)
def test_every_status_code_becomes_one_exception_tree(client: ExplainClient, fake: Serving, code, error_type) -> None:
    """Every code with a class of its own and one without; UNAVAILABLE fails every retry too."""
    fake.backend.failures = [(code, "Servable not found for request: Latest(flowers)")] * 10
    with pytest.raises(GradcamServingError) as caught:
        client.metadata()
    assert type(caught.value) is error_type
    assert isinstance(caught.value, RpcError)
    assert caught.value.code == code.value[0]  # gRPC's number: one numbering for both
    assert caught.value.code_name == code.name
    assert "Servable not found" in str(caught.value) or code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_slow_answer_raises_deadline_exceeded(client: ExplainClient, fake: Serving) -> None:
    fake.backend.delay = 0.5
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        client.predict(rgb_images(1), timeout=0.1)
    assert time.monotonic() - started < 0.45
    assert fake.backend.methods() == ["Predict"]  # a deadline is not retried


def test_the_client_default_deadline_applies_to_every_call(fake: Serving) -> None:
    fake.backend.delay = 0.5
    with ExplainClient(fake.target, MODEL, timeout=Timeout(0.1)) as client:
        with pytest.raises(DeadlineExceededError):
            client.status()
        assert client.predict(rgb_images(1), timeout=2.0).label == ("rosé",)


def test_responses_over_four_megabytes_are_received(client: ExplainClient, fake: Serving) -> None:
    fake.backend.tensor_content = True
    images = rgb_images(32, 224, 224)  # 4.8 MB up, 6.4 MB of heatmaps down
    result = client.explain(images)
    assert result.heatmap.shape == (32, 224, 224)
    assert result.heatmap.nbytes > 6_000_000
    np.testing.assert_allclose(result.heatmap[-1], images[-1, ..., 0] / 255.0, rtol=1e-6)


def test_a_default_channel_would_refuse_that_response(fake: Serving) -> None:
    """Shows the size test above is meaningful: gRPC's 4 MiB default cap bites."""
    fake.backend.tensor_content = True
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["images"].CopyFrom(_official_tensor(rgb_images(32, 224, 224)))
    request.inputs["class_index"].CopyFrom(_official_tensor(np.full(32, -1, dtype=np.int32)))
    with grpc.insecure_channel(fake.target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def _official_tensor(array: np.ndarray) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto.FromString(array_to_tensor(array).SerializeToString())


def test_dns_targets_work_with_round_robin(fake: Serving) -> None:
    with ExplainClient(f"dns:///127.0.0.1:{fake.port}", MODEL) as client:
        assert client.predict(rgb_images(1)).label == ("rosé",)


def test_missing_outputs_are_reported_clearly(client: ExplainClient, fake: Serving) -> None:
    fake.backend.drop_output = "heatmap"
    with pytest.raises(GradcamServingError, match=r"lacks outputs \['heatmap'\]"):
        client.explain(rgb_images(1))


def test_metadata_lists_signatures_with_names_dtypes_and_shapes(client: ExplainClient, fake: Serving) -> None:
    metadata = client.metadata()
    request = fake.backend.calls[0][1]
    assert list(request.metadata_field) == ["signature_def"]
    assert (metadata.model_name, metadata.version) == (MODEL, VERSION)
    assert set(metadata.signatures) == {"predict", "serving_default", "explain", "__saved_model_init_op"}
    explain = metadata.signatures["explain"]
    assert explain.method_name == "tensorflow/serving/predict"
    assert {name: (spec.dtype, spec.shape) for name, spec in explain.inputs.items()} == {
        "class_index": ("int32", (None,)),
        "images": ("uint8", (None, None, None, 3)),
    }
    assert explain.outputs["heatmap"].dtype == "float32"
    assert explain.outputs["heatmap"].shape == (None, None, None)
    assert explain.outputs["label"].dtype == "string"
    assert sorted(metadata.signatures["predict"].outputs) == ["class_index", "label", "probabilities", "score"]


def test_status_lists_versions_newest_first(client: ExplainClient, fake: Serving) -> None:
    fake.backend.status_answers = [[(1, AVAILABLE), (2, LOADING)]]
    statuses = client.status()
    assert [(s.version, s.state, s.error_code) for s in statuses] == [
        (2, ModelState.LOADING, "OK"),
        (1, ModelState.AVAILABLE, "OK"),
    ]
    assert fake.backend.calls[0][1].model_spec.name == MODEL


def test_wait_until_ready_polls_through_not_found_and_loading(fake: Serving) -> None:
    fake.backend.status_answers = [
        (grpc.StatusCode.NOT_FOUND, "Could not find any versions of model flowers"),
        [(VERSION, LOADING)],
        [(VERSION, AVAILABLE)],
    ]
    with ExplainClient(fake.target, MODEL) as client:
        statuses = client.wait_until_ready(5.0, poll_interval=0.01)
    assert [(s.version, s.state) for s in statuses] == [(VERSION, ModelState.AVAILABLE)]
    assert fake.backend.methods() == ["GetModelStatus"] * 3


def test_wait_until_ready_falls_back_to_metadata_without_model_service(fake: Serving) -> None:
    fake.backend.status_unimplemented = True
    with ExplainClient(fake.target, MODEL) as client:
        assert client.wait_until_ready(5.0) == []
    assert fake.backend.methods() == ["GetModelStatus", "GetModelMetadata"]


def test_wait_until_ready_times_out_with_the_last_answer(fake: Serving) -> None:
    fake.backend.status_answers = [[(VERSION, LOADING)]]
    with ExplainClient(fake.target, MODEL) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError, match=r"did not have any version AVAILABLE within 0.3 s.*LOADING"):
            client.wait_until_ready(0.3, poll_interval=0.05)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert len(fake.backend.calls) >= 3


def test_wait_until_ready_waits_for_the_pinned_version(fake: Serving) -> None:
    fake.backend.status_answers = [[(2, AVAILABLE), (1, LOADING)]]
    with ExplainClient(fake.target, MODEL, version=1) as client:
        with pytest.raises(DeadlineExceededError, match="version 1 AVAILABLE"):
            client.wait_until_ready(0.2, poll_interval=0.05)


def test_wait_until_ready_without_a_server_names_unavailable() -> None:
    with ExplainClient(f"127.0.0.1:{closed_port()}", MODEL) as client:
        with pytest.raises(DeadlineExceededError, match="UNAVAILABLE") as caught:
            client.wait_until_ready(0.5, poll_interval=0.05)
    assert isinstance(caught.value.__cause__, UnavailableError)


def test_other_errors_stop_waiting_at_once(fake: Serving) -> None:
    fake.backend.status_answers = [(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")]
    with ExplainClient(fake.target, MODEL) as client:
        with pytest.raises(InvalidArgumentError, match="no name"):
            client.wait_until_ready(5.0)
    assert fake.backend.methods() == ["GetModelStatus"]


def test_a_closed_client_refuses_reuse(fake: Serving) -> None:
    client = ExplainClient(fake.target, MODEL)
    assert client.predict(rgb_images(1)).label == ("rosé",)
    client.close()
    client.close()  # idempotent
    assert client.is_closed
    with pytest.raises(RuntimeError, match="client has been closed"):
        client.predict(rgb_images(1))
    with pytest.raises(RuntimeError, match="Cannot reopen a client instance, once it has been closed."):
        with client:
            pass


def test_the_context_manager_closes_and_cannot_be_entered_twice(fake: Serving) -> None:
    with ExplainClient(fake.target, MODEL) as client:
        with pytest.raises(RuntimeError, match="more than once"):
            client.__enter__()
    assert client.is_closed
    assert "state=CLOSED" in repr(client)


@pytest.fixture(scope="module")
def tls_serving(tmp_path_factory: pytest.TempPathFactory):
    key, cert = make_tls_files(tmp_path_factory.mktemp("tls"))
    backend = Backend()
    server, port = start_server(backend, grpc.ssl_server_credentials([(key, cert)]))
    yield port, cert
    server.stop(None)


def test_credentials_switch_to_tls(tls_serving) -> None:
    port, cert = tls_serving
    credentials = grpc.ssl_channel_credentials(root_certificates=cert)
    with ExplainClient(f"localhost:{port}", MODEL, credentials=credentials) as client:
        assert client.predict(rgb_images(1)).label == ("rosé",)
    with ExplainClient(f"localhost:{port}", MODEL, retries=FAST_RETRY, timeout=2.0) as plaintext:
        with pytest.raises(UnavailableError):
            plaintext.predict(rgb_images(1))


def test_default_retries_reach_a_server_that_starts_after_the_first_attempt() -> None:
    """A restart: the first attempt is refused, the server is back 0.3 s later, within the default retries."""
    port = closed_port()
    backend = Backend()
    servers: list = []

    def start_later() -> None:
        time.sleep(0.3)
        servers.append(start_server(backend, port=port)[0])

    starter = threading.Thread(target=start_later)
    try:
        with ExplainClient(f"127.0.0.1:{port}", MODEL) as client:  # default Retry: 0.1 + 0.2 + 0.4 s, +-20 %
            starter.start()
            started = time.monotonic()
            assert client.predict(rgb_images(1)).label == ("rosé",)
            assert time.monotonic() - started < 1.0
    finally:
        starter.join()
        for server in servers:
            server.stop(None)
    assert backend.methods() == ["Predict"]


class _CloseWhileWaiting:
    """Stands in for ``_channel_lock``: the first ``with`` lets ``close()`` run first, as another thread could."""

    def __init__(self, client: ExplainClient) -> None:
        self.client = client
        self.real = client._channel_lock

    def __enter__(self) -> None:
        self.client._channel_lock = self.real
        self.client.close()  # the other thread wins the lock
        self.real.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.real.release()


def test_a_close_racing_the_first_call_is_not_undone(fake: Serving) -> None:
    client = ExplainClient(fake.target, MODEL)
    client._channel_lock = _CloseWhileWaiting(client)  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="client has been closed"):
        client.predict(rgb_images(1))
    assert client.is_closed
    assert client._channels == {}  # no channel opened (and leaked) after close()
    assert fake.backend.methods() == []


def test_the_timeout_bounds_the_whole_call_including_retries(fake: Serving) -> None:
    fake.backend.failures = [UNAVAILABLE] * 10
    retry = Retry(retries=4, backoff=0.2, multiplier=1.0, max_backoff=0.2)  # up to 0.8 s of backoff alone
    with ExplainClient(fake.target, MODEL, timeout=0.3, retries=retry) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as caught:
            client.predict(rgb_images(1))
        elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 0.1
    assert 2 <= len(fake.backend.methods()) <= 5  # retried (waits are at most 0.2 s), never past the deadline
    assert fake.backend.arrivals[-1] - started < 0.3
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    assert caught.value.__cause__.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_retry_gets_only_the_time_left(fake: Serving) -> None:
    fake.backend.failures = [UNAVAILABLE]
    fake.backend.delay = 1.0  # the retry reaches a slow server
    with ExplainClient(fake.target, MODEL, timeout=0.4, retries=Retry(retries=1, backoff=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            client.predict(rgb_images(1))
        elapsed = time.monotonic() - started
    assert 0.35 < elapsed < 0.55  # not 0.2 s of backoff + a fresh 0.4 s
