"""What the sync and async clients share: everything except the I/O.

:class:`BaseExplainClient` validates configuration, tracks the lifecycle and
describes each RPC as a :class:`Call` (method path, request, response type,
decoder; the numpy work lives in ``_codec``). The two subclasses only differ
in how they send a ``Call``, sleep between polls and close the channels.
Retries are gRPC's own (the channel's service config, see ``_config``).
Deadlines, error mapping, readiness bookkeeping and the choice between the
uint8 and the ``*_bytes`` signatures (with its fallback) are shared here.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import grpc

from gradcam_serving import signatures as sig
from gradcam_serving import wire as _wire
from gradcam_serving.client import _encoded
from gradcam_serving.client._config import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    ClientState,
    Retry,
    RetryTypes,
    Timeout,
    TimeoutTypes,
    UseClientDefault,
    channel_options,
)
from gradcam_serving.client._types import VersionStatus
from gradcam_serving.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    NotFoundError,
    UnavailableError,
    VersionState,
    rpc_error_for_code,
)

if TYPE_CHECKING:
    from gradcam_serving.client._images import Images
    from gradcam_serving.client._types import Explanation, ModelMetadata, Prediction

__all__ = [
    "NO_RETRY",
    "WAITABLE_ERRORS",
    "BaseExplainClient",
    "Call",
    "Deadline",
    "ReadinessPoll",
    "code_name",
    "fallback_for",
    "map_rpc_errors",
    "serialize",
]

T = TypeVar("T")

_CLOSED_MESSAGE = "Cannot send a request, as the client has been closed."


def code_name(exc: grpc.RpcError) -> str:
    """The status code name of a gRPC error (``"UNKNOWN"`` if it carries none)."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


@contextlib.contextmanager
def map_rpc_errors() -> Iterator[None]:
    """Turn any ``grpc.RpcError`` into the matching :class:`~gradcam_serving.errors.RpcError`.

    The one place where gRPC errors become ours, so callers catch a single
    exception tree and never need to import grpc. The original stays on
    ``__cause__``.
    """
    try:
        yield
    except grpc.RpcError as exc:
        details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
        raise rpc_error_for_code(code_name(exc), details or "") from exc


@dataclass(frozen=True)
class Call(Generic[T]):
    """One RPC ready to send: where, what, and how to read the answer.

    ``fallback`` builds the call to send instead when the export lacks the
    requested signature (see :func:`fallback_for`).
    """

    method: str
    request: Any
    response_type: Any
    decode: Callable[[Any], T]
    fallback: Callable[[], Call[T]] | None = None


def fallback_for(call: Call[T], exc: BaseException) -> Call[T] | None:
    """The call to send after ``exc``, or ``None`` to raise ``exc``.

    Only a ``*_bytes`` call answered with FAILED_PRECONDITION ``Serving
    signature key "..._bytes" not found`` (an export made before those
    signatures existed) falls back, once, to its uint8 twin.
    """
    if call.fallback is None or not isinstance(exc, FailedPreconditionError):
        return None
    if not _encoded.is_missing_signature(exc.details, call.request.model_spec.signature_name):
        return None
    return call.fallback()


class BaseExplainClient:
    """Configuration, lifecycle and the description of each call.

    Not used directly: see :class:`ExplainClient` and :class:`AsyncExplainClient`.
    """

    def __init__(
        self,
        target: str,
        model_name: str,
        *,
        version: int | None = None,
        version_label: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        credentials: grpc.ChannelCredentials | None = None,
        retries: RetryTypes = DEFAULT_RETRY,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Configure a client; no connection is made until the first call.

        Args:
            target: gRPC target, e.g. ``"localhost:8500"``; use
                ``"dns:///name:8500"`` to spread calls over all replicas.
            model_name: the served model's name.
            version: pin a version number (mutually exclusive with ``version_label``).
            version_label: pin a version label such as ``"stable"``.
            timeout: the default deadline per call (:class:`Timeout` or seconds).
            credentials: use TLS with these ``grpc.ChannelCredentials``; plaintext if ``None``.
            retries: :class:`Retry` policy or a retry count for ``UNAVAILABLE``.
            options: extra gRPC channel arguments (replace defaults of the same name).

        Raises:
            ValueError: both version and version_label, or an empty name/target.
        """
        _check_text("target", target)
        _check_text("model_name", model_name)
        _check_version(version, version_label)
        if credentials is not None and not isinstance(credentials, grpc.ChannelCredentials):
            raise TypeError(f"credentials must be grpc.ChannelCredentials or None; got {type(credentials).__name__}")
        self._target = target
        self._model_name = model_name
        self._version = version
        self._version_label = version_label
        self._timeout = Timeout.of(timeout)
        self._retry = Retry.of(retries)
        self._credentials = credentials
        self._options = tuple(options)
        self._state = ClientState.UNOPENED
        self._channels: dict[Retry, Any] = {}  # one per retry policy: calls, and probes without retries
        self._channel_lock = threading.Lock()  # threads sharing a blocking client open one channel

    def __repr__(self) -> str:
        pinned = f", version={self._version}" if self._version is not None else ""
        pinned += f", version_label={self._version_label!r}" if self._version_label is not None else ""
        return f"{type(self).__name__}({self._target!r}, {self._model_name!r}{pinned}, state={self._state.name})"

    @property
    def target(self) -> str:
        """The gRPC target, e.g. ``"localhost:8500"`` or ``"dns:///svc:8500"``."""
        return self._target

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def version(self) -> int | None:
        """The pinned version number, or ``None`` (latest, or by label)."""
        return self._version

    @property
    def version_label(self) -> str | None:
        return self._version_label

    @property
    def timeout(self) -> Timeout:
        """The deadline every call gets unless it passes its own."""
        return self._timeout

    @property
    def retry(self) -> Retry:
        return self._retry

    @property
    def is_closed(self) -> bool:
        return self._state is ClientState.CLOSED

    # -- lifecycle ---------------------------------------------------------

    def _enter(self) -> None:
        """``with``/``async with``: a client is opened at most once, never after close."""
        if self._state is ClientState.OPENED:
            raise RuntimeError("Cannot open a client instance more than once.")
        if self._state is ClientState.CLOSED:
            raise RuntimeError("Cannot reopen a client instance, once it has been closed.")
        self._state = ClientState.OPENED

    def _live_channel(self, grpc_module: ModuleType, retry: Retry | None = None) -> Any:
        """The channel retrying as ``retry`` (default: the client's), created on first use.

        gRPC sets retries per channel, not per call, so the readiness probes,
        which must see each answer, get a second channel without retries
        (:data:`NO_RETRY`), opened only if ``wait_until_ready`` is used.
        """
        retry = retry or self._retry
        with self._channel_lock:  # checked under the lock: a close() in between must not be undone
            if self._state is ClientState.CLOSED:
                raise RuntimeError(_CLOSED_MESSAGE)
            self._state = ClientState.OPENED
            if retry not in self._channels:
                self._channels[retry] = self._new_channel(grpc_module, retry)
            return self._channels[retry]

    def _new_channel(self, grpc_module: ModuleType, retry: Retry) -> Any:
        """TLS when credentials were given; always the options of :func:`channel_options`."""
        options = channel_options(self._options, retry)
        if self._credentials is None:
            return grpc_module.insecure_channel(self._target, options=options)
        return grpc_module.secure_channel(self._target, self._credentials, options=options)

    def _take_channels_for_close(self) -> list[Any]:
        """Mark closed and hand over the open channels for the I/O side to close."""
        with self._channel_lock:
            self._state = ClientState.CLOSED
            channels, self._channels = list(self._channels.values()), {}
            return channels

    def _deadline(self, timeout: TimeoutTypes | UseClientDefault, now: Callable[[], float] = time.monotonic) -> Deadline:
        """The one deadline of a call, shared by its retries and its fallback."""
        seconds = self._timeout.seconds if isinstance(timeout, UseClientDefault) else Timeout.of(timeout).seconds
        return Deadline(seconds, now() + seconds, now)

    # -- requests ------------------------------------------------------------

    def _model_spec(self, signature_name: str = "") -> Any:
        spec = _wire.ModelSpec(name=self._model_name, signature_name=signature_name)
        if self._version is not None:
            spec.version.value = self._version
        elif self._version_label is not None:
            spec.version_label = self._version_label
        return spec

    def _predict_call(self, images: Images) -> Call[Prediction]:
        """``predict_bytes`` for paths/bytes (falling back to ``predict``), else ``predict``."""
        encoded = _encoded.read_encoded(images)
        if encoded is None:
            return self._pixels_predict_call(images)
        codec = _codec()
        request = codec.predict_bytes_request(self._model_spec(_encoded.PREDICT_BYTES), encoded)
        return Call(
            _wire.PREDICT_METHOD,
            request,
            _wire.PredictResponse,
            codec.decode_prediction,
            fallback=lambda: self._pixels_predict_call(codec.decode_encoded(encoded)),
        )

    def _explain_call(
        self,
        images: Images,
        class_index: int | Sequence[int] | None,
        method: str | None = None,
        top_k: int | None = None,
    ) -> Call[Explanation]:
        """``explain[_bytes]`` (falling back to ``explain``), ``explain[_bytes]_<method>`` or ``explain_topk[_bytes]``."""
        _check_choice(class_index, method, top_k)
        if top_k is not None:
            return self._topk_call(images, top_k)
        encoded = _encoded.read_encoded(images)
        codec = _codec()
        if method is not None and method != sig.DEFAULT_METHOD:
            if encoded is None:
                request = codec.explain_request(self._model_spec(sig.explain_signature(method)), images, class_index)
                return Call(_wire.PREDICT_METHOD, request, _wire.PredictResponse, codec.decode_explanation)
            name = sig.explain_signature(method, encoded=True)
            request = codec.explain_bytes_request(self._model_spec(name), encoded, class_index)
            return Call(_wire.PREDICT_METHOD, request, _wire.PredictResponse, codec.decode_encoded_explanation)
        if encoded is None:
            return self._pixels_explain_call(images, class_index)
        request = codec.explain_bytes_request(self._model_spec(_encoded.EXPLAIN_BYTES), encoded, class_index)
        return Call(
            _wire.PREDICT_METHOD,
            request,
            _wire.PredictResponse,
            codec.decode_encoded_explanation,
            fallback=lambda: self._pixels_explain_call(codec.decode_encoded(encoded), class_index),
        )

    def _topk_call(self, images: Images, top_k: int) -> Call[Explanation]:
        encoded = _encoded.read_encoded(images)
        codec = _codec()
        if encoded is None:
            request = codec.predict_request(self._model_spec(sig.EXPLAIN_TOPK), images)
        else:
            request = codec.predict_bytes_request(self._model_spec(sig.EXPLAIN_TOPK_BYTES), encoded)
        decode = functools.partial(codec.decode_topk_explanation, k=top_k)
        return Call(_wire.PREDICT_METHOD, codec.with_k(request, top_k), _wire.PredictResponse, decode)

    @staticmethod
    def _asked_for_missing(call: Call[Any], exc: FailedPreconditionError, method: str | None, top_k: int | None) -> bool:
        """Whether ``exc`` says the export lacks the method or top-k signature this call asked for."""
        return (method not in (None, sig.DEFAULT_METHOD) or top_k is not None) and _encoded.is_missing_signature(
            exc.details, call.request.model_spec.signature_name
        )

    def _not_exported(self, method: str | None, top_k: int | None, metadata: ModelMetadata) -> ValueError:
        """The error for a method (or top-k) the export does not hold, listing what it holds.

        The method is checked by :func:`gradcam_serving.signatures.resolve_methods`, so the message is the one
        every tool gives for an unknown method.
        """
        if top_k is not None:
            return ValueError(
                f"model {self._model_name!r} has no {sig.EXPLAIN_TOPK} signature (exported before top-k "
                "existed); re-export it with this version of gradcam-serving to use top_k"
            )
        try:
            sig.resolve_methods(method, sig.exported_methods(metadata.signatures))
        except ValueError as exc:
            return ValueError(f"model {self._model_name!r}: {exc}")
        return ValueError(f"model {self._model_name!r} lists method {method!r} but has no "
                          f"{sig.explain_signature(str(method))} signature; its export is incomplete")

    def _pixels_predict_call(self, images: Images) -> Call[Prediction]:
        codec = _codec()
        request = codec.predict_request(self._model_spec(sig.PREDICT), images)
        return Call(_wire.PREDICT_METHOD, request, _wire.PredictResponse, codec.decode_prediction)

    def _pixels_explain_call(self, images: Images, class_index: int | Sequence[int] | None) -> Call[Explanation]:
        codec = _codec()
        request = codec.explain_request(self._model_spec(sig.EXPLAIN), images, class_index)
        return Call(_wire.PREDICT_METHOD, request, _wire.PredictResponse, codec.decode_explanation)

    def _metadata_call(self) -> Call[ModelMetadata]:
        codec = _codec()
        request = _wire.GetModelMetadataRequest(model_spec=self._model_spec(), metadata_field=[codec.SIGNATURE_DEF])
        return Call(_wire.GET_MODEL_METADATA_METHOD, request, _wire.GetModelMetadataResponse, codec.decode_metadata)

    def _status_call(self) -> Call[list[VersionStatus]]:
        request = _wire.GetModelStatusRequest(model_spec=self._model_spec())
        return Call(_wire.GET_MODEL_STATUS_METHOD, request, _wire.GetModelStatusResponse, _codec().decode_status)


def _codec() -> ModuleType:
    """The numpy side (request encoding, response decoding), imported on first use.

    Deferred so ``import gradcam_serving.client`` does not pay for numpy.
    """
    from gradcam_serving.client import _codec as codec

    return codec


def _check_choice(class_index: object, method: object, top_k: object) -> None:
    """``method=`` names one signature; ``top_k=`` uses the default method and picks the classes itself."""
    if method is not None and (not isinstance(method, str) or not method):
        raise ValueError(f"method must be a non-empty string such as 'gradcam', or None; got {method!r}")
    if top_k is None:
        return
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an int >= 1 or None; got {top_k!r}")
    if class_index is not None:
        raise ValueError("top_k explains the k most probable classes; pass class_index=None with it")
    if method is not None:
        raise ValueError("top_k uses the export's default method (explain_topk); pass method=None with it")


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")


def _check_version(version: object, version_label: object) -> None:
    if version is not None and version_label is not None:
        raise ValueError("version and version_label are mutually exclusive; pass at most one of them")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise ValueError(f"version must be an int >= 0 or None; got {version!r}")
    if version_label is not None:
        _check_text("version_label", version_label)


class ReadinessPoll:
    """The bookkeeping of ``wait_until_ready``; the clients only do the I/O.

    Usage (the async twin awaits instead)::

        poll = ReadinessPoll(client, timeout, interval, time.monotonic)
        while (budget := poll.next_budget()) is not None:
            try: statuses = probe(budget)
            except WAITABLE_ERRORS as exc: poll.record(exc)
            else:
                if poll.ready(statuses): return statuses
            sleep(poll.pause())
        raise poll.error() from poll.last_exception
    """

    def __init__(self, client: BaseExplainClient, timeout: float, interval: float, now: Callable[[], float]) -> None:
        self._timeout = Timeout.of(timeout).seconds
        if not interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds; got {interval!r}")
        self._interval = interval
        self._client = client
        self._now = now
        self._deadline = now() + self._timeout
        self._last: object = "no answer yet"
        self.last_exception: BaseException | None = None

    def next_budget(self) -> float | None:
        """The deadline for the next probe, or ``None`` once the time is up."""
        remaining = self._deadline - self._now()
        return min(self._client.timeout.seconds, remaining) if remaining > 0 else None

    def record(self, exc: BaseException) -> None:
        self._last = exc
        self.last_exception = exc

    def ready(self, statuses: list[VersionStatus] | None) -> bool:
        """``None`` means the server has no ModelService but answered metadata: ready."""
        if statuses is None:
            return True
        self._last = [f"{status.version}: {status.state.name}" for status in statuses] or "no versions"
        self.last_exception = None
        version = self._client.version
        return any(
            status.state is VersionState.AVAILABLE and version in (None, status.version) for status in statuses
        )

    def pause(self) -> float:
        return max(0.0, min(self._interval, self._deadline - self._now()))

    def error(self) -> DeadlineExceededError:
        client = self._client
        which = f"version {client.version}" if client.version is not None else "any version"
        return DeadlineExceededError(
            f"model {client.model_name!r} at {client.target} did not have {which} AVAILABLE "
            f"within {self._timeout:g} s; last answer: {self._last}",
        )


WAITABLE_ERRORS = (UnavailableError, NotFoundError, DeadlineExceededError)
"""Answers that mean "not ready yet" while waiting: no server, model not loaded, slow."""

NO_RETRY = Retry(retries=0)


def serialize(message: Any) -> bytes:
    return message.SerializeToString()


@dataclass(frozen=True)
class Deadline:
    """When a call must be done: ``seconds`` after it started, on the ``now`` clock."""

    seconds: float
    end: float
    now: Callable[[], float]

    def remaining(self) -> float:
        return self.end - self.now()

    def budget(self) -> float:
        """The gRPC timeout of the next request: the time the call has left.

        gRPC's retries of that request run within it; a fallback request
        (``*_bytes`` to uint8) gets only what the first one left over.
        """
        remaining = self.remaining()
        if remaining <= 0:
            raise DeadlineExceededError(f"no time left of the call's {self.seconds:g} s deadline")
        return remaining
