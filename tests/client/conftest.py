"""Fixtures for the client tests: a real gRPC server on a free loopback port.

The fake TF Serving behind it lives in ``client_fakes.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from client_fakes import FAST_RETRY, MODEL, Backend, Serving, start_server

from gradcam_serving.client import ExplainClient


@pytest.fixture(scope="module")
def serving() -> Iterator[Serving]:
    """One fake server per test module, stopped in teardown."""
    backend = Backend()
    server, port = start_server(backend)
    yield Serving(target=f"127.0.0.1:{port}", port=port, backend=backend)
    server.stop(None)


@pytest.fixture
def fake(serving: Serving) -> Serving:
    """The module's server with a fresh backend for this test."""
    serving.backend.reset()
    return serving


@pytest.fixture
def client(fake: Serving) -> Iterator[ExplainClient]:
    """A blocking client on the fake server with quick retries; closed in teardown."""
    with ExplainClient(fake.target, MODEL, timeout=5.0, retries=FAST_RETRY) as opened:
        yield opened
