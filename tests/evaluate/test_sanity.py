"""``validate --sanity``: Grad-CAM at the last convolution passes, an edge map (ignores the weights) fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gradcam_serving.cli import main
from gradcam_serving.evaluate import SanityReport, sanity_check

pytestmark = pytest.mark.slow

Shapes = Any  # the ``shapes`` fixture (tests/evaluate/conftest.py)


@pytest.fixture(scope="module")
def gradcam_sanity(shapes: Shapes) -> SanityReport:
    return sanity_check(shapes.export, shapes.data.images[:8])


def test_gradcam_at_the_last_conv_passes(gradcam_sanity: SanityReport) -> None:
    (method,) = gradcam_sanity.methods
    assert method.target_known
    # From the output back to the target layer: the head, then the target's own convolution.
    assert [step.layers[-1] for step in method.steps] == ["classes", "features"]
    assert [step.above_target for step in method.steps] == [True, False]
    assert method.judged_step.mean_rank_correlation < 0.5
    assert method.judged_step.mean_ssim < method.steps[0].mean_ssim
    assert gradcam_sanity.passed


def test_an_edge_map_that_ignores_the_weights_fails(edge_export: Path, shapes: Shapes) -> None:
    report = sanity_check(edge_export, shapes.data.images[:8])
    (method,) = report.methods
    assert not method.target_known  # no gradients: the cascade runs down to the input
    assert len(method.steps) >= 4
    for step in method.steps:
        assert step.mean_rank_correlation == pytest.approx(1.0)
        assert step.mean_ssim == pytest.approx(1.0)
    assert not report.passed
    assert report.as_dict()["methods"][0]["passed"] is False


def test_warmup_images_are_the_default_samples(shapes: Shapes) -> None:
    report = sanity_check(shapes.export)
    assert report.images == 1  # the export's warmup records hold one image
    assert len(report.methods[0].steps) == 2


def test_cli_validate_sanity_exit_codes(shapes: Shapes, edge_export: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i, image in enumerate(shapes.data.images[:6]):
        Image.fromarray(image).save(images / f"{i}.png")
    code = main(["validate", str(shapes.export), "--sanity", "--images", str(images)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[PASS] sanity" in out and out.rstrip().endswith("PASS")
    # A threshold no map can meet makes the same export fail.
    code = main(["validate", str(shapes.export), "--sanity", "--images", str(images), "--threshold", "-1"])
    assert code == 1  # main() returns every exit code, a failed check's too
    assert "[FAIL] sanity" in capsys.readouterr().out


def test_bad_threshold_and_images_are_refused(shapes: Shapes) -> None:
    with pytest.raises(ValueError, match=r"threshold is a rank correlation in \[-1, 1\]"):
        sanity_check(shapes.export, shapes.data.images[:1], threshold=2)
    with pytest.raises(ValueError, match=r"uint8 \[N, H, W, 3\]"):
        sanity_check(shapes.export, np.zeros((1, 8, 8), np.uint8))
