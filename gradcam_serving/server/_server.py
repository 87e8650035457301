"""The gRPC (and REST) server: lifecycle around :class:`ServingCore`.

``create_server(options) -> (server, port)`` loads the configured models (a
failure raises, as TF Serving refuses to start) and binds the gRPC port and,
with ``rest_api_port``, the REST port; ``start()`` begins serving both,
``wait()`` blocks, ``stop(grace)`` stops accepting requests on both, lets
in-flight ones finish within ``grace`` seconds, then unloads. Unloading runs on
its own thread, so ``stop(..., unload_timeout=T)`` can give up on it: it waits
for a version that is loading or warming up, and a ``Session.run`` cannot be
interrupted.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from gradcam_serving.errors import ServingError, UnknownError
from gradcam_serving.server._config import read_model_server_config
from gradcam_serving.server._core import ServingCore
from gradcam_serving.server._metrics import Metrics
from gradcam_serving.server._options import ServerOptions
from gradcam_serving.server._rest import RestApi, RestServer
from gradcam_serving.server._servicer import ModelServicer, PredictionServicer
from gradcam_serving.server._tls import server_credentials

__all__ = ["HEALTH_SERVICES", "ModelServer", "create_server"]

_log = logging.getLogger("gradcam_serving.server")
HEALTH_SERVICES = (
    "",
    "tensorflow.serving.PredictionService",
    "tensorflow.serving.ModelService",
    "PredictionService",
    "ModelService",
)


class ModelServer:
    """A running TF Serving stand-in; build it with :func:`create_server`.

    Attributes:
        core: the transport-free core, shared by the gRPC servicers and the REST handlers.
        port: the bound gRPC port.
        rest_port: the bound REST port, or None without ``rest_api_port``.
    """

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.core = ServingCore(options)
        try:
            self.core.start()
        except BaseException:
            self.core.stop()  # close the Sessions and batch threads of versions that did load
            raise
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads, thread_name_prefix="grpc"),
            options=options.grpc_server_options(),
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(self.core), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(self.core), self._grpc)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._grpc)
        address = f"{options.host}:{options.port}"
        try:
            self.port = self._bind_grpc(address)
            self._rest = self._bind_rest()
        except RuntimeError as exc:
            self.core.stop()
            raise UnknownError(f"Failed to BuildAndStart gRPC server: cannot bind {address}") from exc
        except ServingError:
            self.core.stop()
            raise
        self.rest_port: int | None = self._rest.port if self._rest is not None else None
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._unloader: threading.Thread | None = None
        self._unload_error: BaseException | None = None
        self._config_thread: threading.Thread | None = None

    @property
    def metrics(self) -> Metrics:
        return self.core.metrics

    def _bind_grpc(self, address: str) -> int:
        """The gRPC port, over TLS when ``ssl_config`` is set (``BuildServerCredentialsFromSSLConfigFile``)."""
        if self.options.ssl_config is None:
            return self._grpc.add_insecure_port(address)
        return self._grpc.add_secure_port(address, server_credentials(self.options.ssl_config))

    def _bind_rest(self) -> RestServer | None:
        """The REST port over the same core, when ``rest_api_port`` is set (TF: non-zero flag)."""
        options = self.options
        if options.rest_api_port is None:
            return None
        api = RestApi(self.core, timeout_ms=options.rest_api_timeout_in_ms, prometheus_path=options.prometheus_path)
        return RestServer(api, host=options.host, port=options.rest_api_port, threads=options.rest_api_num_threads,
                          max_body_bytes=options.rest_api_max_body_bytes)

    def start(self) -> None:
        """Start answering RPCs (and polling the config file if asked to)."""
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
            _log.info("Exporting HTTP/REST API at:%s:%d ...", self.options.host, self._rest.port)
        for service in HEALTH_SERVICES:
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds > 0:
            self._config_thread = threading.Thread(target=self._poll_config, name="config-poll", daemon=True)
            self._config_thread.start()
        _log.info("Running gRPC ModelServer at %s:%d ...", self.options.host, self.port)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` finished; True if it did within ``timeout``."""
        return self._stopped.wait(timeout)

    def stop(self, grace: float | None = None, *, unload_timeout: float | None = None) -> bool:
        """Refuse new RPCs, let in-flight ones finish for ``grace`` seconds, then unload.

        Unloading waits for a version that is still loading or warming up, which
        can take minutes; ``unload_timeout`` bounds that wait so that the caller
        can exit the process without it.

        Args:
            grace: seconds; ``None`` uses ``options.grace_period_seconds``.
            unload_timeout: seconds to wait for the unload; ``None`` waits until it is done.

        Returns:
            True once everything is unloaded; False when ``unload_timeout`` passed first
            (the unload goes on in the background and :meth:`wait` still waits for it).
        """
        with self._stop_lock:
            if self._unloader is None:
                self._drain(self.options.grace_period_seconds if grace is None else grace)
                self._unloader = threading.Thread(target=self._unload, name="unload", daemon=True)
                self._unloader.start()
        self._unloader.join(unload_timeout)
        if self._unloader.is_alive():
            _log.warning("Unloading did not finish within %s s: a model version is still loading or warming up",
                         unload_timeout)
            return False
        if self._unload_error is not None:
            raise self._unload_error
        return True

    def _drain(self, grace: float) -> None:
        """Stop accepting on both ports and wait up to ``grace`` seconds for in-flight requests."""
        self._health.enter_graceful_shutdown()
        grpc_stopped = self._grpc.stop(grace)
        if self._rest is not None:
            self._rest.stop(grace)
        grpc_stopped.wait()

    def _unload(self) -> None:
        try:
            self.core.stop()
        except BaseException as exc:  # noqa: BLE001 - raised again by stop() in the caller's thread
            self._unload_error = exc
            return
        self._stopped.set()
        _log.info("Server stopped")

    def _poll_config(self) -> None:
        last = self.options.models
        while not self._stopped.wait(self.options.model_config_file_poll_wait_seconds):
            try:
                models = read_model_server_config(self.options.model_config_file)
                if models != last:
                    self.core.reload_config(models)
                    last = models
            except ServingError as exc:
                _log.error("Failed to reload ModelServerConfig file: %s", exc.message)


def create_server(options: ServerOptions) -> tuple[ModelServer, int]:
    """Load the models and bind the port; call ``start()`` on the result.

    Raises:
        ServingError: a model failed to load (UNKNOWN ``N servable(s) did not become
            available: ...``), a label is invalid, or the port cannot be bound.
    """
    server = ModelServer(options)
    return server, server.port
