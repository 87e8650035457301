"""Fixtures for the Beam batch tests: the shortcut model's export (see ``batch_data``), built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_data import LABELS, MAX_PIXELS, METHODS, train_shortcut_module


@pytest.fixture(scope="session")
def shortcut_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``BASE/shortcut/1``: the shortcut model exported with two methods and a small pixel limit."""
    from gradcam_serving.exporter import export_model

    root = tmp_path_factory.mktemp("shortcut")
    accuracy = train_shortcut_module(root / "module")
    assert accuracy > 0.9, f"the shortcut model must learn the task first (held-out accuracy {accuracy:.1%})"
    result = export_model(root / "module", root / "models", "shortcut", version=1, labels=list(LABELS),
                          methods=list(METHODS), max_pixels=MAX_PIXELS)
    return result.path
