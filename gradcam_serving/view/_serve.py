"""Run the view app with uvicorn on a socket bound here, so the printed URL names the real port."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["ViewServer", "bind", "running", "serve_forever", "warm_up"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 picks a free one).

    Raises:
        OSError: the port is taken or the host is not an interface of this machine, said in words.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror} (pick another --port, or --port 0)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged (it may be replaced after start)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _log_lines() -> None:
    """The view's failures as one plain line each on stderr (its logger), uvicorn's own at warning level."""
    logger = logging.getLogger("gradcam_serving.view")
    if not logger.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("view: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)


class ViewServer:
    """uvicorn serving ``app`` on ``sock``; :meth:`run` blocks, :meth:`stop` asks it to finish."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import uvicorn

        _log_lines()
        self.sock = sock
        self.url = url_of(sock)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)

    def run(self) -> None:
        self._server.run(sockets=[self.sock])

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def stop(self) -> None:
        self._server.should_exit = True


@contextmanager
def running(app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> Iterator[ViewServer]:
    """Serve ``app`` from a thread for the length of the block (tests, benchmarks); yields the server."""
    import time

    server = ViewServer(app, bind(host, port))
    thread = threading.Thread(target=server.run, name="gradcam-serving-view", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the view server did not start on {server.url}")
        time.sleep(0.02)
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout)
        server.sock.close()


def warm_up(models: Sequence[Any], say: Callable[[str], None]) -> threading.Thread:
    """Run every export's methods once in the background: the first real image then answers at full speed."""

    def work() -> None:
        for model in models:
            warm = getattr(model, "warm_up", None)
            if warm is None:
                continue
            try:
                warm()
            except Exception as exc:  # noqa: BLE001 - the page shows the same failure on the first image
                say(f"warming up {model.name} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        say("ready")

    thread = threading.Thread(target=work, name="gradcam-serving-view-warmup", daemon=True)
    thread.start()
    return thread


def serve_forever(app: Any, host: str, port: int, say: Callable[[str], None]) -> None:
    """Bind, print the URL, serve until Ctrl-C."""
    sock = bind(host, port)
    server = ViewServer(app, sock)
    wide = "" if host in ("127.0.0.1", "localhost", "::1") else f" (listening on {host}: other machines can use it)"
    say(f"gradcam-serving view: {server.url}{wide}; Ctrl-C stops it")
    try:
        server.run()
    finally:
        sock.close()
