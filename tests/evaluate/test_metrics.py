"""The metric arithmetic on hand-made cases, and the manifest reader (no TensorFlow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

import gradcam_serving.evaluate as ev
from gradcam_serving.evaluate import explain_methods


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert ev.__all__ == [
        "DEFAULT_THRESHOLD", "evaluate_on_beam", "EvaluationReport", "ImageScores", "MapFunction", "MethodScores",
        "Sample", "Samples", "Skipped", "SanityReport", "adcc", "auc", "average_drop", "blur", "coherency", "complexity", "evaluate", "evaluate_command",
        "explain_methods", "increase_in_confidence", "load_samples", "masked_by_map", "perturbation_curve_inputs",
        "pointing_game_hits", "print_sanity", "print_table", "random_map", "rank_correlation", "run_evaluate",
        "run_sanity", "sanity_check",
        "samples_from_arrays", "similarity_per_step", "ssim", "write_json", "write_report",
    ]
    assert all(hasattr(ev, name) for name in ev.__all__)


def test_auc_is_the_trapezoid_over_unit_interval() -> None:
    assert ev.auc(np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert ev.auc(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert ev.auc(np.array([0.0, 1.0, 0.0, 0.0])) == pytest.approx(1 / 3)
    np.testing.assert_allclose(ev.auc(np.array([[1.0, 0.0], [0.0, 0.0]])), [0.5, 0.0])
    with pytest.raises(ValueError, match="two points"):
        ev.auc(np.array([1.0]))


def test_deletion_replaces_pixels_in_map_order_and_insertion_reveals_them() -> None:
    image = np.full((2, 3, 3), 200, np.uint8)
    baseline = np.zeros_like(image)
    heatmap = np.array([[0.9, 0.1, 0.5], [0.0, 0.8, 0.3]])  # order: (0,0) (1,1) (0,2) (1,2) (0,1) (1,0)
    deletion = ev.perturbation_curve_inputs(image, heatmap, baseline, 3, mode="deletion")
    assert deletion.shape == (4, 2, 3, 3)
    removed = [(d[..., 0] == 0) for d in deletion]
    assert not removed[0].any() and removed[3].all()
    np.testing.assert_array_equal(removed[1], [[True, False, False], [False, True, False]])
    np.testing.assert_array_equal(removed[2], [[True, False, True], [False, True, True]])
    insertion = ev.perturbation_curve_inputs(image, heatmap, baseline, 3, mode="insertion")
    np.testing.assert_array_equal(insertion[1][..., 0] == 200, removed[1])
    with pytest.raises(ValueError, match="mode"):
        ev.perturbation_curve_inputs(image, heatmap, baseline, 3, mode="both")
    with pytest.raises(ValueError, match="must match the image"):
        ev.perturbation_curve_inputs(image, heatmap[:1], baseline, 3, mode="deletion")


def test_blur_keeps_shape_and_smooths_edges() -> None:
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[:, :, 16:] = 255
    blurred = ev.blur(image, 3.0)
    assert blurred.shape == image.shape and blurred.dtype == np.uint8
    assert 0 < blurred[0, 16, 15, 0] < 255
    np.testing.assert_array_equal(ev.blur(image, 0), image)


def test_average_drop_increase_and_adcc_follow_their_definitions() -> None:
    original, masked = np.array([0.8, 0.5, 0.4]), np.array([0.4, 0.6, 0.4])
    np.testing.assert_allclose(ev.average_drop(original, masked), [0.5, 0.0, 0.0])
    np.testing.assert_array_equal(ev.increase_in_confidence(original, masked), [False, True, False])
    # Harmonic mean of (coherency, 1 - complexity, 1 - drop) = 3 / (1/0.9 + 1/0.75 + 1/0.5).
    assert ev.adcc(np.array([0.9]), np.array([0.25]), np.array([0.5]))[0] == pytest.approx(3 / (1 / 0.9 + 1 / 0.75 + 2))
    assert ev.adcc(np.array([0.9]), np.array([1.0]), np.array([0.0]))[0] == 0.0
    maps = np.random.default_rng(0).uniform(size=(2, 8, 8))
    np.testing.assert_allclose(ev.coherency(maps, maps), [1.0, 1.0])
    np.testing.assert_allclose(ev.coherency(maps, 1 - maps), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(ev.complexity(np.ones((1, 4, 4))), [1.0])


def test_pointing_game_counts_a_peak_in_the_box_widened_by_the_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gradcam_serving.demo", None)  # the metric is the evaluator's own
    maps = np.zeros((4, 64, 64))
    maps[0, 10, 10] = 1  # inside the box
    maps[1, 22, 10] = 1  # 3 rows past the exclusive bottom (20): inside the 4 px allowance at 64 px
    maps[2, 24, 10] = 1  # 5 rows past it: outside even with the allowance
    maps[3, 40, 40] = 1
    boxes = np.array([[5, 5, 20, 20]] * 4)
    assert ev.pointing_game_hits(maps, boxes).tolist() == [True, False, False, False]
    assert ev.pointing_game_hits(maps, boxes, tolerance=None).tolist() == [True, True, False, False]
    assert ev.pointing_game_hits(maps, boxes, tolerance=5).tolist() == [True, True, True, False]


def test_rank_correlation_and_ssim_agree_with_scipy_and_skimage() -> None:
    rng = np.random.default_rng(1)
    a = np.maximum(rng.normal(size=(16, 16)), 0)  # many ties at zero, as after a ReLU
    b = np.maximum(a + rng.normal(scale=0.7, size=a.shape), 0)
    assert ev.rank_correlation(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    assert ev.rank_correlation(a, np.zeros_like(a)) == 0.0
    a01, b01 = a / a.max(), np.clip(b / b.max(), 0, 1)
    assert ev.ssim(a01, b01) == pytest.approx(structural_similarity(a01, b01, data_range=1.0), abs=1e-9)
    assert ev.ssim(a01, a01) == pytest.approx(1.0)


def test_methods_are_the_explain_method_signatures_or_default() -> None:
    contract = ({"images", "class_index"}, {"heatmap", "probabilities"})
    signatures = {
        "explain": contract,
        "explain_gradcam": contract,
        "explain_layercam": contract,
        "explain_bytes": ({"image_bytes", "class_index"}, {"heatmap"}),
        "explain_bytes_gradcam": ({"image_bytes", "class_index"}, {"heatmap"}),
        "explain_topk": ({"images", "k"}, {"heatmap"}),
        "predict": ({"images"}, {"probabilities"}),
    }
    assert explain_methods(signatures) == {"gradcam": "explain_gradcam", "layercam": "explain_layercam"}
    assert explain_methods({"explain": contract, "predict": signatures["predict"]}) == {"default": "explain"}
    with pytest.raises(ValueError, match="no explain signature"):
        explain_methods({"predict": signatures["predict"]})


def _png(path: Path, size: tuple[int, int] = (20, 30)) -> Path:
    Image.fromarray(np.full((*size, 3), 90, np.uint8)).save(path)
    return path


def test_folder_csv_and_jsonl_manifests(tmp_path: Path) -> None:
    _png(tmp_path / "b.png")
    _png(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [s.name for s in ev.load_samples(tmp_path)] == ["a.png", "b.png"]

    (tmp_path / "m.csv").write_text("path,label,top,left,bottom,right\na.png,2,1,2,10,12\nb.png,ring,,,,\n")
    rows = ev.load_samples(tmp_path / "m.csv")
    assert (rows[0].label, rows[0].box, rows[1].label, rows[1].box) == (2, (1, 2, 10, 12), "ring", None)
    assert rows[0].image.shape == (20, 30, 3)

    lines = [{"path": "a.png", "box": [0, 0, 5, 5]}, {"path": str(tmp_path / "b.png"), "label": 1}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    rows = ev.load_samples(tmp_path / "m.jsonl", limit=2)
    assert (rows[0].label, rows[0].box, rows[1].label) == (None, (0, 0, 5, 5), 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,label\na.png,1\n", "needs a 'path' column"),
        ("path,top,left,bottom,right\na.png,5,5,1,1\n", "0 <= top < bottom"),
        ("path,top,left,bottom,right\na.png,0,0,50,50\n", "lies outside"),
    ],
)
def test_bad_manifests_say_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        ev.load_samples(tmp_path / "m.csv")


def test_bad_sources_say_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither a folder of images nor"):
        ev.load_samples(_png(tmp_path / "a.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        ev.load_samples(tmp_path / "empty")
    (tmp_path / "m.jsonl").write_text("{not json}\n")
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        ev.load_samples(tmp_path / "m.jsonl")
    with pytest.raises(ValueError, match=r"uint8 \[N, H, W, 3\]"):
        ev.samples_from_arrays(np.zeros((2, 4, 4), np.uint8))


def test_the_package_imports_without_tensorflow(tmp_path: Path) -> None:
    """Evaluating a server needs only the thin client: nothing here may import TF at import time."""
    import subprocess
    import sys

    script = """
import sys
for name in ("tensorflow", "tensorflow_serving", "tf_keras", "tensorflow_hub", "keras"):
    sys.modules[name] = None
import numpy as np
import gradcam_serving.evaluate as ev
from gradcam_serving.evaluate._backends import ServerBackend
print(round(float(ev.auc(np.array([1.0, 0.0]))), 2))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.5"
