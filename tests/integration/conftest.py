"""Fixtures for the end-to-end tests: one real export of the tiny classifier, served per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gradcam_e2e import InProcess, LocalServer, export_tiny, local_server


@pytest.fixture(scope="session")
def export_v1(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``BASE/clf/1``: the tiny hub classifier exported with labels (read-only; copy it to change it)."""
    return export_tiny(tiny_models, tmp_path_factory.mktemp("e2e_base"))


@pytest.fixture(scope="session")
def in_process(export_v1: Path) -> InProcess:
    return InProcess(export_v1)


@pytest.fixture(scope="module")
def served(export_v1: Path) -> Iterator[LocalServer]:
    """The local server on an ephemeral loopback port, serving ``export_v1``; one per test module."""
    with local_server(export_v1.parent) as server:
        yield server
