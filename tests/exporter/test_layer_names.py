"""Friendly layer names on a real architecture (MobileNetV2 at 96 px, random weights)."""

from __future__ import annotations

import pytest

from gradcam_serving.errors import LayerNotFoundError
from gradcam_serving.exporter._export import _analyse


@pytest.fixture(scope="module")
def graph():
    import tf_keras

    model = tf_keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=5)
    return _analyse(model, None)[1]


def test_names_have_no_wrapper_noise(graph):
    names = [c.name for c in graph.candidates]
    assert graph.auto_candidate.name == "out_relu"
    assert {"block_16_project_BN", "block_1_expand_relu", "Conv_1"} <= set(names)
    assert not any("PartitionedCall" in c.path for c in graph.candidates)
    assert graph.auto_candidate.shape == (None, 3, 3, 1280)


def test_layers_resolve_by_name_and_by_path(graph):
    by_name = graph.resolve_layer("block_16_project_BN")
    assert by_name.op_type == "FusedBatchNormV3" and by_name.shape[1:3] == (3, 3)
    assert graph.resolve_layer(by_name.path) == by_name


def test_typo_suggests_the_closest_names(graph):
    with pytest.raises(LayerNotFoundError) as info:
        graph.resolve_layer("block_16_projekt_BN")
    assert info.value.suggestions[0] == "block_16_project_BN"


# -- Keras 3: model.export() SavedModels and .keras files name layers as the user does ---------------------------


@pytest.fixture(scope="module")
def inception_keras3(tmp_path_factory):
    """InceptionV3 (the project's origin story) at 107 px, where mixed10 is 2x2: Keras 3's SavedModel and .keras."""
    import keras

    root = tmp_path_factory.mktemp("inception_k3")
    model = keras.applications.InceptionV3(weights=None, input_shape=(107, 107, 3), classes=5)
    model.export(str(root / "saved"), verbose=False)
    model.save(root / "inception.keras")
    return root / "saved", root / "inception.keras", {layer.name for layer in model.layers}


def test_keras3_export_accepts_the_users_layer_names(inception_keras3, tmp_path):
    from click.testing import CliRunner

    from gradcam_serving.cli import cli
    from gradcam_serving.exporter import inspect_model

    saved, keras_file, layer_names = inception_keras3
    report = inspect_model(saved, layer="mixed10")
    names = [c.name for c in report.candidates]
    assert report.auto.name == "mixed10" and report.auto.shape == (None, 2, 2, 2048)
    # Every name is a real layer's: no "_1" left by Keras 3's doubled name scopes.
    assert {c.path.split("/")[1] for c in report.candidates} <= layer_names
    assert {"mixed9", "mixed9_0", "mixed9_1", "conv2d", "conv2d_1", "concatenate"} <= set(names)
    # The auto-named layers that used to collide (conv2d's scope reads "conv2d_1") are told apart.
    shapes = {c.name: c.shape for c in report.candidates}
    assert shapes["conv2d"] != shapes["conv2d_1"]
    # The same model as .keras lists the same layers under the same names.
    assert [c.path for c in inspect_model(keras_file).candidates] == [c.path for c in report.candidates]
    result = CliRunner().invoke(cli, ["inspect", str(saved), "--layer", "mixed10"])
    assert result.exit_code == 0, result.output
    assert "mixed10_1" not in result.stdout and " mixed10 " in result.stdout


def test_keras3_scope_spelling_is_still_accepted_when_unambiguous(inception_keras3):
    from gradcam_serving.exporter._export import _analyse

    graph = _analyse(inception_keras3[0], None)[1]
    assert graph.resolve_layer("mixed10_1") == graph.resolve_layer("mixed10")
    # "mixed9_1" is a layer of its own (InceptionV3 names its concatenations mixed9_0 and mixed9_1).
    assert graph.resolve_layer("mixed9_1").name == "mixed9_1" != graph.resolve_layer("mixed9").name
