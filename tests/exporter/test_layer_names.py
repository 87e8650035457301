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
