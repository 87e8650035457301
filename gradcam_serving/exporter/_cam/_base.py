"""What a CAM method receives and what it declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

__all__ = ["CamInputs", "Method", "spatial_sum"]


@dataclass(frozen=True)
class CamInputs:
    """Everything a method may use; all float32.

    Attributes:
        feature_map: A, ``[N, h, w, c]``.
        gradients: G = dS/dA of each row's chosen class score ``S``, or ``None``
            for methods that declare ``needs_gradient=False``.
        class_index: ``[N]`` int32, the class each row explains.
        probabilities_of: the model from A onwards (the tail): ``[M, h, w, c] -> [M, C]`` probabilities.
    """

    feature_map: tf.Tensor
    gradients: tf.Tensor | None
    class_index: tf.Tensor
    probabilities_of: Callable[[tf.Tensor], tf.Tensor]


@dataclass(frozen=True)
class Method:
    """A registered CAM method: ``cam`` maps :class:`CamInputs` to ``[N, h, w]`` before ReLU."""

    name: str
    title: str
    needs_gradient: bool
    cam: Callable[[CamInputs], tf.Tensor]
    needs_tail: bool = False
    """Re-runs the model from A onwards (``probabilities_of``), which a ViT token grid cannot feed."""


def spatial_sum(x: tf.Tensor) -> tf.Tensor:
    """Sum over the spatial axes of ``[N, h, w, c]``, kept as ``[N, 1, 1, c]``."""
    return tf.reduce_sum(x, axis=[1, 2], keepdims=True)


def weighted_sum(weights: tf.Tensor, feature_map: tf.Tensor) -> tf.Tensor:
    """``sum_c w_c A_c`` for channel weights ``[N, 1, 1, c]`` (or per position ``[N, h, w, c]``)."""
    return tf.reduce_sum(weights * feature_map, axis=-1)
