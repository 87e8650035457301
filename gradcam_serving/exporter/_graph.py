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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework import convert_to_constants

from gradcam_serving.errors import LayerNotFoundError, UnsupportedModelError

from ._loaders import LoadedModel

__all__ = ["Candidate", "ModelGraph", "REFUSED_OPS", "bind_capture", "check_refused_ops", "trace_model_graph"]

REFUSED_OPS: dict[str, str] = {
    "PyFunc": "wraps Python code, and TF Serving is C++",
    "PyFuncStateless": "wraps Python code, and TF Serving is C++",
    "EagerPyFunc": "wraps Python code, and TF Serving is C++",
    "ReadFile": "reads the server's file system",
    "WriteFile": "writes to the server's file system",
    "MatchingFiles": "lists the server's file system",
}
"""Ops an export must not contain, with the reason shown to the user."""

_WRAPPER_SEGMENT = re.compile(r"^(Stateful)?PartitionedCall(_\d+)?$")
_UNIQUIFIED = re.compile(r"^(?P<base>.+)_\d+$")
_SKIP_OPS = frozenset({"Identity", "IdentityN", "Const", "Placeholder", "ReadVariableOp", "NoOp"})
IMPORT_SCOPE = "model"


@dataclass(frozen=True)
class Candidate:
    """A 4-D feature map Grad-CAM can target.

    Attributes:
        name: the friendly name users pass to ``--layer`` (``out_relu``).
        path: the full tidy path (``mobilenetv2_1.00_224/out_relu``).
        op_type: the TF op producing the tensor (``Relu6``).
        shape: static shape with batch ``None`` (``(None, 7, 7, 1280)``).
        tensor: the tensor's name in the inlined graph.
    """

    name: str
    path: str
    op_type: str
    shape: tuple[int | None, ...]
    tensor: str


@dataclass
class ModelGraph:
    """The inlined model graph plus what is needed to import it again.

    Attributes:
        graph_def: flat ``GraphDef`` without function calls.
        input_name: tensor name of the image placeholder.
        output_name: tensor name of the model's output.
        captures: placeholder tensor name -> the variable (or eager tensor) it stands for.
        candidates: target layers, in topological order (the last is ``auto``).
        output_is_softmax: the output is produced by a ``Softmax`` op.
        logits_name: the tensor feeding that softmax (or the output itself).
        num_classes: size of the class dimension.
        input_size: ``(height, width)`` the model expects.
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

    @property
    def auto_candidate(self) -> Candidate:
        return self.candidates[-1]

    def import_graph(self, images: tf.Tensor, bindings: dict[str, tf.Tensor], fetches: list[str]) -> list[tf.Tensor]:
        """Import the flat graph into the current (function) graph.

        Args:
            images: float32 ``[N, H, W, 3]`` fed to the model's input.
            bindings: placeholder name -> tensor for every capture.
            fetches: tensor names to return.
        """
        return _import(self.graph_def, self.input_name, images, bindings, fetches)

    def resolve_layer(self, layer: str) -> Candidate:
        """Find the candidate ``layer`` names (``auto`` for the default)."""
        if layer == "auto":
            return self.auto_candidate
        matches = [c for c in self.candidates if _names_match(layer, c)]
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


def tidy_path(op_name: str, layer_names: frozenset[str]) -> str:
    """Drop function-call wrapper noise from an op name, keeping layer scopes."""
    segments = [s for s in op_name.split("/") if not _WRAPPER_SEGMENT.match(s)]
    if segments and segments[0] == IMPORT_SCOPE:
        segments = segments[1:]
    tidy = []
    for segment in segments:
        match = _UNIQUIFIED.match(segment)
        if segment not in layer_names and match and match["base"] in layer_names:
            segment = match["base"]  # Keras 3 scopes read "conv_1" for layer "conv"
        tidy.append(segment)
    return "/".join(tidy)


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


def _spatial_4d(tensor: tf.Tensor) -> bool:
    shape = tensor.shape
    return (
        tensor.dtype.is_floating
        and shape.rank == 4
        and shape[1] is not None
        and shape[2] is not None
        and shape[1] > 1
        and shape[2] > 1
    )


def _find_candidates(
    ops: list[tf.Operation], image_op: tf.Operation, logits: tf.Tensor, layer_names: frozenset[str]
) -> list[Candidate]:
    on_path = _reachable([image_op], forward=True) & _reachable([logits.op], forward=False)
    by_path: dict[str, tuple[int, tf.Operation]] = {}
    for index, op in enumerate(ops):
        if op.name not in on_path or op.type in _SKIP_OPS or not op.outputs or not _spatial_4d(op.outputs[0]):
            continue
        tidy = tidy_path(op.name, layer_names)
        if tidy.split("/")[0] == "Func":
            continue
        layer_path = tidy.rsplit("/", 1)[0] if "/" in tidy else tidy
        by_path[layer_path] = (index, op)
    ordered = sorted(by_path.items(), key=lambda item: item[1][0])
    return [
        Candidate(
            name=_short_name(path, [p for p, _ in ordered]),
            path=path,
            op_type=op.type,
            shape=tuple(op.outputs[0].shape.as_list()),
            tensor=op.outputs[0].name.split("/", 1)[1],
        )
        for path, (_, op) in ordered
    ]


def _short_name(path: str, all_paths: list[str]) -> str:
    """The shortest suffix of ``path`` that no other candidate path ends with."""
    segments = path.split("/")
    for take in range(1, len(segments) + 1):
        suffix = "/".join(segments[-take:])
        clashes = [p for p in all_paths if p != path and (p == suffix or p.endswith("/" + suffix))]
        if not clashes:
            return suffix
    return path


def _output_head(graph: tf.Graph, output_name: str) -> tuple[bool, tf.Tensor]:
    """Follow Identity ops back from the output to see whether it is a softmax."""
    tensor = graph.get_tensor_by_name(output_name)
    while tensor.op.type in ("Identity", "IdentityN"):
        tensor = tensor.op.inputs[tensor.value_index if tensor.op.type == "IdentityN" else 0]
    if tensor.op.type == "Softmax":
        return True, tensor.op.inputs[0]
    return False, graph.get_tensor_by_name(output_name)


def trace_model_graph(loaded: LoadedModel) -> ModelGraph:
    """Inline ``loaded.function`` and analyse the flat graph.

    Raises:
        UnsupportedModelError: refused ops, an output that is not class scores,
            or no 4-D feature map between the input and the output.
    """
    function = loaded.function
    graph_def = _inline(function)
    check_refused_ops(graph_def)
    captures = _capture_map(function)
    input_name = function.inputs[0].name
    output_name = function.outputs[0].name
    height, width = loaded.input_size
    holder: dict[str, Any] = {}

    def probe(images: tf.Tensor) -> tf.Tensor:
        graph = tf.compat.v1.get_default_graph()
        bindings = {name: bind_capture(graph, value) for name, value in captures.items()}
        (output,) = _import(graph_def, input_name, images, bindings, [output_name])
        holder.update(graph=graph, output=output, images=images)
        return output

    tf.function(probe).get_concrete_function(tf.TensorSpec([None, height, width, 3], tf.float32))
    graph, output = holder["graph"], holder["output"]
    _check_scores(output, loaded.kind)
    is_softmax, logits = _output_head(graph, output.name)
    image_op = holder["images"].op
    ops = [op for op in graph.get_operations() if op.name.startswith(IMPORT_SCOPE + "/")]
    candidates = _find_candidates(ops, image_op, logits, loaded.layer_names)
    if not candidates:
        raise UnsupportedModelError(
            f"the {loaded.kind} has no 4-D feature map with spatial size above 1 on the path from its "
            "input to its output; Grad-CAM needs a convolutional layer"
        )
    return ModelGraph(
        graph_def=graph_def,
        input_name=input_name,
        output_name=output_name,
        captures=captures,
        candidates=candidates,
        output_is_softmax=is_softmax,
        logits_name=logits.name.split("/", 1)[1],
        num_classes=int(output.shape[-1]),
        input_size=loaded.input_size,
    )


def _import(
    graph_def: graph_pb2.GraphDef, input_name: str, images: tf.Tensor, bindings: dict[str, tf.Tensor], fetches: list[str]
) -> list[tf.Tensor]:
    input_map = dict(bindings)
    input_map[input_name] = images
    return tf.graph_util.import_graph_def(graph_def, input_map=input_map, return_elements=fetches, name=IMPORT_SCOPE)


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
