"""The CAM methods: one shared pipeline, one small hook per method.

Each method module defines a :class:`Method`: whether it needs the gradient
of the class score, and its map ``cam(CamInputs) -> [N, h, w]``. Everything
else (the forward pass, the gradient, ReLU, resize, ``divide_no_nan``
normalisation) is written once, in :func:`finish` and in the exported module,
the shape of pytorch-grad-cam's ``base_cam.py``. Adding a method is adding a
module and a line in :data:`_MODULES`.
"""

from __future__ import annotations

import tensorflow as tf

from gradcam_serving import signatures as sig

from ._base import CamInputs, Method
from . import eigencam, gradcam, gradcampp, hirescam, layercam, reciprocam, xgradcam

__all__ = ["CamInputs", "Method", "finish", "get_method"]

_MODULES = (gradcam, gradcampp, hirescam, xgradcam, layercam, eigencam, reciprocam)
_REGISTRY: dict[str, Method] = {module.METHOD.name: module.METHOD for module in _MODULES}
assert tuple(_REGISTRY) == sig.METHODS, "the registry and the contract must list the same methods"


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name fails with the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown CAM method {name!r}; valid methods: {', '.join(sig.METHODS)}") from None


def finish(cam: tf.Tensor, size: tf.Tensor | tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """The shared tail of every method: ReLU, then bilinear resize and ``divide_no_nan`` by the peak.

    Returns:
        ``(cam [N, h, w] after ReLU, heatmap [N, H, W] in [0, 1])``.
    """
    cam = tf.nn.relu(cam)
    resized = tf.image.resize(cam[..., tf.newaxis], size, method="bilinear")[..., 0]
    peak = tf.reduce_max(resized, axis=[1, 2], keepdims=True)
    return cam, tf.clip_by_value(tf.math.divide_no_nan(resized, peak), 0.0, 1.0)
