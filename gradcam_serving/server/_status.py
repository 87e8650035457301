"""The one place where server exceptions become gRPC statuses.

Every servicer method is wrapped by :func:`rpc_method`. A :class:`ServingError`
keeps its code and text (cut at 1024 characters with ``...TRUNCATED`` like
``grpc_status_util.cc``); anything else is a bug and becomes INTERNAL. The
wrapper also counts each outcome in :class:`Metrics`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from gradcam_serving.server._errors import Code, ServingError
from gradcam_serving.server._metrics import Metrics

__all__ = ["GRPC_CODES", "MESSAGE_LIMIT", "grpc_status", "rpc_method"]

_log = logging.getLogger("gradcam_serving.server")
MESSAGE_LIMIT = 1024

GRPC_CODES: dict[Code, grpc.StatusCode] = {
    Code.OK: grpc.StatusCode.OK,
    Code.CANCELLED: grpc.StatusCode.CANCELLED,
    Code.UNKNOWN: grpc.StatusCode.UNKNOWN,
    Code.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Code.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    Code.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Code.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Code.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Code.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Code.ABORTED: grpc.StatusCode.ABORTED,
    Code.OUT_OF_RANGE: grpc.StatusCode.OUT_OF_RANGE,
    Code.UNIMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    Code.INTERNAL: grpc.StatusCode.INTERNAL,
    Code.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Code.DATA_LOSS: grpc.StatusCode.DATA_LOSS,
    Code.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
}


def grpc_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and details a client sees for ``exc``."""
    if isinstance(exc, ServingError):
        code, message = GRPC_CODES[exc.code], exc.message
    else:
        code, message = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + "...TRUNCATED"
    return code, message


Method = TypeVar("Method", bound=Callable[..., Any])


def rpc_method(api: str) -> Callable[[Method], Method]:
    """Decorate a servicer method ``(self, request, context)`` with the status mapping."""

    def decorate(method: Method) -> Method:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            metrics: Metrics = self.core.metrics
            name = request.model_spec.name if hasattr(request, "model_spec") else ""
            try:
                response = method(self, request, context)
            except Exception as exc:  # noqa: BLE001 - this is the mapping point
                code, message = grpc_status(exc)
                if not isinstance(exc, ServingError):
                    _log.exception("%s failed unexpectedly", api)
                metrics.record_request(name, api, code.name)
                context.abort(code, message)
            metrics.record_request(name, api, "OK")
            return response

        return wrapper  # type: ignore[return-value]

    return decorate
