"""The report folder: overlay grids named after their images, nothing cut off at the picture's edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradcam_serving.evaluate import EvaluationReport, ImageScores, MethodScores, Sample, write_report

_NAMES = ["astronaut.jpg", "astronaut.png", "image_0002", "photo.v2.jpeg"]


def _scores(sample: Sample, rng: np.random.Generator) -> ImageScores:
    curve = np.linspace(0.9, 0.1, 5)
    return ImageScores(sample.name, 1, 0.9, curve, curve[::-1], 0.5, 0.7, 0.3, None,
                       rng.uniform(size=sample.image.shape[:2]).astype(np.float32))


def _report(sources: list[str], size: tuple[int, int] = (64, 64)) -> EvaluationReport:
    rng = np.random.default_rng(0)
    samples = [Sample(name, rng.integers(0, 256, (*size, 3), dtype=np.uint8)) for name in _NAMES]
    results = [
        MethodScores(source, method, f"explain_{method}", [_scores(s, rng) for s in samples])
        for source in sources for method in ("gradcam", "layercam")
    ]
    return EvaluationReport(results, 4, 5.0, 0, samples)


def test_overlay_grids_are_named_after_their_images_without_collisions(tmp_path: Path) -> None:
    index = write_report(_report(["clf/1"]), tmp_path)
    names = sorted(p.name for p in (tmp_path / "overlays").iterdir())
    assert names == ["0000_astronaut.png", "0001_astronaut.png", "0002_image_0002.png", "0003_photo.v2.png"]
    page = index.read_text()
    assert all(f"overlays/{name}" in page for name in names)


def test_curves_of_two_sources_with_the_same_name_do_not_overwrite_each_other(tmp_path: Path) -> None:
    index = write_report(_report(["clf/1", "clf/1"]), tmp_path)
    curves = sorted(p.name for p in (tmp_path / "curves").iterdir())
    assert len(curves) == 4
    assert all(f"curves/{name}" in index.read_text() for name in curves)


@pytest.mark.parametrize("size", [(64, 64), (96, 40), (40, 96)])
@pytest.mark.parametrize("sources", [["clf/1"], ["flowers_out_relu/1", "flowers_block_13/1"]])
def test_no_title_runs_off_the_grid(tmp_path: Path, size: tuple[int, int], sources: list[str]) -> None:
    write_report(_report(sources, size), tmp_path, max_grids=1)
    (grid,) = (tmp_path / "overlays").iterdir()
    pixels = np.asarray(Image.open(grid).convert("L"))
    # The figure's background is white: a title cut by the edge leaves dark pixels in the border rows.
    for edge in (pixels[:2], pixels[-2:], pixels[:, :2], pixels[:, -2:]):
        assert edge.min() == 255, f"{grid.name} {pixels.shape}: something is cut off at an edge"
