"""TF Serving's REST API on the standard library's HTTP server, over the same :class:`ServingCore`.

:class:`RestApi` is transport-free: ``(http_method, path, body) -> Reply``,
following ``http_rest_api_handler.cc`` and ``http_server.cc``:

* ``POST /v1/models/<m>[/versions/<n>|/labels/<l>]:predict`` (``:classify`` and
  ``:regress`` parse their body, then answer UNIMPLEMENTED as over gRPC);
* ``GET /v1/models/<m>[...]`` (GetModelStatus as JSON) and ``.../metadata``;
* the Prometheus page at the configured path, when monitoring is enabled;
* other ``/v1/`` URLs -> 400 ``Malformed request: <METHOD> <path>``, anything else 404.

Errors become ``{"error": "<message>"}`` with the HTTP status of
``_status.http_status``; every request is counted in :class:`Metrics` with
entrypoint ``REST``. :class:`RestServer` runs it on a
``http.server.HTTPServer`` whose requests go to a pool of
``rest_api_num_threads`` workers, like TF's ``RequestExecutor``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import http.server
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from typing import Any

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from gradcam_serving.errors import InvalidArgumentError, UnknownError
from gradcam_serving.server._core import SIGNATURE_DEF_FIELD, ServingCore
from gradcam_serving.server._json_tensor import (
    encode_outputs, format_error, parse_body, predict_inputs, signature_name,
)
from gradcam_serving.server._manager import ModelRef
from gradcam_serving.server._metrics import REST
from gradcam_serving.server._options import DEFAULT_REST_API_MAX_BODY_BYTES
from gradcam_serving.server._predict import DEFAULT_SIGNATURE
from gradcam_serving.server._prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from gradcam_serving.server._prometheus import render
from gradcam_serving.server._servicer import metadata_response, status_response
from gradcam_serving.server._status import http_status, safe_text, unimplemented

__all__ = ["Reply", "RestApi", "RestServer"]

_log = logging.getLogger("gradcam_serving.server")
_JSON = "application/json"
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I)
_API_PATH = re.compile(r"/v1/.*", re.I)
_INT64_MAX = 2**63 - 1
_DISCARD_LIMIT = 1 << 30  # a refused body up to 1 GiB is drained (64 KiB at a time) so the client reads the 413


@dataclasses.dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, content type and body."""

    status: int
    content_type: str
    body: bytes


@dataclasses.dataclass(frozen=True)
class _Route:
    """What ``ParseModelInfo`` found in the URL; ``method`` is the verb after ``:`` (empty for GET)."""

    http_method: str
    model_name: str = ""
    version: int | None = None
    label: str | None = None
    method: str = ""
    subresource: str = ""
    matched: bool = False

    def ref(self) -> ModelRef:
        return ModelRef(self.model_name, version=self.version, label=self.label)


def _parse_route(http_method: str, path: str) -> _Route:
    """``ParseModelInfo``: the regex match (case-insensitive, as TF's) and the decoded parts."""
    pattern = {"POST": _PREDICTION_PATH, "GET": _STATUS_PATH}.get(http_method)
    match = pattern.fullmatch(path) if pattern else None
    if match is None:
        return _Route(http_method)
    name, version_text, label, fourth = match.groups()
    version = None
    if version_text:
        version = int(version_text)
        if version > _INT64_MAX:
            raise InvalidArgumentError(f"Failed to convert version: {version_text} to numeric.")
    return _Route(
        http_method,
        model_name=urllib.parse.unquote(name or ""),
        version=version,
        label=urllib.parse.unquote(label) if label else None,
        method=fourth or "" if http_method == "POST" else "",
        subresource=fourth or "" if http_method == "GET" else "",
        matched=True,
    )


def _error_body(message: str) -> bytes:
    """``MakeJsonFromStatus``, laid out as rapidjson's pretty writer does."""
    return ('{\n    "error": ' + json.dumps(safe_text(message), ensure_ascii=False) + "\n}").encode("utf-8")


class RestApi:
    """The REST handlers: parse JSON, call the core, encode.

    Args:
        core: the core shared with the gRPC servicers.
        timeout_ms: ``--rest_api_timeout_in_ms``, the deadline of each request (0 = none).
        prometheus_path: where to serve metrics; None = not served.
    """

    def __init__(self, core: ServingCore, *, timeout_ms: int, prometheus_path: str | None) -> None:
        self.core = core
        self.timeout_ms = max(0, timeout_ms)
        self.prometheus_path = prometheus_path

    def handle(self, http_method: str, path: str, body: bytes, headers: Any = None) -> Reply | None:
        """Answer one request; None means no handler is registered for ``path`` (HTTP 404)."""
        if self.prometheus_path is not None and path == self.prometheus_path:
            return Reply(200, PROMETHEUS_CONTENT_TYPE, render(self.core.metrics).encode("utf-8"))
        if not _API_PATH.fullmatch(path):
            return None
        if http_method == "OPTIONS":
            return self._preflight(headers)
        return self._process(http_method, path, body)

    def _preflight(self, headers: Any) -> Reply:
        """A CORS preflight needs an ``Origin`` (``http_server.cc``)."""
        if re.search(r"https?://", (headers or {}).get("Origin", "") or ""):
            return Reply(200, _JSON, b"")
        return Reply(400, _JSON, _error_body("Origin header is missing in CORS preflight"))

    def _process(self, http_method: str, path: str, body: bytes) -> Reply:
        started = time.monotonic()
        self.core.metrics.request_started()
        route = _Route(http_method)
        try:
            route = _parse_route(http_method, path)
            text = self._dispatch(route, path, body)
        except Exception as exc:  # noqa: BLE001 - mapped to a status in _status.http_status
            status, error = http_status(exc, "REST")
            self.core.metrics.record_request(route.model_name, route.method, error.code.name, entrypoint=REST)
            return Reply(status, _JSON, _error_body(error.message))
        self.core.metrics.record_request(
            route.model_name, route.method, "OK", latency_s=time.monotonic() - started, entrypoint=REST)
        return Reply(200, _JSON, text.encode("utf-8"))

    def _dispatch(self, route: _Route, path: str, body: bytes) -> str:
        if route.matched and route.http_method == "POST":
            if route.method == "predict":
                return self._predict(route, body)
            if route.method in ("classify", "regress"):
                return self._classify_or_regress(route, body)
        elif route.matched and route.http_method == "GET":
            if not route.model_name:
                raise InvalidArgumentError("Missing model name in request.")
            if route.subresource == "metadata":
                return self._metadata(route)
            return self._status(route)
        raise InvalidArgumentError(f"Malformed request: {route.http_method} {path}")

    # -- handlers --------------------------------------------------------------------------

    def _predict(self, route: _Route, body: bytes) -> str:
        doc = parse_body(body)
        name = signature_name(doc)
        dtypes = self._input_dtypes(route.ref(), name)
        inputs, request_format = predict_inputs(doc, dtypes)
        result = self.core.predict(
            route.ref(), signature_name=name, inputs=inputs, decode=np.asarray, timeout_ms=self.timeout_ms)
        return encode_outputs(result.outputs, request_format)

    def _input_dtypes(self, ref: ModelRef, name: str) -> dict[str, int]:
        """``GetInfoMap``: the signature's inputs (alias -> dtype), with REST's own not-found text."""
        key = name or DEFAULT_SIGNATURE
        signature = self.core.metadata(ref, [SIGNATURE_DEF_FIELD]).signature_defs.get(key)
        if signature is None:
            raise InvalidArgumentError(f'Serving signature name: "{key}" not found in signature def')
        if not signature.inputs:
            raise InvalidArgumentError(f"Failed to get input map for signature: {name or 'DEFAULT'}")
        return {alias: info.dtype for alias, info in signature.inputs.items()}

    def _classify_or_regress(self, route: _Route, body: bytes) -> str:
        """``FillClassifyRegressRequestFromJson``'s checks, then the core's answer: UNIMPLEMENTED."""
        doc = parse_body(body)
        signature_name(doc)
        examples = doc.get("examples")
        if "examples" not in doc:
            raise format_error(doc, "When method is classify, key 'examples' is expected and was not found")
        if not isinstance(examples, list):
            raise format_error(doc, "Expecting 'examples' value to be an list/array")
        if not examples:
            raise format_error(doc, "'examples' value is an empty array")
        raise unimplemented(route.method.capitalize())

    def _status(self, route: _Route) -> str:
        response = status_response(self.core.status(route.ref()))
        return json_format.MessageToJson(response, always_print_fields_with_no_presence=True)

    def _metadata(self, route: _Route) -> str:
        """TF prints ``model_spec`` and the unpacked ``SignatureDefMap`` separately, with proto field names."""
        response = metadata_response(self.core.metadata(route.ref(), [SIGNATURE_DEF_FIELD]))
        options = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signatures)
        document = {
            "model_spec": json_format.MessageToDict(response.model_spec, **options),
            "metadata": {SIGNATURE_DEF_FIELD: json_format.MessageToDict(signatures, **options)},
        }
        return json.dumps(document, indent=2)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Reads the request, asks :class:`RestApi`, writes the reply (one request per connection)."""

    server: _PooledHTTPServer
    server_version = "gradcam-serving"

    def _serve(self) -> None:
        length = self._content_length()
        if length is None:
            reply = Reply(400, _JSON, _error_body(
                f"Invalid Content-Length header: {self.headers.get('Content-Length')!r}; expected a byte count"))
        elif length > self.server.max_body_bytes:
            reply = Reply(413, _JSON, _error_body(
                f"Request body of {length} bytes exceeds the server's limit of {self.server.max_body_bytes} bytes "
                "(--rest_api_max_body_bytes)"))
            self._discard(length)
        else:
            body = self.rfile.read(length) if length > 0 else b""
            path = urllib.parse.urlsplit(self.path).path
            reply = self.server.api.handle(self.command, path, body, self.headers)
        if reply is None:
            reply = Reply(404, "text/html", b"<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD></HTML>")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _content_length(self) -> int | None:
        """The declared body size; None when the header is not one non-negative integer."""
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return 0
        if len(set(values)) != 1 or not values[0].strip().isdigit():
            return None
        return int(values[0].strip())

    def _discard(self, length: int) -> None:
        """Read a refused body in small pieces and drop it: the client, still sending, then gets the 413
        instead of a reset connection. Memory stays at one piece; beyond the cap the connection just closes."""
        remaining = min(length, _DISCARD_LIMIT)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                return
            remaining -= len(chunk)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        _log.debug("REST %s " + format, self.address_string(), *args)


class _PooledHTTPServer(http.server.HTTPServer):
    """``HTTPServer`` whose requests run on a bounded thread pool instead of a thread each."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: RestApi, threads: int, max_body_bytes: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.api = api
        self.max_body_bytes = max_body_bytes
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rest")
        self._inflight: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        future = self._pool.submit(self._process, request, client_address)
        with self._lock:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._inflight.discard(future)

    def _process(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - socketserver's own reporting path
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def drain(self, grace: float) -> None:
        """Let in-flight requests finish for ``grace`` seconds, then stop the pool."""
        with self._lock:
            pending = set(self._inflight)
        concurrent.futures.wait(pending, timeout=max(0.0, grace))
        self._pool.shutdown(wait=False, cancel_futures=True)


class RestServer:
    """The REST port: bound on construction, served by :meth:`start`, closed by :meth:`stop`.

    Args:
        api: the handlers. host / port: where to listen; port 0 picks a free one (see ``port``).
        threads: ``--rest_api_num_threads``.
        max_body_bytes: ``--rest_api_max_body_bytes``; larger bodies get 413 and are not buffered.
    """

    def __init__(self, api: RestApi, *, host: str, port: int, threads: int,
                 max_body_bytes: int = DEFAULT_REST_API_MAX_BODY_BYTES) -> None:
        bind_host = "::" if host in ("[::]", "::") else host.strip("[]")
        try:
            self._http = _PooledHTTPServer((bind_host, port), api, threads, max_body_bytes)
        except OSError as exc:
            raise UnknownError(f"Failed to start HTTP Server at {host}:{port}: {exc.strerror or exc}") from exc
        self.port: int = self._http.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._http.serve_forever, name="rest-accept", daemon=True)
        self._thread.start()

    def stop(self, grace: float) -> None:
        """Stop accepting, let in-flight requests finish within ``grace`` seconds, close the socket."""
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join()
        self._http.drain(grace)
        self._http.server_close()
