"""The exported ``tf.Module``: every signature built from one table, input kind x head.

Input kinds are uint8 ``images`` and encoded ``image_bytes``; heads are
``predict``, ``explain`` with one CAM method (:mod:`._cam`) and
``explain_topk``. Each (kind, head) pair is one ``tf.function``, so a request
pays only for what its signature computes. Every signature returns empty
outputs for an empty batch without running the model (``tf.cond``): oneDNN
rejects empty batches in some kernels (FusedBatchNormV3).

All signatures import the same inlined graph and bind it to this module's own
variables, so the weights are saved once, as variables, and TF Serving's
Session loader restores exactly the handles the functions read (the Keras 3
``Could not find variable`` trap cannot happen: no Keras object is saved).

Bad requests are rejected inside the graph by ``tf.debugging`` asserts, so TF
Serving reports them as INVALID_ARGUMENT with our message. That is also why the
input specs have unknown rank: a static shape would let TF drop the asserts.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from gradcam_serving import signatures as sig
from gradcam_serving.exports import ExportMetadata
from gradcam_serving.errors import UnsupportedModelError

from ._cam import CamInputs, Method, finish, get_method
from ._encoded import DEFAULT_MAX_PIXELS, colormap_table, decode_images, overlay_pngs
from ._graph import Candidate, ModelGraph, bind_capture
from ._tail import import_tail, tail_graph_def

LABEL_TEXT_SCOPE = "gradcam_serving_label_text"
"""Name scope of the ops that turn class indices into label text (``AsString`` without ``labels``).

String work runs on the host CPU in TF Serving by design, like decoding and PNG encoding;
``validate``'s GPU-kernel check leaves this scope out, so it names only the model's own ops.
"""

__all__ = ["GradcamModule", "Preprocessing", "ScoreMode"]

ScoreMode = sig.ScoreMode


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


def _check_pixel_limit(images: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """The export's pixel limit holds for uint8 images too, not only for encoded ones."""
    shape = tf.shape(images, out_type=tf.int64)
    check = tf.debugging.Assert(
        shape[1] * shape[2] <= max_pixels,
        [f"images too large: the export accepts at most {max_pixels} pixels (height x width) per image; "
         "got height and width", shape[1:3]],
        name="check_image_pixels",
    )
    with tf.control_dependencies([check]):
        return tf.identity(images)


def _validate_k(k: tf.Tensor, batch: tf.Tensor, num_classes: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``k``: an int32 scalar or one value per image, each in 1..C; returns ``(k as [N], max k)``.

    A per-image ``[N]`` form exists because TF Serving's batching session refuses scalar
    inputs ("Batching session Run() input tensors must have at least one dimension"); a
    scalar is kept for callers of servers without batching. One assert, as in
    ``_validate_images``.
    """
    shape = tf.shape(k)
    padded = tf.concat([shape, [-1]], axis=0)
    scalar = tf.equal(tf.size(shape), 0)
    per_image = tf.logical_and(tf.equal(tf.size(shape), 1), tf.equal(padded[0], batch))
    values = tf.reshape(k, [-1])
    in_range = tf.logical_and(tf.reduce_all(values >= 1), tf.reduce_all(values <= num_classes))
    check = tf.debugging.Assert(
        tf.logical_and(tf.logical_or(scalar, per_image), in_range),
        [f"k must be an int32 scalar or one value per image, each in 1..{num_classes} "
         f"(the model has {num_classes} classes); got batch size", batch, "and k", k],
        summarize=8,
        name="check_k",
    )
    with tf.control_dependencies([check]):
        return tf.broadcast_to(values, [batch]), tf.reduce_max(tf.concat([values, [1]], axis=0))


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


_INPUT_SPECS = {
    False: tf.TensorSpec(None, tf.uint8, name=sig.IMAGES),
    True: tf.TensorSpec(None, tf.string, name=sig.IMAGE_BYTES),
}
_HEAD_SPECS = {
    sig.HEAD_PREDICT: [],
    sig.HEAD_EXPLAIN: [tf.TensorSpec(None, tf.int32, name=sig.CLASS_INDEX)],
    sig.HEAD_TOPK: [tf.TensorSpec(None, tf.int32, name=sig.K)],
}


@dataclass(frozen=True)
class _Batch:
    """A request's images after its input stage, as every head sees them.

    Attributes:
        model_input: preprocessed ``[N, H, W, 3]`` at the model's input size.
        size: the heatmaps' size: the request's for uint8 images, the model's for
            encoded ones (whose sizes may differ within a batch).
        image_bytes: the encoded images (overlays are drawn over them), or ``None``.
    """

    model_input: tf.Tensor
    size: Any
    image_bytes: tf.Tensor | None

    @property
    def count(self) -> tf.Tensor:
        return tf.shape(self.model_input)[0]


class GradcamModule(tf.Module):
    """The module written to ``BASE/NAME/VERSION``.

    Args:
        graph: the inlined model graph.
        target: the feature map the CAM methods read (A).
        methods: CAM methods to export (see :mod:`._cam`); the first is the
            default that ``explain`` and ``explain_topk`` compute.
        labels: one label per class, or ``None`` to return indices as text.
        preprocessing: pixel scaling done in-graph.
        scores: ``auto`` (softmax outputs are probabilities, sigmoid outputs
            multi-label probabilities, anything else logits), ``logits``,
            ``probabilities`` or ``sigmoid`` (multi-label: independent sigmoids,
            Grad-CAM on the pre-sigmoid logit).
        max_pixels: largest image (height x width) any signature accepts.
        colormap: matplotlib colormap of the in-graph ``overlay_png``.
        overlay_alpha: heatmap weight of the overlay, in [0, 1].
    """

    def __init__(
        self,
        graph: ModelGraph,
        target: Candidate,
        *,
        methods: Sequence[str] | str = (sig.DEFAULT_EXPORT_METHOD,),
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
        if scores not in sig.SCORE_MODES:
            raise ValueError(f"scores must be 'auto', 'logits', 'probabilities' or 'sigmoid'; got {scores!r}")
        if graph.channels == 1 and preprocessing.mean is not None and len({*preprocessing.mean}) + len({*preprocessing.std}) > 2:
            raise ValueError(
                "the model takes grayscale images, so --mean/--std need the same value for R, G and B; "
                f"got mean {preprocessing.mean} and std {preprocessing.std}"
            )
        self.methods = sig.parse_methods(methods)
        if target.is_tokens and any(get_method(m).needs_tail for m in self.methods):
            raise ValueError(
                f"method(s) {', '.join(m for m in self.methods if get_method(m).needs_tail)} re-run the model "
                f"from the target layer, which is not supported for the token layer {target.name!r} of a vision "
                "transformer; use a gradient method (gradcam, gradcampp, hirescam, xgradcam, layercam) or eigencam"
            )
        self._graph = graph
        self._target = target
        self._preprocessing = preprocessing
        self._scores = scores
        self._label_values = list(labels) if labels is not None else None
        self._max_pixels = max_pixels
        self._colormap = colormap_table(colormap)
        self._colormap_name = colormap
        self._overlay_alpha = overlay_alpha
        self._tail_def: Any = None
        self._names = [name for name, value in graph.captures.items() if isinstance(value, tf.Variable)]
        self.weights = [
            tf.Variable(graph.captures[name].read_value(), trainable=False, name=_var_name(graph.captures[name]))
            for name in self._names
        ]
        # Rows that compute the same thing (``explain`` and ``explain_<default>``) share one function, so it
        # is traced, saved and checked once and appears under both signature names.
        by_row: dict[tuple[bool, str, str | None], Any] = {}
        functions: dict[str, Any] = {}
        for name, row in sig.signature_table(self.methods, topk=not target.is_tokens).items():
            if row.computes not in by_row:
                by_row[row.computes] = self._signature_function(row)
            functions[name] = by_row[row.computes]
        # A read-only view is not tracked by tf.Module: tracked tf.functions are traced again by
        # tf.saved_model.save (a new cache key in its context) and saved a second time beside the signatures.
        self._functions = types.MappingProxyType(functions)

    def metadata(self) -> ExportMetadata:
        """What the export says about itself, written beside it for the runtime and ``validate``."""
        return ExportMetadata(
            methods=tuple(self.methods), default_method=self.methods[0],
            labels=None if self._label_values is None else tuple(self._label_values),
            input_size=tuple(self._graph.input_size), max_pixels=self._max_pixels,
            num_classes=self._graph.num_classes, topk=not self._target.is_tokens,
            layer=self._target.name, colormap=self._colormap_name, overlay_alpha=self._overlay_alpha,
            contract=sig.CONTRACT_VERSION,
        )

    def signatures(self) -> dict[str, Any]:
        """Concrete functions keyed by signature name, ready for ``tf.saved_model.save``."""
        concrete = {name: function.get_concrete_function() for name, function in self._functions.items()}
        concrete[sig.SERVING_DEFAULT] = concrete[sig.PREDICT]
        return concrete

    def _signature_function(self, row: sig.SignatureRow) -> Any:
        """One row of the table: input stage, then the head, skipped for an empty batch."""
        cam_method = get_method(row.method) if row.method is not None else None
        head = row.head

        def run(inputs: tf.Tensor, *extra: tf.Tensor) -> dict[str, tf.Tensor]:
            batch = self._stage(row.encoded, inputs)
            if head == sig.HEAD_PREDICT:
                compute = lambda: self._predict_head(batch)  # noqa: E731
                return tf.cond(batch.count > 0, compute, lambda: self._empty(head, batch))
            if head == sig.HEAD_EXPLAIN:
                (class_index,) = extra
                class_index = _validate_class_index(class_index, batch.count, self._graph.num_classes)
                compute = lambda: self._explain_head(batch, cam_method, class_index)  # noqa: E731
                return tf.cond(batch.count > 0, compute, lambda: self._empty(head, batch))
            k, most = _validate_k(extra[0], batch.count, self._graph.num_classes)
            compute = lambda: self._topk_head(batch, cam_method, k, most)  # noqa: E731
            return tf.cond(batch.count > 0, compute, lambda: self._empty(head, batch, most))

        specs = [_INPUT_SPECS[row.encoded], *_HEAD_SPECS[head]]
        # Name the parameters after the aliases, so in-process calls take the same keywords as TF Serving.
        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for spec in specs]
        )
        return tf.function(run, input_signature=specs, autograph=False)

    # -- input stages -----------------------------------------------------------------------------

    def _stage(self, encoded: bool, inputs: tf.Tensor) -> _Batch:
        if not encoded:
            images = _check_pixel_limit(_validate_images(inputs), self._max_pixels)
            return _Batch(self._model_input(images), tf.shape(images)[1:3], None)
        image_bytes, pixels = decode_images(inputs, self._graph.input_size, self._max_pixels)
        return _Batch(self._pixels_to_input(pixels), self._graph.input_size, image_bytes)

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
        return self._pixels_to_input(pixels)

    def _pixels_to_input(self, pixels: tf.Tensor) -> tf.Tensor:
        """Float RGB pixels in [0, 255] -> model input; grayscale models get BT.601 luma first."""
        if self._graph.channels == 1:
            # mean/std hold three equal values (checked in __init__): keep one channel after broadcasting
            return self._preprocessing.apply(tf.image.rgb_to_grayscale(pixels))[..., :1]
        return self._preprocessing.apply(pixels)

    def _score_fetches(self) -> list[str]:
        g = self._graph
        sigmoid = self._is_multilabel()
        use_logits = (g.output_is_softmax and self._scores != "logits") or (sigmoid and g.output_is_sigmoid)
        return [g.output_name] + ([g.logits_name] if use_logits else [])

    def _is_multilabel(self) -> bool:
        """Independent sigmoids per class: forced, or ``auto`` on a model whose output is a ``Sigmoid``."""
        return self._scores == "sigmoid" or (self._scores == "auto" and self._graph.output_is_sigmoid)

    def _run_model(self, model_input: tf.Tensor, extra: list[str]) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """Import the graph once; return (class-score tensor, probabilities, extra fetches)."""
        fetches = self._score_fetches() + extra
        # The identity brings the input into the tf.cond branch being traced (import_graph_def cannot map
        # a tensor of the enclosing graph).
        tensors = self._graph.import_graph(tf.identity(model_input), self._bindings(), fetches)
        # Extra fetches (the feature map) stay uncast: gradients must be taken at the real tensor.
        heads = len(fetches) - len(extra)
        scores, probabilities = self._scores_of(tensors[:heads])
        return scores, probabilities, list(tensors[heads:])

    def _scores_of(self, outputs: Sequence[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """(class scores to differentiate, probabilities) from the fetched output (and logits)."""
        # The contract says float32 whatever the model computes in (float16 mixed precision, float64).
        scores = [tf.cast(t, tf.float32) for t in outputs]
        output = scores[0]
        if len(scores) > 1:
            return scores[1], output
        if self._scores == "probabilities":
            return output, output
        if self._is_multilabel():
            return output, tf.sigmoid(output)
        return output, tf.nn.softmax(output, axis=-1)

    def _tail(self, feature_map: tf.Tensor, model_input: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The model from the target layer onwards, run on new feature maps: (scores, probabilities).

        ``feature_map`` holds, image-major, a whole number of copies per image of ``model_input``; a tail
        that also reads the input itself (e.g. its shape) gets the input repeated to match.
        """
        fetches = self._score_fetches()
        if self._tail_def is None:
            self._tail_def = tail_graph_def(self._graph.graph_def, self._target.tensor, fetches, feature_map.dtype)
        bindings = self._bindings()
        if any(node.name == self._graph.input_name.split(":")[0] for node in self._tail_def.node):
            copies = tf.shape(feature_map)[0] // tf.maximum(tf.shape(model_input)[0], 1)
            bindings[self._graph.input_name] = tf.repeat(tf.identity(model_input), copies, axis=0)
        return self._scores_of(import_tail(self._tail_def, self._target.tensor, feature_map, bindings, fetches))

    def _gradients(self, class_score: tf.Tensor, feature_map: tf.Tensor) -> tf.Tensor:
        (gradients,) = tf.gradients(class_score, feature_map)
        if gradients is None:
            raise UnsupportedModelError(
                f"layer {self._target.name!r} has no gradient path to the class score; pick another layer"
            )
        return tf.cast(gradients, tf.float32)

    def _method_cam(
        self,
        method: Method,
        feature_map: tf.Tensor,
        class_index: tf.Tensor,
        scores: Callable[[], tf.Tensor],
        model_input: tf.Tensor,
    ) -> tf.Tensor:
        """The method's raw map; the gradient is built only for methods that use it."""
        gradients = None
        if method.needs_gradient:
            gradients = self._gradients(tf.gather(scores(), class_index, batch_dims=1), feature_map)
        dtype = feature_map.dtype
        return method.cam(
            CamInputs(
                feature_map=tf.cast(feature_map, tf.float32),
                gradients=gradients,
                class_index=class_index,
                probabilities_of=lambda copies: self._tail(tf.cast(copies, dtype), model_input)[1],
            )
        )

    def _labels(self, class_index: tf.Tensor) -> tf.Tensor:
        with tf.name_scope(LABEL_TEXT_SCOPE):
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

    # -- heads ------------------------------------------------------------------------------------

    def _predict_head(self, batch: _Batch) -> dict[str, tf.Tensor]:
        _, probabilities, _ = self._run_model(batch.model_input, [])
        return self._outputs(probabilities, tf.argmax(probabilities, axis=-1, output_type=tf.int32))

    def _explain_head(self, batch: _Batch, method: Method, class_index: tf.Tensor) -> dict[str, tf.Tensor]:
        scores, probabilities, (feature_map,) = self._run_model(batch.model_input, [self._target.tensor])
        predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        chosen = tf.where(class_index < 0, predicted, class_index)
        cam, heatmap = finish(
            self._method_cam(method, feature_map, chosen, lambda: scores, batch.model_input), batch.size
        )
        outputs = self._outputs(probabilities, chosen)
        outputs[sig.METHOD] = tf.fill(tf.shape(chosen), method.name)
        outputs[sig.HEATMAP] = heatmap
        outputs[sig.CAM] = cam
        if batch.image_bytes is not None:
            outputs[sig.OVERLAY_PNG] = overlay_pngs(
                batch.image_bytes, heatmap, self._colormap, self._overlay_alpha, self._max_pixels
            )
        return outputs

    def _topk_head(self, batch: _Batch, method: Method, k: tf.Tensor, most: tf.Tensor) -> dict[str, tf.Tensor]:
        """One forward pass; the tail runs on ``most`` copies of A, and one gradient covers them all.

        Every image gets ``most`` (the largest k) rows; the rows past an image's own k are
        padding: class -1, score 0, empty label, zero maps. TF Serving's batching merges
        requests with different k into one run and splits only along the batch axis, so a
        client trims the rows to the k it asked for.
        """
        _, probabilities, (feature_map,) = self._run_model(batch.model_input, [self._target.tensor])
        top = tf.math.top_k(probabilities, most)
        copies = tf.repeat(feature_map, most, axis=0)
        copies.set_shape([None, *feature_map.shape[1:]])
        classes = tf.reshape(top.indices, [-1])
        tail_scores = lambda: self._tail(copies, batch.model_input)[0]  # noqa: E731
        cam, heatmap = finish(self._method_cam(method, copies, classes, tail_scores, batch.model_input), batch.size)
        leading = tf.shape(top.indices)
        kept = tf.sequence_mask(k, most)
        maps_kept = lambda x: tf.where(kept[:, :, tf.newaxis, tf.newaxis], x, tf.zeros_like(x))  # noqa: E731
        return {
            sig.PROBABILITIES: probabilities,
            sig.CLASS_INDEX: tf.where(kept, top.indices, -tf.ones_like(top.indices)),
            sig.SCORE: tf.where(kept, top.values, tf.zeros_like(top.values)),
            sig.LABEL: tf.where(kept, self._labels(top.indices), ""),
            sig.METHOD: tf.where(kept, tf.fill(leading, method.name), ""),
            sig.HEATMAP: maps_kept(tf.reshape(heatmap, tf.concat([leading, tf.shape(heatmap)[1:]], axis=0))),
            sig.CAM: maps_kept(tf.reshape(cam, tf.concat([leading, tf.shape(cam)[1:]], axis=0))),
        }

    def _empty(self, head: str, batch: _Batch, k: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """The outputs of ``head`` for N = 0, at their documented shapes, without running the model."""
        per_image = [] if k is None else [k]
        height, width = (batch.size[0], batch.size[1])
        outputs = {
            sig.PROBABILITIES: tf.zeros([0, self._graph.num_classes], tf.float32),
            sig.CLASS_INDEX: tf.zeros([0, *per_image], tf.int32),
            sig.SCORE: tf.zeros([0, *per_image], tf.float32),
            sig.LABEL: tf.fill([0, *per_image], ""),
        }
        if head == sig.HEAD_PREDICT:
            return outputs
        outputs[sig.METHOD] = tf.fill([0, *per_image], "")
        outputs[sig.HEATMAP] = tf.zeros([0, *per_image, height, width], tf.float32)
        outputs[sig.CAM] = tf.zeros([0, *per_image, *(self._target.grid or self._target.shape[1:3])], tf.float32)
        if head == sig.HEAD_EXPLAIN and batch.image_bytes is not None:
            outputs[sig.OVERLAY_PNG] = tf.fill([0], "")
        return outputs

def _var_name(variable: tf.Variable) -> str:
    return variable.name.split(":")[0]
