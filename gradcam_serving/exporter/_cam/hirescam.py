"""HiResCAM (Draelos & Carin, 2020): ``sum_c G ⊙ A``, faithful to the score by construction."""

from __future__ import annotations

import tensorflow as tf

from ._base import CamInputs, Method, weighted_sum


def _cam(inputs: CamInputs) -> tf.Tensor:
    return weighted_sum(inputs.gradients, inputs.feature_map)


METHOD = Method("hirescam", "HiResCAM", needs_gradient=True, cam=_cam)
