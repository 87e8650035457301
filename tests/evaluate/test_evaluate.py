"""``evaluate`` on the demo's shapes model: known ground truth, in-process and over a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Shapes = Any  # the ``shapes`` fixture (tests/evaluate/conftest.py)

import numpy as np
import pytest
from PIL import Image

from gradcam_serving.cli import main
from gradcam_serving.evaluate import EvaluationReport, evaluate, random_map, samples_from_arrays, write_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(shapes: Shapes) -> EvaluationReport:
    samples = samples_from_arrays(shapes.data.images, labels=shapes.data.labels, boxes=shapes.data.boxes)
    return evaluate(shapes.export, samples, steps=16, references={"noise": random_map(3)})


def test_gradcam_points_at_the_shape(report: EvaluationReport) -> None:
    gradcam = report.get("gradcam")
    assert gradcam.signature == "explain_gradcam" and gradcam.pointing_total == 24
    assert gradcam.pointing_game >= 0.9


def test_uniform_noise_scores_clearly_worse_than_gradcam(report: EvaluationReport) -> None:
    gradcam, noise = report.get("gradcam"), report.get("noise")
    assert gradcam.deletion_auc < noise.deletion_auc - 0.1, (gradcam.deletion_auc, noise.deletion_auc)
    assert gradcam.insertion_auc > noise.insertion_auc + 0.1, (gradcam.insertion_auc, noise.insertion_auc)
    assert gradcam.adcc > noise.adcc
    assert gradcam.average_drop < noise.average_drop
    assert noise.pointing_game < 0.5


def test_curves_start_where_the_definitions_say(report: EvaluationReport, shapes: Shapes) -> None:
    scores = report.get("gradcam").images
    for image_scores, label in zip(scores, shapes.data.labels):
        assert image_scores.class_index == label
        assert len(image_scores.deletion_curve) == 17
        # Deletion starts at the image's own probability and insertion ends there.
        assert image_scores.deletion_curve[0] == pytest.approx(image_scores.score, abs=1e-6)
        assert image_scores.insertion_curve[-1] == pytest.approx(image_scores.score, abs=1e-6)
        assert image_scores.deletion_curve[-1] == pytest.approx(image_scores.insertion_curve[0], abs=1e-6)


def test_report_folder_has_curves_overlays_json_and_html(report: EvaluationReport, tmp_path: Path) -> None:
    index = write_report(report, tmp_path / "report", max_grids=3)
    page = index.read_text()
    curves = sorted((tmp_path / "report" / "curves").glob("*.png"))
    grids = sorted((tmp_path / "report" / "overlays").glob("*.png"))
    assert len(curves) == 2 and len(grids) == 3
    for picture in curves + grids:
        assert Image.open(picture).size[0] > 100
        assert picture.relative_to(index.parent).as_posix() in page
    document = json.loads((tmp_path / "report" / "results.json").read_text())
    assert [r["method"] for r in document["results"]] == ["gradcam", "noise"]
    assert len(document["results"][0]["per_image"]) == 24


def _image_folder(shapes: Shapes, folder: Path, count: int) -> Path:
    folder.mkdir()
    lines = []
    for i in range(count):
        Image.fromarray(shapes.data.images[i]).save(folder / f"{i:02d}.png")
        top, left, bottom, right = (int(v) for v in shapes.data.boxes[i])
        lines.append(json.dumps({"path": f"{i:02d}.png", "label": int(shapes.data.labels[i]),
                                 "box": [top, left, bottom, right]}))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "manifest.jsonl"


def test_cli_prints_the_table_and_writes_json_and_report(
    shapes: Shapes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _image_folder(shapes, tmp_path / "images", 4)
    code = main(["evaluate", str(shapes.export), "--images", str(manifest), "--steps", "8", "--random-baseline",
                 "--json", str(tmp_path / "out.json"), "--report", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert code == 0
    assert "gradcam" in out and "random" in out and "deletion" in out
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["settings"]["steps"] == 8 and document["settings"]["images"] == 4
    assert document["results"][0]["pointing_total"] == 4
    assert (tmp_path / "rep" / "index.html").is_file()


def test_cli_names_a_bad_method(shapes: Shapes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _image_folder(shapes, tmp_path / "images", 1)
    code = main(["evaluate", str(shapes.export), "--images", str(manifest), "--method", "layercam"])
    assert code == 1
    assert "method(s) 'layercam' not exported; the export holds: gradcam" in capsys.readouterr().err


def test_server_gives_the_numbers_of_the_in_process_export(shapes: Shapes) -> None:
    from gradcam_e2e import local_server

    samples = samples_from_arrays(shapes.data.images[:3], labels=shapes.data.labels[:3], boxes=shapes.data.boxes[:3])
    local = evaluate(shapes.export, samples, steps=8, batch_size=5)
    with local_server(shapes.export.parent, model="shapes") as server:
        remote = evaluate(None, samples, server=server.target, model="shapes", steps=8, batch_size=5)
    ours, theirs = local.get("gradcam"), remote.get("gradcam")
    assert theirs.source.startswith("shapes@127.0.0.1:")
    for a, b in zip(ours.images, theirs.images):
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)
        np.testing.assert_allclose(a.deletion_curve, b.deletion_curve, atol=1e-5)
        np.testing.assert_allclose(a.insertion_curve, b.insertion_curve, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"server": "127.0.0.1:1"}, "--server and --model together"),
        ({"steps": 0}, "steps must be at least 1"),
    ],
)
def test_bad_arguments_say_what_is_expected(shapes: Shapes, kwargs: dict[str, Any], message: str) -> None:
    samples = samples_from_arrays(shapes.data.images[:1])
    with pytest.raises(ValueError, match=message):
        evaluate(shapes.export, samples, **kwargs)


@pytest.fixture(scope="module")
def two_methods(shapes: Shapes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shapes module exported with Grad-CAM and Eigen-CAM (``explain_gradcam``, ``explain_eigencam``)."""
    from gradcam_serving.demo import CLASSES
    from gradcam_serving.exporter import export_model

    base = tmp_path_factory.mktemp("two_methods")
    result = export_model(shapes.module, base, "shapes", labels=list(CLASSES), version=1, methods="gradcam,eigencam")
    return result.path


def test_every_method_of_an_export_is_evaluated_served_and_sanity_checked(
    two_methods: Path, shapes: Shapes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gradcam_e2e import local_server

    from gradcam_serving.evaluate import sanity_check

    manifest = _image_folder(shapes, tmp_path / "images", 3)
    assert main(["evaluate", str(two_methods), "--images", str(manifest), "--steps", "4", "--json", "-"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {r["method"]: r["signature"] for r in printed["results"]} == {
        "eigencam": "explain_eigencam", "gradcam": "explain_gradcam"}

    samples = samples_from_arrays(shapes.data.images[:3], labels=shapes.data.labels[:3], boxes=shapes.data.boxes[:3])
    local = evaluate(two_methods, samples, steps=4, batch_size=5)
    with local_server(two_methods.parent, model="shapes") as server:
        remote = evaluate(None, samples, server=server.target, model="shapes", steps=4, batch_size=5)
    assert [r.method for r in remote.results] == [r.method for r in local.results] == ["gradcam", "eigencam"]  # the contract's METHODS order
    for method in ("eigencam", "gradcam"):
        for a, b in zip(local.get(method).images, remote.get(method).images):
            np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)
            np.testing.assert_allclose(a.deletion_curve, b.deletion_curve, atol=1e-5)
    # The two signatures really compute different maps (the server did not answer both with one).
    assert not np.allclose(remote.get("gradcam").images[0].heatmap, remote.get("eigencam").images[0].heatmap, atol=1e-3)

    sanity = sanity_check(two_methods, shapes.data.images[:6])
    assert sorted(m.method for m in sanity.methods) == ["eigencam", "gradcam"]
    gradcam = next(m for m in sanity.methods if m.method == "gradcam")
    assert gradcam.signature == "explain_gradcam" and gradcam.target_known and gradcam.passed
