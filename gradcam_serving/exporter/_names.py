"""Layer names from graph op names: drop function-call wrappers, undo Keras 3's scope suffixes.

``_graph`` inlines a model into one flat graph whose op names still carry the
layer scopes, wrapped in ``StatefulPartitionedCall`` segments and, for Keras 3,
with TensorFlow's uniquifying suffixes. The names users pass to ``--layer``
come from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from ._tail import node_name

__all__ = ["IMPORT_SCOPE", "keras3_scope_names", "raw_segments", "tidy_path"]

IMPORT_SCOPE = "model"
"""The name scope the flat graph is imported under in every traced function."""

_WRAPPER_SEGMENT = re.compile(r"^(Stateful)?PartitionedCall(_\d+)?$")
_UNIQUIFIED = re.compile(r"^(?P<base>.+)_\d+$")


def tidy_path(op_name: str, layer_names: frozenset[str], renames: dict[tuple[str, ...], str] | None = None) -> str:
    """Drop function-call wrapper noise from an op name, keeping layer scopes under their layers' names.

    ``renames`` (from :func:`keras3_scope_names`) maps a raw scope path to its layer's name; other
    segments lose a uniquifying suffix when ``layer_names`` says that names a layer ("conv_1" -> "conv").
    """
    segments = raw_segments(op_name)
    tidy = []
    for index, segment in enumerate(segments):
        renamed = (renames or {}).get(tuple(segments[: index + 1]))
        match = _UNIQUIFIED.match(segment)
        if renamed is not None:
            segment = renamed
        elif segment not in layer_names and match and match["base"] in layer_names:
            segment = match["base"]  # Keras 3 scopes read "conv_1" for layer "conv"
        tidy.append(segment)
    return "/".join(tidy)


def raw_segments(op_name: str) -> list[str]:
    """The scope segments of an op name in the probe graph, without wrappers and the import scope."""
    segments = [s for s in op_name.split("/") if not _WRAPPER_SEGMENT.match(s)]
    return segments[1:] if segments and segments[0] == IMPORT_SCOPE else segments


def keras3_scope_names(graph_def: graph_pb2.GraphDef, captures: dict[str, Any]) -> dict[tuple[str, ...], str]:
    """Raw scope path -> Keras layer name, for the layer scopes of a Keras 3 trace; empty for other graphs.

    Keras 3 enters each layer's name scope twice in one graph, so the scope holding a layer's ops
    carries one TF uniquifying suffix: ``conv_1`` for layer ``conv``, ``conv_1_2`` for a layer named
    ``conv_1``, ``mixed10_1`` for ``mixed10``. Stripping one suffix from every layer scope gives the
    names back. A SavedModel written by Keras 3's ``model.export()`` keeps no layer objects, only
    variables named after their layers; the ops reading them show where the layer scopes are and that
    they carry the suffix, and the weightless layers beside them (``mixed10``, ``out_relu``) carry it
    too. A suffix is kept where stripping it would be ambiguous (a layer called twice).
    """
    parents: set[tuple[str, ...]] = set()
    bare: set[tuple[str, ...]] = set()
    for layer, segments in _variable_readers(graph_def, captures):
        for index in range(len(segments) - 1, -1, -1):
            match = _UNIQUIFIED.match(segments[index])
            if segments[index] == layer:
                bare.add(tuple(segments[:index]))
                break
            if match and match["base"] == layer:
                parents.add(tuple(segments[:index]))
                break
    parents -= bare
    children: dict[tuple[str, ...], set[str]] = {}
    for node in graph_def.node:
        segments = raw_segments(f"{IMPORT_SCOPE}/{node.name}")
        for index in range(len(segments)):
            children.setdefault(tuple(segments[:index]), set()).add(segments[index])
    renames: dict[tuple[str, ...], str] = {}
    for parent in parents:
        # The layers beside the weighted ones, and the model scopes holding them, are Keras scopes too.
        scopes = [parent + (child,) for child in children.get(parent, ())]
        scopes += [parent[: index + 1] for index in range(len(parent))]
        for scope in scopes:
            base = _unique_base(scope[-1], children.get(scope[:-1], set()))
            if base is not None:
                renames[scope] = base
    return renames


def _unique_base(segment: str, siblings: set[str]) -> str | None:
    """``segment`` without its uniquifying suffix, unless another sibling would end up with that name too.

    Siblings lose their suffix the same way (``conv2d_1`` -> ``conv2d`` beside ``conv2d_1_2`` -> ``conv2d_1``);
    a layer called twice (``conv_1``, ``conv_2``) or an op beside one (``Cast``, ``Cast_1``) keeps its suffix.
    """
    match = _UNIQUIFIED.match(segment)
    if match is None:
        return None
    stripped = [m["base"] if (m := _UNIQUIFIED.match(s)) is not None else s for s in siblings - {segment}]
    return None if match["base"] in stripped else match["base"]


def _variable_readers(graph_def: graph_pb2.GraphDef, captures: dict[str, Any]) -> Iterable[tuple[str, list[str]]]:
    """``(layer name, raw scope segments)`` of each op reading a captured variable, through inlining's Identity ops.

    The layer is the segment before the variable's own name (``conv/kernel`` -> ``conv``).
    """
    layers = {}
    for name, value in captures.items():
        parts = value.name.split(":")[0].split("/") if isinstance(value, tf.Variable) else []
        if len(parts) >= 2:
            layers[node_name(name)] = parts[-2]
    consumers: dict[str, list[Any]] = {}
    for node in graph_def.node:
        for ref in node.input:
            if not ref.startswith("^"):
                consumers.setdefault(node_name(ref), []).append(node)
    for placeholder, layer in layers.items():
        stack = list(consumers.get(placeholder, ()))
        while stack:
            node = stack.pop()
            if node.op == "Identity":
                stack.extend(consumers.get(node.name, ()))
            else:
                yield layer, raw_segments(f"{IMPORT_SCOPE}/{node.name}")
