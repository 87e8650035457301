"""Packaging: the base install is the thin client, and the client runs with no TensorFlow at all."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "tf-keras", "tensorflow-hub", "tensorflow-serving-api", "keras")


def _name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower()


def test_base_dependencies_are_the_clients_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(r) for r in project["dependencies"]}
    assert not base & set(HEAVY), base
    assert {"grpcio", "protobuf", "numpy"} <= base
    assert {_name(r) for r in project["optional-dependencies"]["tf"]} >= {"tensorflow", "tensorflow-serving-api"}
    assert project["scripts"]["gradcam-serving"] == "gradcam_serving.cli:main"


def test_client_works_where_tensorflow_cannot_be_imported(tmp_path):
    """Block every TF package, then build requests, decode a response and draw an overlay."""
    script = """
import sys
for name in ("tensorflow", "tensorflow_serving", "tf_keras", "tensorflow_hub", "keras"):
    sys.modules[name] = None  # any import of it now raises ImportError
import numpy as np
from gradcam_serving.client import ExplainClient, overlay_png
from gradcam_serving.client import _codec
client = ExplainClient("127.0.0.1:1", "m")
png = overlay_png(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), np.float32))
assert png.startswith(b"\\x89PNG")
client.close()
from gradcam_serving.cli import cli  # predict/explain commands must load without TF too
assert "explain" in cli.commands and "predict" in cli.commands
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
