"""Open the opaque graph: inline every function and find the tensors inside.

A hub module is one ``StatefulPartitionedCall`` from the outside, which is why
``get_layer`` recipes fail on it. Grappler's function inlining flattens it into
plain ops whose names still carry the layer scopes, so we can (1) list the 4-D
feature maps a user may target, (2) re-import the flat graph inside our own
``tf.function`` and take gradients with respect to any of them.

Weights are never frozen: captured variables stay resource placeholders in the
``GraphDef`` and are re-bound to real variables when the graph is imported.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework import convert_to_constants

from gradcam_serving.errors import LayerNotFoundError, UnsupportedModelError

from ._loaders import LoadedModel
from ._names import IMPORT_SCOPE, keras3_scope_names, raw_segments, tidy_path

__all__ = [
    "Candidate", "ModelGraph", "REFUSED_OPS", "bind_capture", "check_refused_ops", "scores_warning", "trace_model_graph",
]

REFUSED_OPS: dict[str, str] = {
    "PyFunc": "wraps Python code, and TF Serving is C++",
    "PyFuncStateless": "wraps Python code, and TF Serving is C++",
    "EagerPyFunc": "wraps Python code, and TF Serving is C++",
    "ReadFile": "reads the server's file system",
    "WriteFile": "writes to the server's file system",
    "MatchingFiles": "lists the server's file system",
}
"""Ops an export must not contain, with the reason shown to the user."""

_SKIP_OPS = frozenset({"Identity", "IdentityN", "Const", "Placeholder", "ReadVariableOp", "NoOp"})
_MAX_PREFIX_TOKENS = 8
_MAX_LOGITS = 1001
"""More outputs than this with no softmax or sigmoid look like features (ImageNet hub classifiers give 1001 logits)."""


@dataclass(frozen=True)
class Candidate:
    """A feature map Grad-CAM can target: a 4-D map, or ViT tokens that form a grid.

    Attributes:
        name: the friendly name users pass to ``--layer`` (``out_relu``).
        path: the full tidy path (``mobilenetv2_1.00_224/out_relu``).
        op_type: the TF op producing the tensor (``Relu6``).
        shape: runtime shape on the probe batch, batch ``None`` (``(None, 7, 7, 1280)``;
            ``(None, 197, 768)`` for tokens).
        tensor: the tensor's name in the inlined graph.
        weighted: a weight of the model feeds it (``False`` for pure preprocessing).
        grid: ``(h, w)`` of a token tensor's grid, ``None`` for a 4-D map.
        prefix: tokens before the grid (CLS and register tokens).
    """

    name: str
    path: str
    op_type: str
    shape: tuple[int | None, ...]
    tensor: str
    weighted: bool = True
    grid: tuple[int, int] | None = None
    prefix: int = 0

    @property
    def is_tokens(self) -> bool:
        """The tensor is ``[N, T, C]`` tokens, reshaped to ``[N, h, w, C]`` before Grad-CAM."""
        return self.grid is not None

    def to_grid(self, tokens: tf.Tensor) -> tf.Tensor:
        """``[N, prefix + h*w, C]`` -> ``[N, h, w, C]``, pytorch-grad-cam's ``reshape_transform``."""
        if self.grid is None:
            return tokens
        height, width = self.grid
        return tf.reshape(tokens[:, self.prefix :, :], [-1, height, width, int(self.shape[-1])])

    def from_grid(self, grid: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
        """Inverse of :meth:`to_grid`; the prefix tokens are taken from ``tokens``."""
        height, width = self.grid  # type: ignore[misc]
        flat = tf.reshape(grid, [-1, height * width, int(self.shape[-1])])
        return tf.concat([tokens[:, : self.prefix, :], flat], axis=1)


@dataclass
class ModelGraph:
    """The inlined model graph plus what is needed to import it again.

    Attributes:
        graph_def: flat ``GraphDef`` without function calls.
        input_name: tensor name of the image placeholder.
        output_name: tensor name of the model's output.
        captures: placeholder tensor name -> the variable (or eager tensor) it stands for.
        candidates: target layers, in topological order.
        output_is_softmax: the output is produced by a ``Softmax`` op.
        logits_name: the tensor feeding that softmax or sigmoid (or the output itself).
        num_classes: size of the class dimension.
        input_size: ``(height, width)`` the model expects.
        output_is_sigmoid: the output is produced by a ``Sigmoid`` op (multi-label).
        channels: channels of the model's input (3, or 1 for grayscale models).
        auto: the automatic choice (see :func:`_choose_auto`).
        score_doubts: signs that the output is a feature vector, not class scores (see :func:`scores_warning`).
    """

    graph_def: graph_pb2.GraphDef
    input_name: str
    output_name: str
    captures: dict[str, Any]
    candidates: list[Candidate]
    output_is_softmax: bool
    logits_name: str
    num_classes: int
    input_size: tuple[int, int]
    output_is_sigmoid: bool = False
    channels: int = 3
    auto: Candidate | None = None
    score_doubts: dict[str, str] = field(default_factory=dict)

    @property
    def auto_candidate(self) -> Candidate:
        return self.auto if self.auto is not None else self.candidates[-1]

    @tf.autograph.experimental.do_not_convert
    def import_graph(self, images: tf.Tensor, bindings: dict[str, tf.Tensor], fetches: list[str]) -> list[tf.Tensor]:
        """Import the flat graph into the current (function) graph.

        A fetched token candidate comes back as its ``[N, h, w, C]`` grid, and the
        rest of the model is fed from that grid, so gradients taken with respect
        to it exist (a reshape applied after the fact would have none).

        Args:
            images: float32 ``[N, H, W, channels]`` fed to the model's input.
            bindings: placeholder name -> tensor for every capture.
            fetches: tensor names to return.
        """
        tokens = next((c for c in self.candidates if c.is_tokens and c.tensor in fetches), None)
        if tokens is None:
            return _import(self.graph_def, self.input_name, images, bindings, fetches)
        (raw,) = _import(self.graph_def, self.input_name, images, bindings, [tokens.tensor])
        grid = tokens.to_grid(raw)
        rest = [f for f in fetches if f != tokens.tensor]
        rewired = dict(bindings)
        rewired[tokens.tensor] = tokens.from_grid(grid, raw)
        results = iter(_import(self.graph_def, self.input_name, images, rewired, rest) if rest else [])
        return [grid if f == tokens.tensor else next(results) for f in fetches]

    def resolve_layer(self, layer: str) -> Candidate:
        """Find the candidate ``layer`` names (``auto`` for the default)."""
        if layer == "auto":
            return self.auto_candidate
        matches = [c for c in self.candidates if _names_match(layer, c)]
        if not matches:  # the scope's own name, e.g. "mixed10_1" where Keras 3 uniquified layer "mixed10"
            matches = [c for c in self.candidates if _raw_names_match(layer, c)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise LayerNotFoundError(
                f"layer {layer!r} is ambiguous; it matches {', '.join(c.path for c in matches)}. "
                "Pass a longer path.",
                requested=layer,
                suggestions=[c.path for c in matches],
            )
        close = difflib.get_close_matches(layer, [c.name for c in self.candidates], n=5, cutoff=0.3)
        if not close:
            close = [c.name for c in self.candidates[-5:]]
        raise LayerNotFoundError(
            f"unknown layer {layer!r}; closest candidates: {', '.join(close)} "
            "(run 'gradcam-serving inspect MODEL' for the full list)",
            requested=layer,
            suggestions=close,
        )


def _names_match(requested: str, candidate: Candidate) -> bool:
    requested = requested.strip("/")
    for full in (candidate.path, f"{candidate.path}/{candidate.op_type}", candidate.tensor.split(":")[0]):
        if full == requested or full.endswith("/" + requested):
            return True
    return requested == candidate.name


def _raw_names_match(requested: str, candidate: Candidate) -> bool:
    """``requested`` names the candidate's scope as the graph spells it (before layer names were restored)."""
    requested = requested.strip("/")
    raw = "/".join(raw_segments(f"{IMPORT_SCOPE}/{candidate.tensor.split(':')[0]}")[:-1])
    return raw == requested or raw.endswith("/" + requested)


def _inline(function: Any) -> graph_pb2.GraphDef:
    return convert_to_constants._run_inline_graph_optimization(  # noqa: SLF001 - the supported way to inline
        function, lower_control_flow=False, aggressive_inlining=True
    )


def _capture_map(function: Any) -> dict[str, Any]:
    by_handle = {id(v.handle): v for v in function.variables}
    captures: dict[str, Any] = {}
    for external, internal in function.graph.captures:
        variable = by_handle.get(id(external))
        if variable is not None:
            captures[internal.name] = variable
        elif external.dtype == tf.resource:
            raise UnsupportedModelError(
                f"the model captures a resource that is not a variable ({internal.name}); "
                "lookup tables and other resources are not supported in image classifiers"
            )
        else:
            captures[internal.name] = tf.constant(external.numpy())
    return captures


def check_refused_ops(graph_def: graph_pb2.GraphDef) -> None:
    """Raise if the graph (or its function library) holds an op TF Serving must not run."""
    nodes: list[Any] = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    for node in nodes:
        if node.op in REFUSED_OPS:
            raise UnsupportedModelError(
                f"the model contains op {node.op!r} (node {node.name!r}), which TF Serving cannot run: "
                f"it {REFUSED_OPS[node.op]}. Remove it from the model before exporting."
            )


def _reachable(start: Iterable[tf.Operation], forward: bool) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if forward:
            stack.extend(consumer for out in op.outputs for consumer in out.consumers())
        else:
            stack.extend(t.op for t in op.inputs)
    return seen


def _is_custom_gradient(op: tf.Operation) -> bool:
    """An ``IdentityN`` made by ``@tf.custom_gradient`` (Keras 3 swish, some GELUs).

    The rest of the model consumes its output, and ``tf.gradients`` stops at its
    forward inputs, so it is the tensor to target, not the op before it.
    """
    if op.type != "IdentityN":
        return False
    try:
        return bool(op.get_attr("_gradient_op_type"))
    except ValueError:
        return False


def _may_be_candidate(op: tf.Operation) -> bool:
    """Worth probing: a floating first output whose rank may be 3 (tokens) or 4."""
    if not op.outputs or (op.type in _SKIP_OPS and not _is_custom_gradient(op)):
        return False
    tensor = op.outputs[0]
    return tensor.dtype.is_floating and tensor.shape.rank in (None, 3, 4)


@dataclass(frozen=True)
class _Probed:
    """A probed op with its runtime shape and, for rank-3 tensors, which tokens get gradient."""

    index: int
    op: tf.Operation
    shape: tuple[int, ...]
    gradient_tokens: np.ndarray | None


def _grid_of(tokens: int, grid: tuple[int, int] | None, patches: tuple[int, int] | None) -> tuple[int, int, int] | None:
    """``(prefix, h, w)`` for ``tokens`` tokens.

    The grid is the one given (``--grid``), else the patch-embedding map's
    ``h x w`` when the tokens are those patches after <= 8 prefix tokens, else
    the first square after <= 8 prefix tokens.
    """
    for known in (grid, None if grid else patches):
        if known is not None:
            prefix = tokens - known[0] * known[1]
            if 0 <= prefix <= _MAX_PREFIX_TOKENS:
                return prefix, known[0], known[1]
    if grid is not None:
        return None
    for prefix in range(min(_MAX_PREFIX_TOKENS, tokens) + 1):
        side = int(round(float(np.sqrt(tokens - prefix))))
        if side > 1 and side * side == tokens - prefix:
            return prefix, side, side
    return None


def _candidate_kind(
    probed: _Probed, batch: int, grid: tuple[int, int] | None, patches: tuple[int, int] | None
) -> tuple[int, int, int] | None:
    """``(prefix, h, w)`` if the runtime shape is a feature map (prefix 0) or a token grid, else ``None``."""
    shape = probed.shape
    if not shape or shape[0] != batch:
        return None
    if len(shape) == 4 and shape[1] > 1 and shape[2] > 1:
        return 0, shape[1], shape[2]
    if len(shape) == 3 and shape[2] > 1:
        return _grid_of(shape[1], grid, patches)
    return None


def _find_candidates(
    probed: list[_Probed],
    batch: int,
    weighted: set[str],
    layer_names: frozenset[str],
    grid: tuple[int, int] | None,
    renames: dict[tuple[str, ...], str],
) -> list[tuple[Candidate, bool]]:
    """Candidates in topological order, each with whether its grid tokens receive gradient."""
    by_path: dict[str, tuple[_Probed, tuple[int, int, int]]] = {}
    patches: tuple[int, int] | None = None  # the last 4-D map before the first tokens: the patch grid
    tokens_seen = False
    for item in probed:
        kind = _candidate_kind(item, batch, grid, patches)
        if kind is None:
            continue
        if len(item.shape) == 3:
            tokens_seen = True
        elif not tokens_seen:
            patches = kind[1:]
        tidy = tidy_path(item.op.name, layer_names, renames)
        if tidy.split("/")[0] == "Func":
            continue
        layer_path = tidy.rsplit("/", 1)[0] if "/" in tidy else tidy
        by_path[layer_path] = (item, kind)
    ordered = sorted(by_path.items(), key=lambda entry: entry[1][0].index)
    paths = [p for p, _ in ordered]
    found = []
    for path, (item, (prefix, height, width)) in ordered:
        is_tokens = len(item.shape) == 3
        candidate = Candidate(
            name=_short_name(path, paths),
            path=path,
            op_type=item.op.type,
            shape=(None, *item.shape[1:]),
            tensor=item.op.outputs[0].name.split("/", 1)[1],
            weighted=item.op.name in weighted,
            grid=(height, width) if is_tokens else None,
            prefix=prefix if is_tokens else 0,
        )
        reaches = item.gradient_tokens is None or bool(np.any(item.gradient_tokens[prefix:] > 0))
        found.append((candidate, reaches))
    return found


def _choose_auto(found: list[tuple[Candidate, bool]]) -> Candidate | None:
    """The last candidate a weight feeds; for token models, the last token grid the class score reaches.

    Pure preprocessing (grayscale, resizing, normalisation) is never chosen. If
    no candidate is fed by a trainable weight (a frozen backbone), any variable counts.
    After the last attention block only the CLS token reaches the head, so token
    grids there would give all-zero maps: pytorch-grad-cam targets the last
    block's first norm for the same reason.
    """
    tokens = [c for c, reaches in found if c.is_tokens and c.weighted and reaches]
    if tokens:
        return tokens[-1]
    spatial = [c for c, _ in found if not c.is_tokens and c.weighted]
    return spatial[-1] if spatial else None


def _short_name(path: str, all_paths: list[str]) -> str:
    """The shortest suffix of ``path`` that no other candidate path ends with."""
    segments = path.split("/")
    for take in range(1, len(segments) + 1):
        suffix = "/".join(segments[-take:])
        clashes = [p for p in all_paths if p != path and (p == suffix or p.endswith("/" + suffix))]
        if not clashes:
            return suffix
    return path


def _output_head(graph: tf.Graph, output_name: str) -> tuple[str | None, tf.Tensor]:
    """Follow Identity ops back from the output: ``("Softmax"|"Sigmoid", its input)`` or ``(None, output)``."""
    tensor = graph.get_tensor_by_name(output_name)
    while tensor.op.type in ("Identity", "IdentityN"):
        tensor = tensor.op.inputs[tensor.value_index if tensor.op.type == "IdentityN" else 0]
    if tensor.op.type in ("Softmax", "Sigmoid"):
        return tensor.op.type, tensor.op.inputs[0]
    return None, graph.get_tensor_by_name(output_name)


def _fed_by(ops: list[tf.Operation], sources: list[tf.Tensor]) -> set[str]:
    """Names of ``ops`` downstream of any of ``sources`` (variable handles)."""
    start = [consumer for tensor in sources for consumer in tensor.consumers()]
    names = {op.name for op in ops}
    return _reachable(start, forward=True) & names


def _token_gradients(score: tf.Tensor, tensors: list[tf.Tensor]) -> list[tf.Tensor]:
    """Per token, the largest |d score / d token| on the probe batch (zeros where no path exists)."""
    if not tensors:
        return []
    try:
        gradients = tf.gradients(tf.reduce_sum(tf.cast(score, tf.float32)), tensors)
    except (LookupError, ValueError, TypeError):  # an op without a gradient: check nothing
        return [tf.ones(tf.shape(t)[1:2]) for t in tensors]
    return [
        tf.zeros(tf.shape(t)[1:2]) if g is None else tf.reduce_max(tf.abs(tf.cast(g, tf.float32)), axis=[0, 2])
        for t, g in zip(tensors, gradients)
    ]


_PROBE_BATCH = 2
_PROBE_SEED = 20261201


def _probe_batch(height: int, width: int, channels: int) -> tf.Tensor:
    rng = np.random.default_rng(_PROBE_SEED)
    return tf.constant(rng.uniform(0.0, 1.0, (_PROBE_BATCH, height, width, channels)).astype(np.float32))


def trace_model_graph(loaded: LoadedModel, *, grid: tuple[int, int] | None = None) -> ModelGraph:
    """Inline ``loaded.function``, run it once on a probe batch and find the feature maps.

    Shapes are read when the graph runs, not from static inference: a dynamic
    reshape early on (``tf.image.rgb_to_grayscale`` in a hub module) leaves
    every later static shape unknown.

    Args:
        loaded: the loaded model.
        grid: ``(h, w)`` of a vision transformer's token grid when it is not square.

    Raises:
        UnsupportedModelError: refused ops, an output that is not class scores,
            or no feature map between the input and the output.
    """
    function = loaded.function
    graph_def = _inline(function)
    check_refused_ops(graph_def)
    captures = _capture_map(function)
    input_name = function.inputs[0].name
    output_name = function.outputs[0].name
    height, width = loaded.input_size
    channels = getattr(loaded, "channels", 3)
    holder: dict[str, Any] = {}

    @tf.autograph.experimental.do_not_convert
    def probe(images: tf.Tensor) -> Any:
        graph = tf.compat.v1.get_default_graph()
        bindings = {name: bind_capture(graph, value) for name, value in captures.items()}
        (output,) = _import(graph_def, input_name, images, bindings, [output_name])
        head, logits = _output_head(graph, output.name)
        ops = [op for op in graph.get_operations() if op.name.startswith(IMPORT_SCOPE + "/")]
        on_path = _reachable([images.op], forward=True) & _reachable([logits.op], forward=False)
        pending = [op for op in ops if op.name in on_path and _may_be_candidate(op)]
        ranked3 = [op.outputs[0] for op in pending if op.outputs[0].shape.rank == 3]
        variables = {name: bindings[name] for name, value in captures.items() if isinstance(value, tf.Variable)}
        trainable = [t for name, t in variables.items() if captures[name].trainable]
        holder.update(
            output=output, head=head, logits=logits, pending=pending, ranked3=ranked3,
            trainable_fed=_fed_by(ops, trainable), variable_fed=_fed_by(ops, list(variables.values())),
            before_weights=_reachable(_weight_readers(ops, on_path), forward=False),
        )
        return [tf.shape(op.outputs[0]) for op in pending], _token_gradients(logits, ranked3)

    concrete = tf.function(probe).get_concrete_function(tf.TensorSpec([None, height, width, channels], tf.float32))
    output, logits = holder["output"], holder["logits"]
    _check_scores(output, loaded.kind)
    shapes, token_gradients = concrete(_probe_batch(height, width, channels))
    gradients = {t.name: g.numpy() for t, g in zip(holder["ranked3"], token_gradients)}
    probed = [
        _Probed(i, op, tuple(int(d) for d in shape.numpy()), gradients.get(op.outputs[0].name))
        for i, (op, shape) in enumerate(zip(holder["pending"], shapes))
    ]
    weighted = holder["trainable_fed"] if any(p.op.name in holder["trainable_fed"] for p in probed) else holder["variable_fed"]
    renames = keras3_scope_names(graph_def, captures)
    found = _find_candidates(probed, _PROBE_BATCH, weighted, loaded.layer_names, grid, renames)
    if not found:
        raise UnsupportedModelError(_no_candidate_message(loaded.kind, grid))
    last = found[-1][0]
    pooled = None if f"{IMPORT_SCOPE}/{last.tensor.split(':')[0]}" in holder["before_weights"] else last.name
    return ModelGraph(
        graph_def=graph_def,
        input_name=input_name,
        output_name=output_name,
        captures=captures,
        candidates=[c for c, _ in found],
        output_is_softmax=holder["head"] == "Softmax",
        score_doubts=_score_doubts(loaded, int(output.shape[-1]), holder["head"], pooled),
        logits_name=logits.name.split("/", 1)[1],
        num_classes=int(output.shape[-1]),
        input_size=loaded.input_size,
        output_is_sigmoid=holder["head"] == "Sigmoid",
        channels=channels,
        auto=_choose_auto(found),
    )


def _weight_readers(ops: list[tf.Operation], on_path: set[str]) -> list[tf.Operation]:
    """Ops on the image-to-logits path that read a variable: the model's weighted layers (conv, dense, bias)."""

    def reads_variable(tensor: tf.Tensor) -> bool:
        op = tensor.op
        while op.type == "Identity":
            op = op.inputs[0].op
        return op.type == "ReadVariableOp"

    return [op for op in ops if op.name in on_path and any(reads_variable(t) for t in op.inputs)]


def _score_doubts(loaded: LoadedModel, outputs: int, head: str | None, pooled: str | None) -> dict[str, str]:
    """Signs that the output is a feature vector (a headless backbone), not class scores, by kind.

    ``inspect`` would otherwise report "1280 classes, logits" for MobileNetV2 without its top, and an
    export would explain "class" 17 of a feature vector. A softmax or sigmoid head is taken as class
    scores; without one, the signs are: more outputs than ImageNet's 1001 logits (``"count"``), an
    output that is the last feature map pooled with no weight after it (``"pooled"``), and a hub handle
    naming a feature_vector module (``"handle"``).
    """
    if head is not None:
        return {}
    doubts = {}
    if outputs > _MAX_LOGITS:
        doubts["count"] = f"{outputs} values with no softmax or sigmoid"
    if pooled is not None:
        doubts["pooled"] = f"the pooled feature map {pooled!r} with no weight after it"
    if re.search(r"feature[_-]vector", loaded.handle):
        doubts["handle"] = "the handle names a feature_vector module"
    return doubts


def scores_warning(graph: ModelGraph, kind: str, labels: Sequence[str] | None = None) -> str | None:
    """The warning for an output that does not look like class scores, else ``None``.

    One label per output is the user saying the outputs are classes, so the count alone is no
    longer a doubt (a 5,000-class model is a classifier); the structural signs still are.
    """
    doubts = dict(graph.score_doubts)
    if labels is not None and len(labels) == graph.num_classes:
        doubts.pop("count", None)
    if not doubts:
        return None
    return (
        f"the output of the {kind} does not look like class scores ({'; '.join(doubts.values())}): "
        "Grad-CAM explains the score of a class, so a feature extractor (a headless backbone, a feature-vector "
        "hub module) needs a classification head before it is exported"
    )


def _no_candidate_message(kind: str, grid: tuple[int, int] | None) -> str:
    tokens = f"token tensor [N, T, C] with a {grid[0]}x{grid[1]} grid" if grid else (
        "token tensor [N, T, C] whose tokens after up to 8 prefix tokens form a square grid (else pass --grid H,W)"
    )
    return (
        f"the {kind} has no 4-D feature map with spatial size above 1 and no {tokens} on the path from its "
        "input to its output; Grad-CAM needs a convolutional layer or a vision transformer's patch tokens"
    )


@tf.autograph.experimental.do_not_convert
def _import(
    graph_def: graph_pb2.GraphDef, input_name: str, images: tf.Tensor, bindings: dict[str, tf.Tensor], fetches: list[str]
) -> list[tf.Tensor]:
    input_map = dict(bindings)
    input_map[input_name] = images
    return tf.graph_util.import_graph_def(graph_def, input_map=input_map, return_elements=fetches, name=IMPORT_SCOPE)


@tf.autograph.experimental.do_not_convert
def bind_capture(graph: Any, value: Any) -> tf.Tensor:
    """Capture a variable handle (or constant) into the function graph being traced."""
    if isinstance(value, tf.Variable):
        return graph.capture(value.handle)
    return tf.constant(np.asarray(value))


def _check_scores(output: tf.Tensor, kind: str) -> None:
    shape = output.shape
    if not output.dtype.is_floating or shape.rank != 2 or shape[-1] is None or shape[-1] < 2:
        raise UnsupportedModelError(
            f"the {kind} outputs {output.dtype.name} {shape}; expected class scores, a float tensor [N, C] "
            "with C >= 2 (logits or probabilities)"
        )
