"""Methods whose maps coincide (Grad-CAM's family on a pooled, linear head) are named as such, not left to look like a bug."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gradcam_serving.evaluate import evaluate, load_samples, print_table, write_report

pytestmark = pytest.mark.slow

_EXPECTED = "expected, not a bug, when global average pooling follows the target layer"


def _report(export: Path, photos: Path) -> Any:
    return evaluate(export, load_samples(photos), steps=4)


def test_a_pooled_linear_head_gives_gradcam_hirescam_and_xgradcam_the_same_maps(pool_and_flatten: Any, tmp_path: Path) -> None:
    report = _report(pool_and_flatten.pooled, pool_and_flatten.photos)
    (group,) = report.coinciding
    assert group == ("pooled/1", ("gradcam", "hirescam", "xgradcam"))
    # What the notes rest on: the rows really are the same.
    rows = {r.method: (r.deletion_auc, r.insertion_auc, r.adcc) for r in report.results}
    assert rows["hirescam"] == pytest.approx(rows["gradcam"], abs=1e-3)
    assert rows["xgradcam"] == pytest.approx(rows["gradcam"], abs=1e-3)
    assert rows["eigencam"] != pytest.approx(rows["gradcam"])

    from rich.console import Console

    console = Console(width=200, record=True)
    print_table(report, console)
    text = " ".join(console.export_text().split())
    assert f"gradcam, hirescam and xgradcam give the same maps on every image of pooled/1, so the same rows: {_EXPECTED}" in text
    index = write_report(report, tmp_path / "report")
    assert _EXPECTED in index.read_text()
    document = json.loads((tmp_path / "report" / "results.json").read_text())
    assert document["same_maps"] == [{"source": "pooled/1", "methods": ["gradcam", "hirescam", "xgradcam"]}]


def test_a_flattened_head_gives_every_method_its_own_map_and_no_note(pool_and_flatten: Any, tmp_path: Path) -> None:
    report = _report(pool_and_flatten.flattened, pool_and_flatten.photos)
    assert report.coinciding == []
    assert len({round(r.deletion_auc, 6) for r in report.results}) == 5
    from rich.console import Console

    console = Console(width=200, record=True)
    print_table(report, console)
    assert "same maps" not in console.export_text()
    assert json.loads(json.dumps(report.as_dict()))["same_maps"] == []


def test_the_maps_are_compared_not_the_names(pool_and_flatten: Any) -> None:
    """Both exports offer the same method names; only the pooled one's maps coincide, so only it is named."""
    samples = load_samples(pool_and_flatten.photos)
    report = evaluate([pool_and_flatten.pooled, pool_and_flatten.flattened], samples, steps=2,
                      methods=["gradcam", "hirescam"])
    assert report.coinciding == [("pooled/1", ("gradcam", "hirescam"))]
