"""TensorFlow's errors as the statuses TF Serving answers with.

TensorFlow's own ``OpError`` already carries a canonical status code, which
:func:`from_tf_error` keeps, as TF Serving does when it returns a
``Session::Run`` status unchanged. The core (servables, warmup) uses these and
knows nothing about gRPC; ``_status.py`` puts the result on the wire.
"""

from __future__ import annotations

from gradcam_serving.errors import InvalidArgumentError, ServingError, StatusCode, UnknownError, rpc_error_for_code

__all__ = ["from_tf_error", "from_undecodable"]


def from_tf_error(exc: BaseException) -> ServingError:
    """Turn a ``tf.errors.OpError`` into the :class:`ServingError` of the same code and text.

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
            return rpc_error_for_code(StatusCode(error_code), message)
        except ValueError:
            pass
    return UnknownError(_text(str(exc)) or type(exc).__name__)


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
    return InvalidArgumentError(bytes(raw).decode("utf-8", errors="replace") or str(exc))
