"""``evaluate --runner``: the Beam pipeline's JSON equals the in-process run's (same keys, numbers within 1e-6)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from batch_data import LABELS, write_images

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five images of mixed sizes: a predicted class, an index label, a text label, and a box on some."""
    folder = tmp_path_factory.mktemp("evaluate_images")
    images = write_images(folder, 5, seed=41, subfolders=1)
    rows = []
    for i, path in enumerate(images.paths):
        row: dict[str, Any] = {"path": str(path.relative_to(folder))}
        if i % 3 == 1:
            row["label"] = images.labels[path]
        elif i % 3 == 2:
            row["label"] = LABELS[images.labels[path]]
        if i % 2 == 0:
            row["box"] = [2, 2, 14, 14]
        rows.append(json.dumps(row))
    (folder / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    return folder / "manifest.jsonl"


def _evaluate(export: Path, manifest: Path, out: Path, *extra: str) -> dict[str, Any]:
    from gradcam_serving.cli import main

    code = main(["evaluate", str(export), "--images", str(manifest), "--steps", "3", "--batch-size", "4",
                 "--json", str(out), *extra])
    assert code == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def in_process(shortcut_export: Path, manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _evaluate(shortcut_export, manifest, tmp_path_factory.mktemp("in_process") / "out.json")


def assert_same_document(mine: Any, reference: Any, where: str = "") -> None:
    """Equal structure and keys; floats within ``TOLERANCE``."""
    assert type(mine) is type(reference) or {type(mine), type(reference)} <= {int, float}, where
    if isinstance(reference, dict):
        assert list(mine) == list(reference), where
        for key in reference:
            assert_same_document(mine[key], reference[key], f"{where}.{key}")
    elif isinstance(reference, list):
        assert len(mine) == len(reference), where
        for i, (a, b) in enumerate(zip(mine, reference)):
            assert_same_document(a, b, f"{where}[{i}]")
    elif isinstance(reference, float):
        assert math.isclose(mine, reference, rel_tol=0, abs_tol=TOLERANCE) or (
            math.isnan(mine) and math.isnan(reference)), (where, mine, reference)
    else:
        assert mine == reference, where


@pytest.mark.parametrize("beam_options", [
    pytest.param((), id="in_memory"),
    # each worker process loads the export itself: the costly case, but the one that proves the scoring distributes
    pytest.param(("--direct_num_workers=2", "--direct_running_mode=multi_processing"), id="2_processes",
                 marks=pytest.mark.slow),
])
def test_beam_json_equals_in_process(shortcut_export: Path, manifest: Path, in_process: dict[str, Any],
                                     tmp_path: Path, beam_options: tuple[str, ...]) -> None:
    document = _evaluate(shortcut_export, manifest, tmp_path / "out.json", "--runner", "DirectRunner", *beam_options)
    assert [r["method"] for r in document["results"]] == ["gradcam", "layercam"]
    assert all(len(r["per_image"]) == 5 for r in document["results"])
    assert document["results"][0]["pointing_total"] == 3
    assert_same_document(document, in_process)


def test_beam_options_need_a_runner(shortcut_export: Path, manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gradcam_serving.cli import main

    code = main(["evaluate", str(shortcut_export), "--images", str(manifest), "--direct_num_workers=2"])
    assert code == 2
    assert "Beam options need --runner" in capsys.readouterr().err


def test_random_baseline_is_refused_with_a_runner(shortcut_export: Path, manifest: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from gradcam_serving.cli import main

    code = main(["evaluate", str(shortcut_export), "--images", str(manifest), "--runner", "DirectRunner",
                 "--random-baseline"])
    assert code == 1  # one convention: main() returns the code, for usage errors (2) and failures (1) alike
    assert "--random-baseline cannot be combined with --runner" in capsys.readouterr().err


def test_beam_against_a_server_equals_in_process(shortcut_export: Path, manifest: Path, in_process: dict[str, Any],
                                                 tmp_path: Path) -> None:
    """``evaluate --server --model --runner``: each Beam worker calls the local server on a loopback port."""
    from gradcam_e2e import local_server

    # A server answers class indices only (labels as text need the export's metadata): index labels here.
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:
        if isinstance(row.get("label"), str):
            row["label"] = LABELS.index(row["label"])
    indexed = manifest.with_name("manifest_indices.jsonl")
    indexed.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with local_server(shortcut_export.parent, model="shortcut") as server:
        remote = _evaluate_remote(server.target, indexed, tmp_path / "remote.json")
        on_beam = _evaluate_remote(server.target, indexed, tmp_path / "beam.json", "--runner", "DirectRunner")
    assert [r["method"] for r in on_beam["results"]] == ["gradcam", "layercam"]
    assert all(len(r["per_image"]) == 5 for r in on_beam["results"])
    assert_same_document(on_beam["results"], remote["results"])
    for mine, reference in zip(on_beam["results"], in_process["results"]):
        assert_same_document(mine["per_image"], reference["per_image"], mine["method"])


def _evaluate_remote(target: str, manifest: Path, out: Path, *extra: str) -> dict[str, Any]:
    from gradcam_serving.cli import main

    code = main(["evaluate", "--server", target, "--model", "shortcut", "--images", str(manifest), "--steps", "3",
                 "--batch-size", "4", "--json", str(out), *extra])
    assert code == 0
    return json.loads(out.read_text())
