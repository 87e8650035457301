"""The one place where server exceptions become gRPC and HTTP statuses.

:data:`STATUS_TABLE` maps each :class:`~gradcam_serving.errors.StatusCode` to its gRPC code and its HTTP
status, so the gRPC and REST front ends cannot drift apart. Every servicer
method is wrapped by :func:`rpc_method`; the REST handler calls
:func:`http_status`. A :class:`ServingError` keeps its code and text (over gRPC
cut at 1024 characters with ``...TRUNCATED`` like ``grpc_status_util.cc``);
anything else is a bug and becomes INTERNAL. The wrapper also counts each
outcome, and the latency of successful calls, in :class:`Metrics`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from gradcam_serving.errors import InternalError, ServingError, StatusCode, UnimplementedError
from gradcam_serving.server._metrics import Metrics

__all__ = [
    "GRPC_CODES", "HTTP_CODES", "MESSAGE_LIMIT", "STATUS_TABLE", "as_serving_error", "grpc_status", "http_status",
    "rpc_method", "safe_text", "unimplemented",
]

_log = logging.getLogger("gradcam_serving.server")
MESSAGE_LIMIT = 1024

# StatusCode -> (gRPC status, HTTP status); the HTTP column is ``ToHTTPStatusCode`` in
# TF Serving's ``model_servers/http_server.cc`` (CANCELLED is nginx's 499).
STATUS_TABLE: dict[StatusCode, tuple[grpc.StatusCode, int]] = {
    StatusCode.OK: (grpc.StatusCode.OK, 200),
    StatusCode.CANCELLED: (grpc.StatusCode.CANCELLED, 499),
    StatusCode.UNKNOWN: (grpc.StatusCode.UNKNOWN, 500),
    StatusCode.INVALID_ARGUMENT: (grpc.StatusCode.INVALID_ARGUMENT, 400),
    StatusCode.DEADLINE_EXCEEDED: (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    StatusCode.NOT_FOUND: (grpc.StatusCode.NOT_FOUND, 404),
    StatusCode.ALREADY_EXISTS: (grpc.StatusCode.ALREADY_EXISTS, 409),
    StatusCode.PERMISSION_DENIED: (grpc.StatusCode.PERMISSION_DENIED, 403),
    StatusCode.RESOURCE_EXHAUSTED: (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    StatusCode.FAILED_PRECONDITION: (grpc.StatusCode.FAILED_PRECONDITION, 400),
    StatusCode.ABORTED: (grpc.StatusCode.ABORTED, 409),
    StatusCode.OUT_OF_RANGE: (grpc.StatusCode.OUT_OF_RANGE, 400),
    StatusCode.UNIMPLEMENTED: (grpc.StatusCode.UNIMPLEMENTED, 501),
    StatusCode.INTERNAL: (grpc.StatusCode.INTERNAL, 500),
    StatusCode.UNAVAILABLE: (grpc.StatusCode.UNAVAILABLE, 503),
    StatusCode.DATA_LOSS: (grpc.StatusCode.DATA_LOSS, 500),
    StatusCode.UNAUTHENTICATED: (grpc.StatusCode.UNAUTHENTICATED, 401),
}
GRPC_CODES: dict[StatusCode, grpc.StatusCode] = {code: row[0] for code, row in STATUS_TABLE.items()}
HTTP_CODES: dict[StatusCode, int] = {code: row[1] for code, row in STATUS_TABLE.items()}


def as_serving_error(exc: BaseException, api: str) -> ServingError:
    """``exc`` as the status a client sees; anything but a ServingError is a bug, logged as INTERNAL."""
    if isinstance(exc, ServingError):
        return exc
    _log.error("%s failed unexpectedly", api, exc_info=exc)
    return InternalError(f"{type(exc).__name__}: {exc}")


def unimplemented(api: str) -> UnimplementedError:
    """The one answer to Classify/Regress/MultiInference, over gRPC and REST alike."""
    return UnimplementedError(
        f"{api} is not implemented by the gradcam-serving local server; "
        "use Predict with the 'predict' or 'explain' signature"
    )


def safe_text(message: str) -> str:
    """``message`` with anything UTF-8 cannot carry (lone surrogates) replaced, so sending it cannot fail."""
    return message.encode("utf-8", errors="replace").decode("utf-8")


def grpc_status(exc: BaseException, api: str = "RPC") -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and details for ``exc`` (details cut like ``grpc_status_util.cc``)."""
    error = as_serving_error(exc, api)
    message = safe_text(error.message)
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + "...TRUNCATED"
    return GRPC_CODES[error.code], message


def http_status(exc: BaseException, api: str = "REST") -> tuple[int, ServingError]:
    """The HTTP status for ``exc`` and the error whose message goes into ``{"error": ...}`` (not cut)."""
    error = as_serving_error(exc, api)
    return HTTP_CODES[error.code], error


Method = TypeVar("Method", bound=Callable[..., Any])


def rpc_method(api: str) -> Callable[[Method], Method]:
    """Decorate a servicer method ``(self, request, context)`` with the status mapping."""

    def decorate(method: Method) -> Method:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            metrics: Metrics = self.core.metrics
            name = request.model_spec.name if hasattr(request, "model_spec") else ""
            started = time.monotonic()
            metrics.request_started()
            try:
                response = method(self, request, context)
            except Exception as exc:  # noqa: BLE001 - this is the mapping point
                code, message = grpc_status(exc, api)
                metrics.record_request(name, api, code.name)
                context.abort(code, message)
            metrics.record_request(name, api, "OK", latency_s=time.monotonic() - started)
            return response

        return wrapper  # type: ignore[return-value]

    return decorate
