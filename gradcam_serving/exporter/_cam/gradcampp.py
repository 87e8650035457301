"""Grad-CAM++ (Chattopadhay et al., 2018), closed form with the exponential trick.

With ``Y = exp(S)`` the second and third derivatives of Y are ``Y G²`` and
``Y G³``, so ``alpha = G² / (2 G² + sum_ij(A) G³)`` needs no Hessian. ``Y``
cancels in ``alpha`` and only scales the map per image (normalisation removes
it), so it is dropped: large logits cannot overflow. As in the authors' code
and tf-keras-vis, alphas are normalised to sum 1 per channel, and the channel
weights are ``sum_ij alpha ReLU(G)``.
"""

from __future__ import annotations

import tensorflow as tf

from ._base import CamInputs, Method, spatial_sum, weighted_sum


def _cam(inputs: CamInputs) -> tf.Tensor:
    a, g = inputs.feature_map, inputs.gradients
    g2 = tf.square(g)
    alphas = tf.math.divide_no_nan(g2, 2.0 * g2 + spatial_sum(a) * g2 * g)
    alphas = tf.math.divide_no_nan(alphas, spatial_sum(alphas))
    weights = spatial_sum(alphas * tf.nn.relu(g))
    return weighted_sum(weights, a)


METHOD = Method("gradcampp", "Grad-CAM++", needs_gradient=True, cam=_cam)
