"""``gradcam-serving predict`` / ``explain`` against the running local server, on PNG files."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gradcam_e2e import LABELS, MODEL, test_images
from gradcam_serving.cli import cli

ROW = re.compile(r"^(?P<path>\S+)\tclass=(?P<cls>-?\d+)\tlabel=(?P<label>\S+)\tscore=(?P<score>[0-9.]+)(?P<rest>.*)$")


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    """Two PNGs of different sizes; PNG is lossless, so the pixels the server sees are these."""
    folder = tmp_path_factory.mktemp("pngs")
    arrays = [test_images(1, 40, 56, seed=1)[0], test_images(1, 64, 32, seed=2)[0]]
    paths = []
    for i, array in enumerate(arrays):
        path = folder / f"img{i}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return list(zip(paths, arrays))


def _run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _rows(stdout, count):
    lines = stdout.strip().splitlines()
    assert len(lines) == count, stdout
    return [ROW.match(line).groupdict() for line in lines]


def _expected(in_process, array, signature):
    inputs = {"images": array[None]}
    if signature == "explain":
        inputs["class_index"] = np.array([-1], np.int32)
    out = in_process.run(signature, **inputs)
    return int(out["class_index"][0]), out["label"][0].decode(), float(out["score"][0])


def test_predict_prints_class_label_and_score(served, pngs, in_process):
    code, stdout, stderr = _run("predict", "--server", served.target, "--model", MODEL, *(str(p) for p, _ in pngs))
    assert code == 0, stderr
    for row, (path, array) in zip(_rows(stdout, 2), pngs):
        cls, label, score = _expected(in_process, array, "predict")
        assert (row["path"], int(row["cls"]), row["label"]) == (str(path), cls, label)
        assert row["label"] in LABELS
        assert float(row["score"]) == pytest.approx(score, abs=1e-4)


def test_explain_writes_overlays_at_each_image_size(served, pngs, in_process, tmp_path):
    out = tmp_path / "overlays"
    code, stdout, stderr = _run("explain", "--server", served.target, "--model", MODEL, "--out", str(out),
                                *(str(p) for p, _ in pngs))
    assert code == 0, stderr
    for row, (path, array) in zip(_rows(stdout, 2), pngs):
        cls, label, score = _expected(in_process, array, "explain")
        assert (int(row["cls"]), row["label"]) == (cls, label)
        assert float(row["score"]) == pytest.approx(score, abs=1e-4)
        overlay = out / f"{path.stem}_gradcam.png"
        assert row["rest"] == f"\toverlay={overlay}"
        with Image.open(overlay) as image:
            assert image.size == (array.shape[1], array.shape[0])
            assert image.format == "PNG"


def test_explain_with_explicit_class_index(served, pngs, tmp_path):
    path = str(pngs[0][0])
    code, stdout, stderr = _run("explain", "--server", served.target, "--model", MODEL, "--class-index", "3",
                                "--out", str(tmp_path), path)
    assert code == 0, stderr
    (row,) = _rows(stdout, 1)
    assert (int(row["cls"]), row["label"]) == (3, LABELS[3])


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_unknown_model_is_one_error_line_and_exit_1(served, pngs, command, tmp_path):
    extra = ["--out", str(tmp_path)] if command == "explain" else []
    code, stdout, stderr = _run(command, "--server", served.target, "--model", "nope", *extra, str(pngs[0][0]))
    assert code == 1
    assert stdout == ""
    assert stderr == "error: NOT_FOUND: Servable not found for request: Latest(nope)\n"


def test_explain_with_a_method_and_with_top_k(served, pngs, tmp_path):
    path = pngs[0][0]
    code, stdout, stderr = _run("explain", "--server", served.target, "--model", MODEL, "--method", "gradcam",
                                "--out", str(tmp_path), str(path))
    assert code == 0, stderr
    assert (tmp_path / f"{path.stem}_gradcam.png").exists()
    code, stdout, stderr = _run("explain", "--server", served.target, "--model", MODEL, "--top-k", "2",
                                "--out", str(tmp_path), str(path))
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == ["rank=1", "rank=2"]
    assert all(line.endswith(f"overlay={tmp_path / f'{path.stem}_gradcam_top{rank}.png'}") for rank, line in enumerate(lines, 1))
    code, _, stderr = _run("explain", "--server", served.target, "--model", MODEL, "--method", "eigencam",
                           "--out", str(tmp_path), str(path))
    assert code == 1
    assert stderr == (f"error: model '{MODEL}': method(s) 'eigencam' not exported; the export holds: gradcam "
                      "(or 'default' for its default, or 'all')\n")
