"""What the benchmarks that measure in fresh processes share: the child's environment and its JSON answer.

Each measure runs in its own process so no cache (Session, oneDNN primitives, imports) carries over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    """This checkout first on the path, TensorFlow's C++ logs off."""
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                TF_CPP_MIN_LOG_LEVEL="3")


def run_child(script: str, *args: str) -> dict:
    """Run ``script`` in a child mode; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=child_env(),
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
