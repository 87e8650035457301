"""Run ``gradcam-serving`` in a fresh process, as a user's shell does, and tell whether it imported TensorFlow.

A subprocess because what is under test is process-wide: TensorFlow's C++ code
writes to file descriptor 2 directly, and whether TensorFlow was imported at all
cannot be seen from a test process that imported it long ago.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import gradcam_serving

__all__ = ["TF_NOISE", "CliRun", "cli_command", "cli_environment", "run_cli", "start_cli"]

# Whoever imports this module, its subprocesses run the gradcam_serving the tests import.
_SOURCE_ROOT = Path(gradcam_serving.__file__).resolve().parents[1]

# The command line, with a hook that writes whether TensorFlow got imported to the file named first
# (at exit, whatever the exit code; ``os._exit`` skips it, which only ``serve`` uses).
_DRIVER = (
    "import atexit, sys\n"
    "marker = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(marker, 'w').write(str('tensorflow' in sys.modules)))\n"
    "from gradcam_serving.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

# What TensorFlow writes when nobody quiets it: C++ log lines (``I0000 00:00:...``), absl's notice, the
# CUDA stub and CPU-feature notes, and its Python loggers and deprecation warnings in any format.
TF_NOISE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d|cpu_feature_guard|cudart_stub|absl::InitializeLog|^To enable the following"
    r"|WARNING:(tensorflow|absl)|\b[IWEF] (tensorflow|absl)\]|Instructions for updating|is deprecated"
    r"|DeprecationWarning|FutureWarning",
    re.MULTILINE,
)


@dataclass(frozen=True)
class CliRun:
    code: int
    stdout: str
    stderr: str
    imported_tensorflow: bool


def cli_environment() -> dict[str, str]:
    """A plain shell's environment: ``TF_CPP_MIN_LOG_LEVEL`` unset (the test suite sets it), this source first."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SOURCE_ROOT), env.get("PYTHONPATH")]))
    return env


def cli_command(*args: str) -> list[str]:
    """The argv of ``gradcam-serving ARGS`` without the TensorFlow hook (for long-running commands)."""
    return [sys.executable, "-m", "gradcam_serving.cli", *args]


def start_cli(*args: str, marker: Path, stderr: Path) -> subprocess.Popen[str]:
    """``gradcam-serving ARGS`` started in the background with the TensorFlow hook, stderr to a file."""
    with stderr.open("w") as sink:
        return subprocess.Popen([sys.executable, "-c", _DRIVER, str(marker), *args], env=cli_environment(),
                                stdout=subprocess.DEVNULL, stderr=sink, text=True)


def run_cli(*args: str, marker: Path, timeout: float = 600) -> CliRun:
    """``gradcam-serving ARGS`` in a subprocess; ``marker`` is a scratch file for the TensorFlow hook."""
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(marker), *args],
        env=cli_environment(), capture_output=True, text=True, timeout=timeout, check=False,
    )
    return CliRun(done.returncode, done.stdout, done.stderr, marker.read_text() == "True")
