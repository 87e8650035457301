"""LayerCAM (Jiang et al., 2021): ``sum_c ReLU(G) ⊙ A``, fine detail at earlier layers."""

from __future__ import annotations

import tensorflow as tf

from ._base import CamInputs, Method, weighted_sum


def _cam(inputs: CamInputs) -> tf.Tensor:
    return weighted_sum(tf.nn.relu(inputs.gradients), inputs.feature_map)


METHOD = Method("layercam", "LayerCAM", needs_gradient=True, cam=_cam)
