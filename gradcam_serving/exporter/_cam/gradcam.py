"""Grad-CAM (Selvaraju et al., 2017): channel weights are the spatial mean of the gradient."""

from __future__ import annotations

import tensorflow as tf

from ._base import CamInputs, Method, weighted_sum


def _cam(inputs: CamInputs) -> tf.Tensor:
    weights = tf.reduce_mean(inputs.gradients, axis=[1, 2], keepdims=True)
    return weighted_sum(weights, inputs.feature_map)


METHOD = Method("gradcam", "Grad-CAM", needs_gradient=True, cam=_cam)
