"""``main(argv)``: parse flags, serve until SIGTERM/SIGINT, drain, exit 0.

TensorFlow (pulled in by the tensorflow-serving-api protos) is imported only
after the flags parsed, so ``--help`` and flag errors answer instantly and a
real start costs one TensorFlow import.

A stop signal must work at any moment, and Python runs signal handlers only in
the main thread, between bytecodes: a main thread inside a seconds-long
``Session.run`` (a warmup record) or blocked joining a thread that is in one
runs no handler, and one that runs the handler but goes on loading ignores it.
So the main thread does no work here: importing TensorFlow, loading and warming
up the models run on a startup thread, and the unloading at shutdown on the
server's own thread, while the main thread only waits in short, interruptible
steps. A ``Session.run`` cannot be interrupted, so what is still loading when
the signal comes (at startup, or a new version appearing while serving) is
abandoned: the process flushes its logs and leaves with ``os._exit``, with
the same exit code 0 as a clean shutdown.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from gradcam_serving.errors import ServingError
from gradcam_serving.server._flags import FlagError, parse_flags
from gradcam_serving.server._memory import IdleTrimmer, release_large_buffers_to_os
from gradcam_serving.server._options import ServerOptions

if TYPE_CHECKING:
    from gradcam_serving.server._server import ModelServer

__all__ = ["main"]

_log = logging.getLogger("gradcam_serving.server")
EXIT_OK = 0
EXIT_FLAG_ERROR = 2
EXIT_START_FAILED = 255  # tensorflow_model_server returns -1
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_POLL_SECONDS = 0.1  # how often the waiting main thread looks at the signals that arrived
_TICK_SECONDS = 0.5  # how often a serving process considers trimming its heap
_UNLOAD_SECONDS = 2.0  # after draining, how long Sessions may take to close before the process exits without them


class _Signals:
    """The stop signals received so far.

    The handler only records and logs: it runs in the main thread between any
    two bytecodes, so waiting on a lock the interrupted code may hold (an
    ``Event``'s) could deadlock. A second signal exits at once, without draining.
    """

    def __init__(self) -> None:
        self.received: list[int] = []

    def handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.received.append(signum)
        if len(self.received) == 1:
            _log.info("Received signal %d, shutting down", signum)
            return
        _log.info("Received signal %d again, exiting without waiting", signum)
        _exit_now(EXIT_OK)

    def wait_for(self, event: threading.Event, poll: float = _POLL_SECONDS) -> bool:
        """Wait for ``event`` in short steps; False as soon as a stop signal has arrived."""
        while not self.received:
            if event.wait(poll):
                return True
        return False


class _Startup:
    """``create_server`` (TensorFlow import, model loads, warmup, port binding) on its own thread.

    A daemon thread: when a signal abandons it, nothing at exit waits for it.
    """

    def __init__(self, options: ServerOptions) -> None:
        self.done = threading.Event()
        self._server: ModelServer | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(options,), name="startup", daemon=True).start()

    def _run(self, options: ServerOptions) -> None:
        try:
            from gradcam_serving.server._server import create_server

            self._server, _ = create_server(options)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self._error = exc
        finally:
            self.done.set()

    def result(self) -> ModelServer:
        """The server, once :attr:`done`; raises what ``create_server`` raised."""
        if self._error is not None:
            raise self._error
        assert self._server is not None
        return self._server


def _exit_now(code: int) -> NoReturn:
    """Leave without waiting for threads: a load stuck in ``Session.run`` would otherwise hold the exit."""
    logging.shutdown()  # flushes every handler
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _failed(exc: ServingError) -> int:
    print(f"Failed to start server. Error: {exc.status_string()}", flush=True)
    return EXIT_START_FAILED


def _install(signals: _Signals) -> dict[int, object]:
    """Route SIGTERM and SIGINT to ``signals``; returns the handlers they replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers; an embedding caller handles its own
    return {signum: signal.signal(signum, signals.handle) for signum in _STOP_SIGNALS}


def _serve(server: ModelServer, options: ServerOptions, signals: _Signals) -> None:
    """Answer requests until a stop signal."""
    server.start()
    print(f"Running gRPC ModelServer at {options.host}:{server.port} ...", flush=True)
    if server.rest_port is not None:
        print(f"Exporting HTTP/REST API at:{options.host}:{server.rest_port} ...", flush=True)
    trimmer = IdleTrimmer(server.metrics.activity)
    while not signals.received:
        time.sleep(_TICK_SECONDS)  # a signal's handler runs during the sleep
        trimmer.tick()  # after a burst, freed heap goes back to the OS


def _run(options: ServerOptions, signals: _Signals) -> int:
    startup = _Startup(options)
    if not signals.wait_for(startup.done):
        _log.info("Stopping while the models load: not waiting for the load or warmup in progress")
        _exit_now(EXIT_OK)
    try:
        server = startup.result()
    except ServingError as exc:
        return _failed(exc)
    if not signals.received:
        _serve(server, options, signals)
    if not server.stop(options.grace_period_seconds, unload_timeout=_UNLOAD_SECONDS):
        _log.info("Exiting without waiting for the model load or warmup in progress")
        _exit_now(EXIT_OK)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server like ``tensorflow_model_server ARGS``.

    SIGTERM or SIGINT stops it at any moment: while serving, new requests are
    refused, in-flight ones get ``--grace_period_seconds``, then the models
    unload; a load or warmup still running (at startup or of a new version) is
    abandoned within seconds. A second signal exits at once.

    Args:
        argv: the flags, without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        0 after a stop signal, 2 for a flag error, 255 when the server could not start.
    """
    try:
        options = parse_flags(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except FlagError as exc:
        print(f"tensorflow_model_server: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FLAG_ERROR
    except ServingError as exc:
        return _failed(exc)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname).1s %(name)s] %(message)s")
    release_large_buffers_to_os()  # the server process only: RSS returns to its baseline after large requests
    signals = _Signals()
    previous = _install(signals)
    try:
        return _run(options, signals)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
