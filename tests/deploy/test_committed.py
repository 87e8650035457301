"""The committed ``serving_config/`` folder equals a fresh generation, so it never drifts."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[2] / "serving_config"


def _regenerate_module():
    spec = importlib.util.spec_from_file_location("serving_config_regenerate", FOLDER / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_equal_a_fresh_generation():
    expected = _regenerate_module().demo_files()
    stale = [name for name, text in expected.items() if (FOLDER / name).read_text(encoding="utf-8") != text]
    assert not stale, f"run `python serving_config/regenerate.py`; stale: {stale}"


def test_folder_holds_only_generated_files_and_the_script():
    expected = set(_regenerate_module().demo_files()) | {"regenerate.py"}
    present = {path.name for path in FOLDER.iterdir() if path.name != "__pycache__"}
    assert present == expected


def test_docker_script_is_executable_and_serves_the_demo_model():
    assert os.access(FOLDER / "docker-run.sh", os.X_OK)
    assert 'name: "shapes"' in (FOLDER / "models.config").read_text()
    assert 'base_path: "/models/shapes"' in (FOLDER / "models.config").read_text()
