"""Recipro-CAM (Byun & Lee, 2022): no gradient, one batched re-run of the model's tail.

For every position (i, j) of the ``h x w`` feature map, the copy of A that
keeps only that position (all channels) and zeroes the rest is fed to the
part of the model after A; the map at (i, j) is the probability that copy
gives the explained class. All ``N*h*w`` copies go through the tail in one batch.
"""

from __future__ import annotations

import tensorflow as tf

from ._base import CamInputs, Method


def _cam(inputs: CamInputs) -> tf.Tensor:
    a = inputs.feature_map
    shape = tf.shape(a)
    n, h, w = shape[0], shape[1], shape[2]
    masks = tf.reshape(tf.eye(h * w, dtype=a.dtype), [1, h * w, h, w, 1])
    copies = tf.reshape(a[:, tf.newaxis] * masks, [n * h * w, h, w, shape[3]])
    copies.set_shape([None, *a.shape[1:]])
    probabilities = inputs.probabilities_of(copies)
    per_copy = tf.reshape(probabilities, [n, h * w, -1])
    chosen = tf.gather(per_copy, inputs.class_index, axis=2, batch_dims=1)
    return tf.reshape(chosen, [n, h, w])


METHOD = Method("reciprocam", "Recipro-CAM", needs_gradient=False, cam=_cam, needs_tail=True)
