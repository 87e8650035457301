"""The exported ``tf.Module``: ``predict`` and ``explain`` built on the flat graph.

Both signatures import the same inlined graph and bind it to this module's own
variables, so the weights are saved once, as variables, and TF Serving's
Session loader restores exactly the handles the functions read (the Keras 3
``Could not find variable`` trap cannot happen: no Keras object is saved).

Bad requests are rejected inside the graph by ``tf.debugging`` asserts, so TF
Serving reports them as INVALID_ARGUMENT with our message. That is also why the
input specs have unknown rank: a static shape would let TF drop the asserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import tensorflow as tf

from gradcam_serving import signatures as sig
from gradcam_serving.errors import UnsupportedModelError

from ._encoded import DEFAULT_MAX_PIXELS, colormap_table, decode_images, overlay_pngs
from ._graph import Candidate, ModelGraph, bind_capture

__all__ = ["GradcamModule", "Preprocessing", "ScoreMode"]

ScoreMode = Literal["auto", "logits", "probabilities"]


@dataclass(frozen=True)
class Preprocessing:
    """How uint8 pixels become the model's input values.

    Either ``input_range`` (pixels 0..255 mapped linearly to ``[lo, hi]``) or
    per-channel ``mean`` and ``std`` on the 0..255 pixel scale
    (``(pixel - mean) / std``), never both.
    """

    input_range: tuple[float, float] | None = (0.0, 1.0)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must be given together (three values each, on the 0..255 scale)")
        if self.mean is not None:
            if self.input_range not in (None, (0.0, 1.0)):
                raise ValueError("give either input_range or mean/std, not both")
            object.__setattr__(self, "input_range", None)
            if len(self.mean) != 3 or len(self.std) != 3:  # type: ignore[arg-type]
                raise ValueError(f"mean and std need 3 values (R,G,B); got {self.mean} and {self.std}")
            if any(s <= 0 for s in self.std):  # type: ignore[union-attr]
                raise ValueError(f"std values must be positive; got {self.std}")
        elif self.input_range is None or not self.input_range[0] < self.input_range[1]:
            raise ValueError(f"input_range must be (lo, hi) with lo < hi; got {self.input_range}")

    def apply(self, pixels: tf.Tensor) -> tf.Tensor:
        """Map float pixels in [0, 255] to the model's input values."""
        if self.mean is not None:
            return (pixels - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)
        lo, hi = self.input_range  # type: ignore[misc]
        return pixels * ((hi - lo) / 255.0) + lo


def _validate_images(images: tf.Tensor) -> tf.Tensor:
    """Reject wrong rank, channel count or an empty image inside the graph.

    One assert checks everything, and its inputs cannot fail themselves: TF may
    run independent ops before an assert, so ``tf.shape(x)[3]`` on a rank-3
    tensor would fail first with an unhelpful "slice index 3" error.
    """
    shape = tf.shape(images)
    padded = tf.concat([shape, tf.zeros([4], tf.int32)], axis=0)
    valid = tf.logical_and(tf.equal(tf.size(shape), 4), tf.equal(padded[3], 3))
    valid = tf.logical_and(valid, tf.reduce_all(padded[1:3] > 0))
    check = tf.debugging.Assert(
        valid,
        ["images must be a uint8 tensor of shape [N, H, W, 3] (RGB, at least 1x1 pixels); got shape", shape],
        summarize=8,
        name="check_images",
    )
    with tf.control_dependencies([check]):
        images = tf.identity(images)
    images.set_shape([None, None, None, 3])
    return images


def _validate_class_index(class_index: tf.Tensor, batch: tf.Tensor, num_classes: int) -> tf.Tensor:
    """One assert, built only from ops that cannot fail on a wrong shape (see ``_validate_images``)."""
    shape = tf.shape(class_index)
    padded = tf.concat([shape, [-1]], axis=0)
    valid = tf.logical_and(tf.equal(tf.size(shape), 1), tf.equal(padded[0], batch))
    in_range = tf.logical_and(class_index >= -1, class_index < num_classes)
    valid = tf.logical_and(valid, tf.reduce_all(in_range))
    check = tf.debugging.Assert(
        valid,
        [
            "class_index must be an int32 vector with one entry per image, each -1 (the predicted class) "
            f"or a class in 0..{num_classes - 1} (the model has {num_classes} classes); got class_index",
            class_index,
            "for a batch of images of size",
            batch,
        ],
        summarize=16,
        name="check_class_index",
    )
    with tf.control_dependencies([check]):
        class_index = tf.identity(class_index)
    class_index.set_shape([None])
    return class_index


class GradcamModule(tf.Module):
    """The module written to ``BASE/NAME/VERSION``.

    Args:
        graph: the inlined model graph.
        target: the feature map Grad-CAM differentiates against.
        labels: one label per class, or ``None`` to return indices as text.
        preprocessing: pixel scaling done in-graph.
        scores: ``auto`` (softmax outputs are probabilities, anything else
            logits), ``logits`` or ``probabilities``.
        max_pixels: largest encoded image (height x width) the ``*_bytes`` signatures decode.
        colormap: matplotlib colormap of the in-graph ``overlay_png``.
        overlay_alpha: heatmap weight of the overlay, in [0, 1].
    """

    def __init__(
        self,
        graph: ModelGraph,
        target: Candidate,
        *,
        labels: Sequence[str] | None = None,
        preprocessing: Preprocessing = Preprocessing(),
        scores: ScoreMode = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        colormap: str = "jet",
        overlay_alpha: float = 0.4,
    ) -> None:
        super().__init__(name="gradcam_serving")
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive number of pixels; got {max_pixels}")
        if not 0.0 <= overlay_alpha <= 1.0:
            raise ValueError(f"overlay_alpha must lie in [0, 1]; got {overlay_alpha}")
        if labels is not None and len(labels) != graph.num_classes:
            raise ValueError(f"got {len(labels)} labels for a model with {graph.num_classes} classes")
        if scores not in ("auto", "logits", "probabilities"):
            raise ValueError(f"scores must be 'auto', 'logits' or 'probabilities'; got {scores!r}")
        self._graph = graph
        self._target = target
        self._preprocessing = preprocessing
        self._scores = scores
        self._label_values = list(labels) if labels is not None else None
        self._max_pixels = max_pixels
        self._colormap = colormap_table(colormap)
        self._overlay_alpha = overlay_alpha
        self._names = [name for name, value in graph.captures.items() if isinstance(value, tf.Variable)]
        self.weights = [
            tf.Variable(graph.captures[name].read_value(), trainable=False, name=_var_name(graph.captures[name]))
            for name in self._names
        ]
        self.predict = tf.function(
            self._predict, input_signature=[tf.TensorSpec(None, tf.uint8, name=sig.IMAGES)]
        )
        self.explain = tf.function(
            self._explain,
            input_signature=[
                tf.TensorSpec(None, tf.uint8, name=sig.IMAGES),
                tf.TensorSpec(None, tf.int32, name=sig.CLASS_INDEX),
            ],
        )
        self.predict_bytes = tf.function(
            self._predict_bytes, input_signature=[tf.TensorSpec(None, tf.string, name=sig.IMAGE_BYTES)]
        )
        self.explain_bytes = tf.function(
            self._explain_bytes,
            input_signature=[
                tf.TensorSpec(None, tf.string, name=sig.IMAGE_BYTES),
                tf.TensorSpec(None, tf.int32, name=sig.CLASS_INDEX),
            ],
        )

    def signatures(self) -> dict[str, Any]:
        """Concrete functions keyed by signature name, ready for ``tf.saved_model.save``."""
        predict = self.predict.get_concrete_function()
        return {
            sig.PREDICT: predict,
            sig.SERVING_DEFAULT: predict,
            sig.EXPLAIN: self.explain.get_concrete_function(),
            sig.PREDICT_BYTES: self.predict_bytes.get_concrete_function(),
            sig.EXPLAIN_BYTES: self.explain_bytes.get_concrete_function(),
        }

    # -- graph pieces ---------------------------------------------------------------------------

    def _bindings(self) -> dict[str, tf.Tensor]:
        graph = tf.compat.v1.get_default_graph()
        bindings = {name: bind_capture(graph, var) for name, var in zip(self._names, self.weights)}
        for name, value in self._graph.captures.items():
            if name not in bindings:
                bindings[name] = bind_capture(graph, value)
        return bindings

    def _model_input(self, images: tf.Tensor) -> tf.Tensor:
        pixels = tf.image.resize(tf.cast(images, tf.float32), self._graph.input_size, method="bilinear")
        return self._preprocessing.apply(pixels)

    def _run_model(self, model_input: tf.Tensor, extra: list[str]) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """Import the graph once; return (class-score tensor, probabilities, extra fetches)."""
        g = self._graph
        use_softmax_input = g.output_is_softmax and self._scores != "logits"
        fetches = [g.output_name] + ([g.logits_name] if use_softmax_input else []) + extra
        tensors = g.import_graph(model_input, self._bindings(), fetches)
        # The contract says float32 whatever the model computes in (float16 mixed precision, float64).
        # Extra fetches (the feature map) stay uncast: gradients must be taken at the real tensor.
        heads = len(fetches) - len(extra)
        scores = [tf.cast(t, tf.float32) for t in tensors[:heads]]
        rest = list(tensors[heads:])
        output = scores[0]
        if use_softmax_input:
            return scores[1], output, rest
        if self._scores == "probabilities":
            return output, output, rest
        return output, tf.nn.softmax(output, axis=-1), rest

    def _labels(self, class_index: tf.Tensor) -> tf.Tensor:
        if self._label_values is None:
            return tf.strings.as_string(class_index)
        return tf.gather(tf.constant(self._label_values, tf.string), class_index)

    def _outputs(self, probabilities: tf.Tensor, class_index: tf.Tensor) -> dict[str, tf.Tensor]:
        class_index = tf.cast(class_index, tf.int32)
        return {
            sig.PROBABILITIES: probabilities,
            sig.CLASS_INDEX: class_index,
            sig.SCORE: tf.gather(probabilities, class_index, batch_dims=1),
            sig.LABEL: self._labels(class_index),
        }

    # -- signatures -------------------------------------------------------------------------------

    def _predict(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._predict_outputs(self._model_input(_validate_images(images)))

    def _explain(self, images: tf.Tensor, class_index: tf.Tensor) -> dict[str, tf.Tensor]:
        images = _validate_images(images)
        class_index = _validate_class_index(class_index, tf.shape(images)[0], self._graph.num_classes)
        return self._explain_outputs(self._model_input(images), class_index, tf.shape(images)[1:3])

    def _predict_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        _, pixels = decode_images(image_bytes, self._graph.input_size, self._max_pixels)
        return self._predict_outputs(self._preprocessing.apply(pixels))

    def _explain_bytes(self, image_bytes: tf.Tensor, class_index: tf.Tensor) -> dict[str, tf.Tensor]:
        """Heatmaps come at the model's input size: images in one batch may differ in size."""
        image_bytes, pixels = decode_images(image_bytes, self._graph.input_size, self._max_pixels)
        class_index = _validate_class_index(class_index, tf.shape(image_bytes)[0], self._graph.num_classes)
        outputs = self._explain_outputs(self._preprocessing.apply(pixels), class_index, self._graph.input_size)
        outputs[sig.OVERLAY_PNG] = overlay_pngs(
            image_bytes, outputs[sig.HEATMAP], self._colormap, self._overlay_alpha, self._max_pixels
        )
        return outputs

    def _predict_outputs(self, model_input: tf.Tensor) -> dict[str, tf.Tensor]:
        _, probabilities, _ = self._run_model(model_input, [])
        return self._outputs(probabilities, tf.argmax(probabilities, axis=-1, output_type=tf.int32))

    def _explain_outputs(self, model_input: tf.Tensor, class_index: tf.Tensor, size: Any) -> dict[str, tf.Tensor]:
        scores, probabilities, (feature_map,) = self._run_model(model_input, [self._target.tensor])
        predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        chosen = tf.where(class_index < 0, predicted, class_index)
        class_score = tf.gather(scores, chosen, batch_dims=1)
        outputs = self._outputs(probabilities, chosen)
        outputs[sig.HEATMAP] = self._heatmap(class_score, feature_map, size)
        return outputs

    def _heatmap(self, class_score: tf.Tensor, feature_map: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
        """Grad-CAM: ReLU(sum_k mean_ij(dS/dA_k) * A_k), resized, divided by its maximum."""
        (gradients,) = tf.gradients(class_score, feature_map)
        if gradients is None:
            raise UnsupportedModelError(
                f"layer {self._target.name!r} has no gradient path to the class score; pick another layer"
            )
        weights = tf.reduce_mean(tf.cast(gradients, tf.float32), axis=[1, 2])
        cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", tf.cast(feature_map, tf.float32), weights))
        cam = tf.image.resize(cam[..., tf.newaxis], size, method="bilinear")[..., 0]
        peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
        return tf.clip_by_value(tf.math.divide_no_nan(cam, peak), 0.0, 1.0)


def _var_name(variable: tf.Variable) -> str:
    return variable.name.split(":")[0]
