"""Fixtures for the end-to-end tests: one real export of the tiny classifier, served per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gradcam_e2e import LocalServer, local_server


@pytest.fixture(scope="module")
def served(export_v1: Path) -> Iterator[LocalServer]:
    """The local server on an ephemeral loopback port, serving ``export_v1``; one per test module."""
    with local_server(export_v1.parent) as server:
        yield server
