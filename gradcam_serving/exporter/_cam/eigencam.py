"""Eigen-CAM (Muhammad & Yeasin, 2020): the first principal component of A, no gradient.

A is read as ``h*w`` observations of ``c`` channels, centred per channel; the
map is the projection on the first right singular vector. An SVD's sign is
arbitrary, so it is fixed to agree with the mean activation over channels.
The map does not depend on the class (that is the method).
"""

from __future__ import annotations

import tensorflow as tf

from ._base import CamInputs, Method


def _cam(inputs: CamInputs) -> tf.Tensor:
    a = inputs.feature_map
    shape = tf.shape(a)
    points = tf.reshape(a, [shape[0], shape[1] * shape[2], shape[3]])
    centred = points - tf.reduce_mean(points, axis=1, keepdims=True)
    _, _, v = tf.linalg.svd(centred, full_matrices=False)
    projection = tf.einsum("npc,nc->np", centred, v[:, :, 0])
    agreement = tf.reduce_sum(projection * tf.reduce_mean(points, axis=-1), axis=1, keepdims=True)
    projection = tf.where(agreement < 0.0, -projection, projection)
    return tf.reshape(projection, shape[:3])


METHOD = Method("eigencam", "Eigen-CAM", needs_gradient=False, cam=_cam)
