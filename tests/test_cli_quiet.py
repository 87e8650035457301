"""Every command, run as in a plain shell (``TF_CPP_MIN_LOG_LEVEL`` unset), prints no TensorFlow noise.

One tiny export is written once per module by the ``export`` command itself and
reused; one ``serve`` process serves it to ``predict`` and ``explain``. A
command whose full run is expensive may fail on purpose, once TensorFlow is
imported. Adding a command: add a :class:`Case` to ``CASES`` (a test fails
until every registered command has one).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_subprocess import TF_NOISE, CliRun, cli_command, cli_environment, run_cli, start_cli
from gradcam_serving.cli import cli

MODEL = "clf"


@dataclass(frozen=True)
class Paths:
    hub_module: str
    export: str  # BASE/clf/1, written by the export command
    images: str  # a folder with one PNG
    image: str
    scratch: str
    server: str  # HOST:PORT of the serve process


@dataclass(frozen=True)
class Case:
    args: Callable[[Paths], list[str]]
    own_output: str  # a regex the command's stdout + stderr must match: its own words still appear
    imports_tensorflow: bool = True


CASES: dict[str, Case] = {
    "inspect": Case(lambda p: ["inspect", p.hub_module], r"auto\W+c2\W+Relu"),
    "export": Case(lambda p: [], r"^exported TF2 hub module with gradcam at c2 \(4 classes"),  # the module fixture's run
    "validate": Case(lambda p: ["validate", p.export], r"\[PASS\] answers of every signature.*\nPASS$"),
    "evaluate": Case(lambda p: ["evaluate", p.export, "--images", p.images, "--steps", "2"], r"deletion AUC"),
    "serve": Case(lambda p: [], r"Running gRPC ModelServer at 127\.0\.0\.1:\d+"),  # the module fixture's process
    "predict": Case(lambda p: ["predict", "--server", p.server, "--model", MODEL, p.image],
                    r"class=\d\tlabel=\w+\tscore=", imports_tensorflow=False),
    "explain": Case(lambda p: ["explain", "--server", p.server, "--model", MODEL, "--out", p.scratch, p.image],
                    r"overlay=.*_gradcam\.png", imports_tensorflow=False),
    # config reads the TensorFlow that wrote the export from saved_model.pb without importing it
    "config": Case(lambda p: ["config", str(Path(p.export).parent), "--print"], r"model_platform: \"tensorflow\"",
                   imports_tensorflow=False),
    # The full demo trains a model; it imports TensorFlow (through the exporter) before creating its folder.
    "demo": Case(lambda p: ["demo", "--workdir", str(Path(p.image) / "sub")], r"^error: .*Not a directory"),
    "explain-batch": Case(lambda p: ["explain-batch", p.images, "--export", p.export, "--output",
                                     str(Path(p.scratch) / "explain-batch")],  # explain writes to scratch itself
                          r"^1 images, 0 failed, [\d.]+ images/s -> "),
    # Runs until Ctrl-C: _view_until_ready starts it, waits for its warm-up (a Session run per method), stops it.
    "view": Case(lambda p: ["view", p.export, "--port", "0"], r"view: http://127\.0\.0\.1:\d+(?s:.*)view: ready"),
}


def test_every_command_has_a_case() -> None:
    assert set(cli.commands) == set(CASES), "add a Case for each new command (or drop the removed one)"


@dataclass
class Served:
    process: subprocess.Popen[str]
    log: Path
    target: str

    def stderr(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_models) -> Path:
    root = tmp_path_factory.mktemp("quiet")
    (root / "images").mkdir()
    image = np.random.default_rng(3).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(image).save(root / "images" / "one.png")
    (root / "hub").symlink_to(tiny_models.hub_classifier)
    return root


@pytest.fixture(scope="module")
def exported(workspace: Path) -> CliRun:
    """``export`` of the tiny hub module to ``workspace/models/clf/1``: a case of its own, and every other's input."""
    result = run_cli("export", str(workspace / "hub"), "--output", str(workspace / "models"), "--name", MODEL,
                     marker=workspace / "export.marker")
    assert result.code == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def served(workspace: Path, exported: CliRun) -> Iterator[Served]:
    """``serve`` on a free loopback port, its stderr in a file; stopped with SIGTERM at the end."""
    log = workspace / "serve.stderr"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            cli_command("serve", "--port=0", "--host", "127.0.0.1", f"--model_name={MODEL}",
                        f"--model_base_path={workspace / 'models' / MODEL}"),
            env=cli_environment(), stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )
    try:
        yield Served(process, log, _wait_for_port(process, log))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(process: subprocess.Popen[str], log: Path, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"Running gRPC ModelServer at (127\.0\.0\.1:\d+)", log.read_text())
        if found:
            return found[1]
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"serve did not listen within {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def paths(workspace: Path, exported: CliRun, served: Served) -> Paths:
    return Paths(
        hub_module=str(workspace / "hub"),
        export=exported.stdout.strip().splitlines()[-1],
        images=str(workspace / "images"),
        image=str(workspace / "images" / "one.png"),
        scratch=str(workspace / "scratch"),
        server=served.target,
    )


@pytest.mark.parametrize("command", CASES)
def test_command_prints_no_tensorflow_noise(command: str, paths: Paths, exported: CliRun, served: Served,
                                            tmp_path: Path) -> None:
    if command == "export":
        result = exported
    elif command == "serve":  # it loaded the export and ran its warmup requests (Session runs) before listening
        result = CliRun(0, "", served.stderr(), True)
    elif command == "view":
        result = _view_until_ready(CASES[command].args(paths), tmp_path)
    else:
        result = run_cli(*CASES[command].args(paths), marker=tmp_path / "marker")
    noise = TF_NOISE.findall(result.stderr)
    assert not noise, f"{command} printed TensorFlow's lines:\n{result.stderr}"
    assert re.search(CASES[command].own_output, f"{result.stdout}\n{result.stderr}", re.MULTILINE), result
    assert result.imported_tensorflow == CASES[command].imports_tensorflow


def _view_until_ready(args: list[str], tmp_path: Path, timeout: float = 300) -> CliRun:
    """``view`` until it says ``ready`` (every method ran once), then SIGINT, as Ctrl-C in a shell."""
    log, marker = tmp_path / "view.stderr", tmp_path / "marker"
    process = start_cli(*args, marker=marker, stderr=log)
    try:
        deadline = time.monotonic() + timeout
        while "view: ready" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return CliRun(code, "", log.read_text(), marker.exists() and marker.read_text() == "True")


def test_verbose_shows_tensorflow_lines(paths: Paths, tmp_path: Path) -> None:
    """``--verbose`` keeps everything, and ``TF_NOISE`` does match what TensorFlow writes (the test above can fail)."""
    result = run_cli("inspect", paths.hub_module, "--verbose", marker=tmp_path / "marker")
    assert result.code == 0, result.stderr
    assert TF_NOISE.search(result.stderr), result.stderr
    assert re.search(r"auto\W+c2\W+Relu", result.stdout), result.stdout
    listed = run_cli("inspect", paths.export, marker=tmp_path / "export_marker")
    assert listed.stdout == "methods: gradcam (cam)\n" and not listed.imported_tensorflow, listed


def test_a_graph_assert_is_one_sentence_in_the_cli(paths: Paths, tmp_path: Path) -> None:
    """The server's status keeps TF Serving's text; the CLI shows it without brackets and node trailer."""
    result = run_cli("explain", "--server", paths.server, "--model", MODEL, "--class-index", "9",
                     "--out", paths.scratch, paths.image, marker=tmp_path / "marker")
    assert result.code == 1
    assert result.stderr == (
        "error: INVALID_ARGUMENT: class_index must be an int32 vector with one entry per image, each -1 (the "
        "predicted class) or a class in 0..3 (the model has 4 classes); got class_index 9 for a batch of images "
        "of size 1\n"
    )
