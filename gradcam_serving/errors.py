"""One exception tree for the whole project.

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
    ├── server.ServingError          (gradcam_serving.server) a request or load failed inside the
    │                                local server; carries TF Serving's code and exact text
    └── RpcError                     a gRPC call failed (client side); carries .code, .details
        ├── InvalidArgumentError     INVALID_ARGUMENT
        ├── NotFoundError            NOT_FOUND
        ├── FailedPreconditionError  FAILED_PRECONDITION
        ├── UnavailableError         UNAVAILABLE
        ├── DeadlineExceededError    DEADLINE_EXCEEDED
        ├── ResourceExhaustedError   RESOURCE_EXHAUSTED
        └── UnimplementedError       UNIMPLEMENTED

:func:`readable_error` turns any of these, or a TensorFlow error, into the one
sentence a person reads (the CLI's ``error:`` line, a web page's message).

This module imports nothing heavy (no TensorFlow, no grpc) so the thin client
can share it.
"""

from __future__ import annotations

import re

__all__ = [
    "ConfigError",
    "DeadlineExceededError",
    "ExportError",
    "FailedPreconditionError",
    "GradcamServingError",
    "GradcamServingWarning",
    "InvalidArgumentError",
    "LayerNotFoundError",
    "ModelSourceError",
    "NotFoundError",
    "ResourceExhaustedError",
    "RpcError",
    "ServingCheckError",
    "UnavailableError",
    "UnimplementedError",
    "UnsupportedModelError",
    "VersionExistsError",
    "readable_error",
    "rpc_error_for_code",
]


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


class RpcError(GradcamServingError):
    """A call to a TF Serving compatible server failed.

    Attributes:
        code: the ``grpc.StatusCode`` name, e.g. ``"NOT_FOUND"``.
        details: the server's message, unchanged.
    """

    code_name: str = "UNKNOWN"

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


class InvalidArgumentError(RpcError):
    code_name = "INVALID_ARGUMENT"


class NotFoundError(RpcError):
    code_name = "NOT_FOUND"


class FailedPreconditionError(RpcError):
    code_name = "FAILED_PRECONDITION"


class UnavailableError(RpcError):
    code_name = "UNAVAILABLE"


class DeadlineExceededError(RpcError):
    code_name = "DEADLINE_EXCEEDED"


class ResourceExhaustedError(RpcError):
    code_name = "RESOURCE_EXHAUSTED"


class UnimplementedError(RpcError):
    code_name = "UNIMPLEMENTED"


_RPC_ERRORS: dict[str, type[RpcError]] = {
    cls.code_name: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        FailedPreconditionError,
        UnavailableError,
        DeadlineExceededError,
        ResourceExhaustedError,
        UnimplementedError,
    )
}


def rpc_error_for_code(code: str, details: str) -> RpcError:
    """Build the most specific :class:`RpcError` for a status code name."""
    return _RPC_ERRORS.get(code, RpcError)(code, details)


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
