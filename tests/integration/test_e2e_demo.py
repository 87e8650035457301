"""The built-in demo end to end: train, export, serve, explain over gRPC, pointing game (~40 s)."""

from __future__ import annotations

from PIL import Image

from gradcam_serving.demo import CLASSES, SIZE, run_demo


def test_demo_reaches_accuracy_and_pointing_targets(tmp_path):
    steps = []
    report = run_demo(tmp_path, images=100, step=steps.append)
    assert report.accuracy >= 0.9
    assert report.pointing_total == 100
    assert report.pointing_rate >= 0.9
    assert report.pointing_hits_exact_box <= report.pointing_hits
    assert report.export_path == tmp_path / "models" / "shapes" / "1"
    assert (report.export_path / "saved_model.pb").is_file()
    assert len(report.overlays) == 8
    for overlay in report.overlays:
        assert overlay.is_file() and overlay.stem.split("_", 1)[1] in CLASSES
        with Image.open(overlay) as image:
            assert image.size == (SIZE, SIZE)
    assert len(steps) >= 3
