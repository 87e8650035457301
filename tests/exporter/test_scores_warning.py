"""``inspect`` and ``export`` say when a model's output does not look like class scores (a headless backbone)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gradcam_serving.cli import cli
from gradcam_serving.errors import GradcamServingWarning
from gradcam_serving.exporter import export_model, inspect_model

NOT_SCORES = "does not look like class scores"


@pytest.fixture(scope="module")
def headless(tmp_path_factory):
    """keras.applications MobileNetV2 without its top: global average pooling gives 1,280 features."""
    import keras

    model = keras.applications.MobileNetV2(
        weights=None, include_top=False, pooling="avg", input_shape=(64, 64, 3), alpha=0.35
    )
    path = tmp_path_factory.mktemp("headless") / "mobilenet_v2_headless.keras"
    model.save(path)
    return model, path


def test_inspect_warns_on_a_headless_backbone(headless):
    model, path = headless
    with pytest.warns(GradcamServingWarning, match=NOT_SCORES) as caught:
        report = inspect_model(model)
    assert report.num_classes == 1280
    message = str(caught[0].message)
    assert "1280 values with no softmax or sigmoid" in message
    assert "the pooled feature map 'out_relu' with no weight after it" in message
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert NOT_SCORES in line


def test_export_warns_too(headless, tmp_path):
    with pytest.warns(GradcamServingWarning, match=NOT_SCORES):
        export_model(headless[0], tmp_path, "features")


def test_a_feature_vector_hub_module_is_named_as_such(tiny_models, tmp_path):
    """The session's tiny backbone saved as a TF2 hub module: 16 pooled features, under a feature_vector handle."""
    import shutil

    module = tmp_path / "tiny" / "feature_vector" / "1"
    shutil.copytree(tiny_models.hub_backbone, module)
    with pytest.warns(GradcamServingWarning, match=NOT_SCORES) as caught:
        inspect_model(module)
    message = str(caught[0].message)
    assert "a feature_vector module" in message and "with no weight after it" in message


def test_small_classifiers_with_logits_do_not_warn(tiny_models):
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, name="conv")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(7, name="logits")(x))
    # GradcamServingWarning is an error in this suite: these pass only if nothing is said.
    assert inspect_model(model).num_classes == 7
    assert inspect_model(tiny_models.hub_classifier).num_classes == 4


def test_one_label_per_output_removes_the_count_doubt(tmp_path):
    """2,000 logits with no softmax: a doubt from the count alone, which a label per class answers."""
    import warnings

    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, name="conv")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2000, name="logits")(x))
    with pytest.warns(GradcamServingWarning, match=NOT_SCORES) as caught:
        inspect_model(model)
    message = str(caught[0].message)
    assert "2000 values with no softmax or sigmoid" in message and "pooled" not in message
    with pytest.warns(GradcamServingWarning, match=NOT_SCORES):
        export_model(model, tmp_path, "unlabelled")
    labels = [f"class {index}" for index in range(2000)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradcamServingWarning)
        result = export_model(model, tmp_path, "labelled", labels=labels)
    assert result.path.is_dir()
    with pytest.warns(GradcamServingWarning, match="2000 values"):  # a label count that does not match changes nothing
        with pytest.raises(Exception, match="got 1999 labels for a model with 2000 classes"):
            export_model(model, tmp_path, "mislabelled", labels=labels[:-1])
