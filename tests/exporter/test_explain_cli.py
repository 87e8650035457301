"""``gradcam-serving explain``: options it cannot honour are refused, and overlay names carry the method."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gradcam_e2e import local_server
from gradcam_serving.cli import cli


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def served(tiny_models, tmp_path_factory):
    """Two servers of model ``pets``: one export holds layercam only, the other layercam (its default) and gradcam."""
    from gradcam_serving.exporter import export_model

    base = tmp_path_factory.mktemp("explain_cli")
    with contextlib.ExitStack() as stack:
        servers = {}
        for default, methods in (("layercam", "layercam"), ("default", "layercam,gradcam")):  # both: layercam ran
            export_model(tiny_models.hub_classifier, base / default, "pets", version=1, methods=methods)
            servers[default] = stack.enter_context(local_server(base / default / "pets", model="pets"))
        yield servers


@pytest.mark.parametrize("extra, message", [
    (["--method", "layercam"],
     "error: --method layercam and --top-k 3 cannot be combined: --top-k explains the k most probable classes "
     "with the export's default method (explain_topk); drop --method, or drop --top-k to explain the predicted "
     "class (or --class-index) with that method\n"),
    (["--class-index", "2"],
     "error: --class-index 2 and --top-k 3 cannot be combined: --top-k picks the k most probable classes "
     "itself; drop one of them\n"),
])
def test_top_k_refuses_what_explain_topk_cannot_do(photo, tmp_path, extra, message):
    # Refused before any connection: no server listens on port 1.
    code, stdout, stderr = _run("explain", "--server", "127.0.0.1:1", "--model", "pets", "--timeout", "2",
                                "--top-k", "3", *extra, "--out", tmp_path / "out", photo)
    assert (code, stdout, stderr) == (1, "", message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("export", ["layercam", "default"])
def test_overlay_names_carry_the_method(served, photo, tmp_path, export):
    """The answers name their method, so an export holding several is named after the one that ran too."""
    common = ["--server", served[export].target, "--model", "pets", "--out", tmp_path]
    code, stdout, stderr = _run("explain", *common, "--top-k", "2", photo)
    assert code == 0, stderr
    for rank, line in enumerate(stdout.strip().splitlines(), 1):
        assert line.endswith(f"overlay={tmp_path / f'astronaut_layercam_top{rank}.png'}")
    code, stdout, stderr = _run("explain", *common, photo)
    assert code == 0, stderr
    assert stdout.strip().endswith(f"overlay={tmp_path / 'astronaut_layercam.png'}")
    if export == "default":
        code, stdout, stderr = _run("explain", *common, "--method", "gradcam", photo)
        assert code == 0, stderr
        assert stdout.strip().endswith(f"overlay={tmp_path / 'astronaut_gradcam.png'}")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(
        {"astronaut_layercam_top1.png", "astronaut_layercam_top2.png", "astronaut_layercam.png"}
        | ({"astronaut_gradcam.png"} if export == "default" else set()))
