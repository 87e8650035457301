"""XGrad-CAM (Fu et al., 2020): weights ``sum_ij(G ⊙ A) / sum_ij(A)`` per channel."""

from __future__ import annotations

import tensorflow as tf

from ._base import CamInputs, Method, spatial_sum, weighted_sum


def _cam(inputs: CamInputs) -> tf.Tensor:
    a = inputs.feature_map
    weights = tf.math.divide_no_nan(spatial_sum(inputs.gradients * a), spatial_sum(a))
    return weighted_sum(weights, a)


METHOD = Method("xgradcam", "XGrad-CAM", needs_gradient=True, cam=_cam)
