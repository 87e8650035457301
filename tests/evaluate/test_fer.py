"""A real pretrained model: fer's emotion CNN on real faces (scikit-image), exported through an RGB wrapper.

The wrapper and the faces are the benchmark's (benchmarks/evaluate.py), so the
docs/measured.md's numbers and this test measure the same model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcam_serving.evaluate import sanity_check

pytestmark = pytest.mark.slow

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "evaluate.py"


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("benchmark_evaluate", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fer_export(bench: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Grad-CAM only: every method triples the export time on 2 cores (the benchmark exports them all).
    path, layer = bench.export_fer(tmp_path_factory.mktemp("fer"), methods="gradcam")
    assert layer == "conv2d_7"  # the last convolution (7 maps, one per emotion) before global pooling
    return path


def test_faces_are_real_and_the_model_reads_them(bench: Any, fer_export: Path) -> None:
    from gradcam_serving.exporter import run_like_tf_serving

    images, names = bench.face_images(6)
    assert images.shape == (7, 64, 64, 3) and names[-1] == "astronaut"
    outputs = run_like_tf_serving(fer_export, {"predict": {"images": images}})["predict"]
    assert outputs["label"][-1] == b"happy"  # the astronaut smiles
    assert outputs["probabilities"][-1].max() > 0.9


def test_maps_of_a_randomised_fer_model_decorrelate(bench: Any, fer_export: Path) -> None:
    images, _ = bench.face_images(3)
    report = sanity_check(fer_export, images, max_layers=6)
    (method,) = report.methods
    correlations = [step.mean_rank_correlation for step in method.steps]
    assert len(correlations) == 6
    assert method.judged_step.mean_rank_correlation < 0.3, correlations
    assert correlations[-1] < correlations[0]
    assert report.passed
    assert np.all(np.isfinite(correlations))
