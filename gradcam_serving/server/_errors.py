"""Server-side errors: a status code plus TF Serving's exact message.

The core (manager, servables, batching, warmup) raises :class:`ServingError`
subclasses and knows nothing about gRPC. Each error carries a :class:`Code`
whose numbers are the canonical status codes shared by TensorFlow, absl and
gRPC, so the gRPC front end (``_status.py``) and a later REST front end can each
translate them in one table. TensorFlow's own ``OpError`` already carries such a
number, which :func:`from_tf_error` keeps, as TF Serving does when it returns a
``Session::Run`` status unchanged.
"""

from __future__ import annotations

import enum

from gradcam_serving.errors import GradcamServingError

__all__ = [
    "Code",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "ServingError",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "from_tf_error",
    "from_undecodable",
    "unimplemented",
]


class Code(enum.IntEnum):
    """Canonical status codes (absl/TF/gRPC share these numbers)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class ServingError(GradcamServingError):
    """An error the server reports to a client as a status.

    Attributes:
        code: the status code sent on the wire.
        message: the exact text sent as the status details.
    """

    code: Code = Code.UNKNOWN

    def __init__(self, message: str, *, code: Code | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def status_string(self) -> str:
        """The error as absl's ``Status::ToString`` prints it, e.g. ``NOT_FOUND: ...``."""
        return f"{self.code.name}: {self.message}"


class InvalidArgument(ServingError):
    code = Code.INVALID_ARGUMENT


class NotFound(ServingError):
    code = Code.NOT_FOUND


class FailedPrecondition(ServingError):
    code = Code.FAILED_PRECONDITION


class Unavailable(ServingError):
    code = Code.UNAVAILABLE


class Unimplemented(ServingError):
    code = Code.UNIMPLEMENTED


class DeadlineExceeded(ServingError):
    code = Code.DEADLINE_EXCEEDED


class DataLoss(ServingError):
    code = Code.DATA_LOSS


class Internal(ServingError):
    code = Code.INTERNAL


class Unknown(ServingError):
    code = Code.UNKNOWN


def from_tf_error(exc: BaseException) -> ServingError:
    """Turn a ``tf.errors.OpError`` into a :class:`ServingError` with the same code and text.

    Python's ``Session.run`` re-raises C++ errors with a rewritten message
    (``Graph execution error:`` plus interpolated node names); the untouched C++
    status, which TF Serving returns, is the chained ``__context__``, so that one
    is preferred. Anything that is not an ``OpError`` becomes UNKNOWN.
    """
    original = exc.__context__
    if isinstance(getattr(original, "message", None), str) and getattr(original, "error_code", None) == getattr(
        exc, "error_code", object()
    ):
        exc = original  # type: ignore[assignment]
    error_code = getattr(exc, "error_code", None)
    message = _text(getattr(exc, "message", None))
    if isinstance(error_code, int) and message is not None:
        try:
            return ServingError(message, code=Code(error_code))
        except ValueError:
            pass
    return Unknown(_text(str(exc)) or type(exc).__name__)


def _text(value: object) -> str | None:
    """A message as text; bytes (or a str holding lone surrogates) are decoded with replacement characters."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace") \
            if any("\ud800" <= c <= "\udfff" for c in value) else value
    return None


def from_undecodable(exc: UnicodeDecodeError) -> ServingError:
    """An error whose message TensorFlow's Python wrapper could not decode as UTF-8.

    The wrapper raises ``UnicodeDecodeError`` instead of the ``OpError`` and so
    drops the status code; the undecodable bytes always come from a request
    (a kernel or an assert echoing input strings), so the error is the
    caller's: INVALID_ARGUMENT, with the bytes shown as replacement characters.
    """
    raw = exc.object if isinstance(exc.object, (bytes, bytearray)) else b""
    return InvalidArgument(bytes(raw).decode("utf-8", errors="replace") or str(exc))


def unimplemented(api: str) -> Unimplemented:
    """The one answer to Classify/Regress/MultiInference, over gRPC and REST alike."""
    return Unimplemented(
        f"{api} is not implemented by the gradcam-serving local server; "
        "use Predict with the 'predict' or 'explain' signature"
    )
