"""``evaluate`` on a model whose class probability never moves: the numbers cannot rank the methods, and it says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradcam_serving.cli import main
from gradcam_serving.errors import GradcamServingWarning
from gradcam_serving.evaluate import evaluate, samples_from_arrays

pytestmark = pytest.mark.slow

_FLAT = r"moves by at most 0\.000 on every deletion and insertion curve of 3 images"


@pytest.fixture(scope="module")
def constant_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-class Keras 3 classifier whose head has zero weights: every image scores 0.2 for every class."""
    import keras

    from gradcam_serving.exporter import export_model

    root = tmp_path_factory.mktemp("constant")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax", kernel_initializer="zeros", name="head")(x)
    keras.Model(inputs, outputs).save(root / "constant.keras")
    return export_model(root / "constant.keras", root / "models", "constant", version=1,
                        methods="gradcam,eigencam").path


def _samples(count: int = 3) -> list:
    images = np.random.default_rng(5).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    return samples_from_arrays(images, labels=[1] * count)


def test_flat_curves_warn_that_the_metrics_cannot_rank_the_methods(constant_export: Path) -> None:
    with pytest.warns(GradcamServingWarning, match=_FLAT) as caught:
        report = evaluate(constant_export, _samples(), steps=4)
    assert len(caught) == 1
    assert "eigencam" in str(caught[0].message) and "gradcam" in str(caught[0].message)
    assert [round(r.deletion_auc, 3) for r in report.results] == [0.2, 0.2]


def test_the_cli_prints_the_warning_as_a_line(constant_export: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, sample in enumerate(_samples()):
        Image.fromarray(sample.image).save(folder / f"{i}.png")
    assert main(["evaluate", str(constant_export), "--images", str(folder), "--steps", "4"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert "ADCC" in warnings[0]
