"""``main(argv)``: parse flags, serve until SIGTERM/SIGINT, drain, exit 0.

TensorFlow (pulled in by the tensorflow-serving-api protos) is imported only
after the flags parsed, so ``--help`` and flag errors answer instantly and a
real start costs one TensorFlow import.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from gradcam_serving.server._errors import ServingError
from gradcam_serving.server._flags import FlagError, parse_flags
from gradcam_serving.server._memory import IdleTrimmer, release_large_buffers_to_os

__all__ = ["main"]

_log = logging.getLogger("gradcam_serving.server")
EXIT_FLAG_ERROR = 2
EXIT_START_FAILED = 255  # tensorflow_model_server returns -1


def _failed(exc: ServingError) -> int:
    print(f"Failed to start server. Error: {exc.status_string()}", flush=True)
    return EXIT_START_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server like ``tensorflow_model_server ARGS``.

    Args:
        argv: the flags, without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        0 after a clean shutdown, 2 for a flag error, 255 when the server could not start.
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

    shutdown = threading.Event()

    def request_shutdown(signum: int, frame: FrameType | None) -> None:
        del frame
        _log.info("Received signal %d, shutting down", signum)
        shutdown.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, request_shutdown)
    try:
        from gradcam_serving.server._server import create_server

        try:
            server, port = create_server(options)
        except ServingError as exc:
            return _failed(exc)
        server.start()
        print(f"Running gRPC ModelServer at {options.host}:{port} ...", flush=True)
        if server.rest_port is not None:
            print(f"Exporting HTTP/REST API at:{options.host}:{server.rest_port} ...", flush=True)
        trimmer = IdleTrimmer(server.metrics.activity)
        while not shutdown.wait(0.5):
            trimmer.tick()  # after a burst, freed heap goes back to the OS
        server.stop(options.grace_period_seconds)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
