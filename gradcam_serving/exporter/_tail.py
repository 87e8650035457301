"""The head/tail split: the model from a feature map onwards, as a graph of its own.

Recipro-CAM and top-k run "the model from the feature map A onwards" on new values of A. The tail
is the part of the flat graph (see ``_graph``) the requested outputs need, cut at A: every ancestor
of the fetches, stopping at A's op, which becomes a placeholder that ``import_graph_def``'s
``input_map`` feeds.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from gradcam_serving.errors import UnsupportedModelError

__all__ = ["TAIL_SCOPE", "import_tail", "node_name", "tail_graph_def"]

TAIL_SCOPE = "tail"


def node_name(reference: str) -> str:
    """``"^op"``, ``"op:1"`` or ``"op"`` -> ``"op"``."""
    return reference.lstrip("^").split(":")[0]


def tail_graph_def(
    graph_def: graph_pb2.GraphDef, cut: str, fetches: list[str], dtype: tf.DType
) -> graph_pb2.GraphDef:
    """The sub-graph computing ``fetches`` from the tensor ``cut`` (``"op:0"``), which becomes a placeholder.

    Control inputs are dropped: inlining leaves control edges from every function input to its body, which
    would drag the whole head in; the tail only computes. Colocation hints naming dropped nodes go too.
    The model input stays in the tail only if the tail reads it other than through ``cut``.

    Raises:
        UnsupportedModelError: ``cut`` is not an op's first output, or a fetch does not depend on it.
    """
    cut_op, _, index = cut.partition(":")
    if index not in ("", "0"):
        raise UnsupportedModelError(f"the feature map {cut} is not its op's first output; the graph cannot be cut there")
    nodes = {node.name: node for node in graph_def.node}
    keep: set[str] = set()
    stack = [node_name(name) for name in fetches]
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        keep.add(name)
        if name != cut_op:
            stack.extend(node_name(ref) for ref in nodes[name].input if not ref.startswith("^"))
    if cut_op not in keep:
        raise UnsupportedModelError(f"the model's outputs {fetches} do not depend on the feature map {cut}")
    tail = graph_pb2.GraphDef(versions=graph_def.versions, library=graph_def.library)
    for node in graph_def.node:
        if node.name == cut_op:
            placeholder = tail.node.add(name=cut_op, op="Placeholder")
            placeholder.attr["dtype"].type = dtype.as_datatype_enum
        elif node.name in keep:
            copy = tail.node.add()
            copy.CopyFrom(node)
            data_inputs = [ref for ref in node.input if not ref.startswith("^")]
            del copy.input[:]
            copy.input.extend(data_inputs)
            if "_class" in copy.attr:
                del copy.attr["_class"]
    return tail


def import_tail(
    tail: graph_pb2.GraphDef, cut: str, feature_map: tf.Tensor, bindings: dict[str, tf.Tensor], fetches: list[str]
) -> list[tf.Tensor]:
    """Import a :func:`tail_graph_def` into the current graph, feeding ``feature_map`` at ``cut``.

    Args:
        bindings: placeholder name -> tensor for the captures; those the tail does not use are ignored.
    """
    present = {node.name for node in tail.node}
    input_map = {name: value for name, value in bindings.items() if node_name(name) in present}
    input_map[cut] = feature_map
    return tf.graph_util.import_graph_def(tail, input_map=input_map, return_elements=fetches, name=TAIL_SCOPE)
