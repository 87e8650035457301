"""One exception tree for the whole project, and the status vocabulary it speaks.

Every error this package raises on purpose derives from
:class:`GradcamServingError`, so callers can catch one type. The tree::

    GradcamServingError
    ├── ExportError                  the exporter refused or failed
    │   ├── ModelSourceError         path missing, format unknown, load failed
    │   ├── LayerNotFoundError       --layer names no candidate (lists the closest)
    │   ├── UnsupportedModelError    no 4-D tensor, output not class scores, refused op
    │   ├── VersionExistsError       BASE/NAME/VERSION exists and --overwrite not given
    │   └── ServingCheckError        the export failed TF Serving's loading path
    ├── ConfigError                  a server flag or config file is invalid
    │   └── server.FlagError         (gradcam_serving.server) a bad command-line flag
    └── ServingError (= RpcError)    an error with a canonical status code: a gRPC call that
        │                            failed (client side) or a request or load the local server
        │                            refuses with TF Serving's code and exact text (server side);
        │                            carries .code (a StatusCode), .code_name, .message (= .details)
        ├── InvalidArgumentError     INVALID_ARGUMENT
        ├── NotFoundError            NOT_FOUND
        ├── FailedPreconditionError  FAILED_PRECONDITION
        ├── UnavailableError         UNAVAILABLE
        ├── DeadlineExceededError    DEADLINE_EXCEEDED
        ├── ResourceExhaustedError   RESOURCE_EXHAUSTED
        ├── UnimplementedError       UNIMPLEMENTED
        ├── DataLossError            DATA_LOSS
        ├── InternalError            INTERNAL
        └── UnknownError             UNKNOWN

A server-side and a client-side error of the same code are the same class
(:func:`rpc_error_for_code` picks it); a code without a class of its own
(CANCELLED, ABORTED, ...) is a plain :class:`ServingError` carrying that code.

:class:`StatusCode` and :class:`VersionState` are the one definition of TF
Serving's two status enums; the wire messages, the server and the client all
derive from them. :class:`VersionState` lives here beside :class:`StatusCode`
because every ``ModelVersionStatus`` pairs the two.

:func:`readable_error` turns any of these, or a TensorFlow error, into the one
sentence a person reads (the CLI's ``error:`` line, a web page's message).

This module imports nothing heavy (no TensorFlow, no grpc, no protobuf) so the
thin client can share it.
"""

from __future__ import annotations

import enum
import re

__all__ = [
    "ConfigError",
    "DataLossError",
    "DeadlineExceededError",
    "ExportError",
    "FailedPreconditionError",
    "GradcamServingError",
    "GradcamServingWarning",
    "InternalError",
    "InvalidArgumentError",
    "LayerNotFoundError",
    "ModelSourceError",
    "NotFoundError",
    "ResourceExhaustedError",
    "RpcError",
    "ServingCheckError",
    "ServingError",
    "StatusCode",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "UnsupportedModelError",
    "VersionExistsError",
    "VersionState",
    "readable_error",
    "rpc_error_for_code",
]


class StatusCode(enum.IntEnum):
    """The canonical status codes; absl, TensorFlow (``tensorflow.error.Code``) and gRPC share these numbers.

    ``str()`` is the name, as absl's ``StatusCodeToString`` prints it.
    """

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

    def __str__(self) -> str:
        return self.name


class VersionState(enum.IntEnum):
    """Where a model version is in its lifecycle: TF Serving's ``ModelVersionStatus.State`` numbers."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50

    def __str__(self) -> str:
        return self.name


class GradcamServingError(Exception):
    """Root of every error raised on purpose by gradcam-serving."""


class GradcamServingWarning(UserWarning):
    """Warnings of our own; the test suite turns them into errors."""


class ExportError(GradcamServingError):
    """The exporter could not produce a servable version folder."""


class ModelSourceError(ExportError):
    """The model source is missing, of an unknown kind, or failed to load."""


class LayerNotFoundError(ExportError):
    """The requested target layer matches no candidate tensor."""

    def __init__(self, message: str, *, requested: str, suggestions: list[str]) -> None:
        super().__init__(message)
        self.requested = requested
        self.suggestions = list(suggestions)


class UnsupportedModelError(ExportError):
    """The model cannot be explained or served: no spatial tensor, bad output, refused op."""


class VersionExistsError(ExportError):
    """The target version folder exists and overwriting was not asked for."""


class ServingCheckError(ExportError):
    """The written SavedModel failed the TF Serving loading-path check."""


class ConfigError(GradcamServingError):
    """A server flag, model config or batching parameters file is invalid."""


class _CodeName:
    """``code_name`` on a class and on an instance alike: the name of its ``code``."""

    def __get__(self, instance: ServingError | None, owner: type[ServingError]) -> str:
        return (owner if instance is None else instance).code.name


class ServingError(GradcamServingError):
    """An error with a canonical status code, on either end of a TF Serving call.

    The client raises it for a failed call (the server's code and details
    unchanged); the local server raises it for a request or load it refuses,
    with TF Serving's code and exact text, and its front ends put exactly
    those on the wire. ``str()`` is absl's ``Status::ToString``
    (``NOT_FOUND: ...``).

    Attributes:
        code: the status code.
        code_name: its name, e.g. ``"NOT_FOUND"`` (also readable on the class).
        message: the exact text, as sent or received.
        details: the same text, under gRPC's name for it.
    """

    code: StatusCode = StatusCode.UNKNOWN
    code_name = _CodeName()

    def __init__(self, message: str, *, code: StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = StatusCode(code)

    @property
    def details(self) -> str:
        return self.message

    def status_string(self) -> str:
        """The error as absl's ``Status::ToString`` prints it, e.g. ``NOT_FOUND: ...``."""
        return f"{self.code.name}: {self.message}"

    def __str__(self) -> str:
        return self.status_string()


RpcError = ServingError
"""The client's name for :class:`ServingError` (a failed gRPC call), kept because the README uses it."""


class InvalidArgumentError(ServingError):
    """The request itself is wrong: malformed, or asking for what the model lacks (a class out of range)."""

    code = StatusCode.INVALID_ARGUMENT


class NotFoundError(ServingError):
    """No such model or version is loaded (or not yet)."""

    code = StatusCode.NOT_FOUND


class FailedPreconditionError(ServingError):
    """The servable cannot answer the request as sent, e.g. the export lacks the signature."""

    code = StatusCode.FAILED_PRECONDITION


class UnavailableError(ServingError):
    """The server cannot be reached, is stopping, or its batch queue is full: worth a retry."""

    code = StatusCode.UNAVAILABLE


class DeadlineExceededError(ServingError):
    """The call did not finish within its deadline."""

    code = StatusCode.DEADLINE_EXCEEDED


class ResourceExhaustedError(ServingError):
    """A message or request went over a limit of the server or the channel."""

    code = StatusCode.RESOURCE_EXHAUSTED


class UnimplementedError(ServingError):
    """The API (Classify, Regress, MultiInference, or a service not served) is not implemented."""

    code = StatusCode.UNIMPLEMENTED


class DataLossError(ServingError):
    """A file is corrupt: a SavedModel, or warmup records that are not TFRecords."""

    code = StatusCode.DATA_LOSS


class InternalError(ServingError):
    """A bug: the server failed in a way it did not foresee."""

    code = StatusCode.INTERNAL


class UnknownError(ServingError):
    """A failure without a more specific code: a model that did not load, a server that did not start."""

    code = StatusCode.UNKNOWN


# The classes defined just above, one per code.
_ERRORS_BY_CODE: dict[StatusCode, type[ServingError]] = {cls.code: cls for cls in ServingError.__subclasses__()}


def rpc_error_for_code(code: StatusCode | str, details: str) -> ServingError:
    """The most specific :class:`ServingError` for a status code (a :class:`StatusCode` or its name).

    A code without a class of its own gives a plain :class:`ServingError`
    carrying it; a name that is no canonical code (a newer gRPC's) is UNKNOWN.
    """
    status = code if isinstance(code, StatusCode) else StatusCode.__members__.get(code, StatusCode.UNKNOWN)
    cls = _ERRORS_BY_CODE.get(status)
    return cls(details) if cls is not None else ServingError(details, code=status)


# -- one readable sentence -------------------------------------------------------------------------

_FRAME = re.compile(r'^(File "|Traceback \(most recent call last\)|in user code:|\^+$|Detected at node .* defined at)')
_ERROR_PREFIX = re.compile(r"^(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Warning): ")
# TensorFlow's node trailer ("\t [[{{function_node __inference_run_7}}{{node check/Assert}}]]") and op suffix.
_GRAPH_TRAILER = re.compile(r"\s*\[\[\{\{.*?\}\}\]\]|\s*\[Op:[^\]]*\]")
# The first line of every Session error raised through TensorFlow's Python wrapper: says nothing of the cause.
_GRAPH_HEADER = "Graph execution error:"
_ASSERTION = "assertion failed: "
_NUMBERS = re.compile(r"^[-+0-9.eE\s\[\]]*(\.\.\.)?$")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([),;.])")


def readable_error(error: BaseException | str) -> str:
    """The message of ``error`` as one line a person can read.

    * Autograph and eager TensorFlow errors carry frames ("in user code:",
      ``File "..."``, "Detected at node ... defined at"): the informative line is
      the last one, without its ``ErrorType:`` prefix.
    * TensorFlow's graph trailers go: ``[[{{function_node ...}}{{node ...}}]]`` and
      ``[Op:...]`` name graph internals, not the input.
    * A ``tf.debugging.Assert`` message (``assertion failed: [text] [values] ...``)
      becomes a sentence: text fragments lose their brackets, a scalar value too,
      a vector keeps them (``got shape [2 40 56 1]``).

    Text before it (an RPC status code, ``INVALID_ARGUMENT: ``) is kept. Servers must
    not use this on the status they send: TF Serving's clients see its exact text.
    """
    text = error if isinstance(error, str) else str(error)
    lines = [line.strip() for line in _GRAPH_TRAILER.sub("", text).strip().splitlines()
             if line.strip() and line.strip() != _GRAPH_HEADER]
    if not lines:
        return error if isinstance(error, str) else type(error).__name__
    line = lines[0]
    if len(lines) > 1 and any(_FRAME.match(candidate) for candidate in lines):
        informative = [candidate for candidate in lines if not _FRAME.match(candidate)]
        line = _ERROR_PREFIX.sub("", informative[-1]) if informative else type(error).__name__
    return _assertion_as_sentence(line)


def _assertion_as_sentence(line: str) -> str:
    head, found, fragments = line.partition(_ASSERTION)
    fragments = fragments.strip()
    if not found or not (fragments.startswith("[") and fragments.endswith("]")):
        return line
    words = [_fragment(part.strip()) for part in fragments[1:-1].split("] [")]
    return head + _SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(word for word in words if word))


def _fragment(part: str) -> str:
    """A text fragment as it is; values bare when one, bracketed when several."""
    if _NUMBERS.match(part) and any(ch.isdigit() for ch in part) and len(part.split()) > 1:
        return f"[{part}]"
    return part
