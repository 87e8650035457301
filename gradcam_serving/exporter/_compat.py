"""Would TensorFlow Serving V load this export? Its ops and attributes against V's op registry.

"Op type not registered ..." is the most common TF Serving load failure: an
export written by a newer TensorFlow uses an op, an attribute or an attribute
value the server's older TensorFlow does not know. The op registries of the
TensorFlow releases TF Serving images are built from are recorded in
``_registries/<major.minor>.json.gz`` (written by ``_registries/generate.py``
from each release's wheel), so the check needs neither the network nor a
second TensorFlow.

What is checked, for every node of the ``serve`` graph and of every function
in its library:

* the op is registered in V;
* every attribute the node sets with a non-default value (as defaults are by
  the export's own ``stripped_op_list``; the saver strips default-valued
  attributes, and TensorFlow drops unknown ones that carry the producer's
  default) is declared by V's op, and its value is one V allows;
* every attribute the node leaves out has a default in V, and that default is
  the one the writer assumed.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SERVING_VERSIONS",
    "OpRegistry",
    "compatibility_problems",
    "image_tag_for",
    "op_registry",
    "oldest_serving_version",
    "release_of",
    "serving_version_check",
    "writer_version",
]

from gradcam_serving.tf_releases import REGISTRIES as _REGISTRIES
from gradcam_serving.tf_releases import SERVING_VERSIONS, image_tag_for, release_of, unknown_release_message

_MAX_LISTED = 3  # nodes named per problem; the rest are counted


@dataclass(frozen=True)
class OpRegistry:
    """One release's ops: name -> attrs (type, hex ``AttrValue`` default/allowed values)."""

    tensorflow: str
    ops: dict[str, Any]


@functools.cache
def op_registry(version: str) -> OpRegistry:
    """The recorded op registry of TensorFlow ``version`` (``2.19``, ``2.19.0`` ...).

    Raises:
        ValueError: no registry is recorded for that release; names the ones that are.
    """
    problem = unknown_release_message(version)
    if problem is not None:
        raise ValueError(problem)
    release = release_of(version)
    path = _REGISTRIES / f"{release[0]}.{release[1]}.json.gz"  # type: ignore[index]
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        data = json.load(stream)
    return OpRegistry(data["tensorflow"], data["ops"])


def _meta_graph(export_dir: str | os.PathLike[str]) -> Any:
    """The MetaGraphDef TF Serving loads from ``export_dir/saved_model.pb`` (tag set ``{serve}``)."""
    from gradcam_serving.runtime import DEFAULT_TAGS, matches_tags, read_saved_model

    saved_model = read_saved_model(export_dir)
    for meta_graph in saved_model.meta_graphs:
        if matches_tags(meta_graph.meta_info_def.tags, DEFAULT_TAGS):
            return meta_graph
    raise ValueError(
        f"{Path(export_dir) / 'saved_model.pb'} has no MetaGraph tagged exactly {set(DEFAULT_TAGS)}, "
        "so TF Serving cannot load it"
    )


def writer_version(export_dir: str | os.PathLike[str]) -> str:
    """The TensorFlow that wrote the export (``meta_info_def.tensorflow_version``), e.g. ``"2.21.0"``.

    Read without TensorFlow (:func:`gradcam_serving.exports.read_export`).

    Raises:
        ValueError: no ``saved_model.pb`` or no ``serve`` graph (``NotAnExportError``), or the export does not
            record its TensorFlow.
    """
    from gradcam_serving.exports import read_export

    version = read_export(export_dir).tensorflow_version
    if not version:
        raise ValueError(f"{export_dir} does not record the TensorFlow version that wrote it")
    return version


def _nodes(meta_graph: Any) -> Iterator[tuple[str, Any]]:
    """(where, NodeDef) for the graph and every library function; calls of library functions are skipped."""
    graph = meta_graph.graph_def
    functions = {function.signature.name for function in graph.library.function}
    for node in graph.node:
        if node.op not in functions:
            yield node.name, node
    for function in graph.library.function:
        for node in function.node_def:
            if node.op not in functions:
                yield f"{node.name} in {function.signature.name}", node


def _attr_bytes(value: Any) -> bytes:
    return value.SerializeToString(deterministic=True)


def _allowed(hex_value: str, attr_type: str, value: Any) -> bool:
    """Is ``value`` (an AttrValue) among the allowed values (hex AttrValue) of an attr of ``attr_type``?"""
    from tensorflow.core.framework import attr_value_pb2

    allowed = attr_value_pb2.AttrValue.FromString(bytes.fromhex(hex_value)).list
    if attr_type == "type":
        return value.type in allowed.type
    if attr_type == "list(type)":
        return all(item in allowed.type for item in value.list.type)
    if attr_type == "string":
        return value.s in allowed.s
    if attr_type == "list(string)":
        return all(item in allowed.s for item in value.list.s)
    return True


def _show(value: Any) -> str:
    from tensorflow.core.framework import types_pb2

    if value.HasField("type"):
        return types_pb2.DataType.Name(value.type)
    return " ".join(str(value).split())


def _node_problems(node: Any, op: dict[str, Any], producer: dict[str, Any], version: str) -> Iterator[str]:
    """The attribute problems of one node whose op ``version`` knows (``producer``: the writer's attr defaults)."""
    attrs = op["attrs"]
    for name, value in sorted(node.attr.items()):
        if name.startswith("_"):  # internal attributes (placement, shapes) are not part of the OpDef
            continue
        if name in producer and _attr_bytes(value) == producer[name]:
            continue  # the writer's default: TensorFlow drops it when the consumer does not know it
        declared = attrs.get(name)
        if declared is None:
            yield f"NodeDef mentions attr '{name}' not in Op<name={node.op}> of TensorFlow {version}"
        elif "allowed" in declared and not _allowed(declared["allowed"], declared["type"], value):
            yield f"Value for attr '{name}' of {_show(value)} is not in the list of allowed values of {node.op} in TensorFlow {version}"
    for name, declared in sorted(attrs.items()):
        if name in node.attr:
            continue
        if "default" not in declared:
            yield f"NodeDef missing attr '{name}' from Op<name={node.op}>, which has no default in TensorFlow {version}"
        elif name in producer and bytes.fromhex(declared["default"]) != producer[name]:
            yield f"attr '{name}' of {node.op} defaults differently in TensorFlow {version} than in the writer"


def _producer_defaults(meta_graph: Any) -> dict[str, dict[str, bytes]]:
    """The writer's attribute defaults per op, from the export's ``stripped_op_list``."""
    return {
        op.name: {attr.name: _attr_bytes(attr.default_value) for attr in op.attr if attr.HasField("default_value")}
        for op in meta_graph.meta_info_def.stripped_op_list.op
    }


def compatibility_problems(export_dir: str | os.PathLike[str], serving_version: str) -> list[str]:
    """Why TF Serving built on TensorFlow ``serving_version`` would refuse the export; empty if it would not.

    Each problem is one line naming the op or attribute, TensorFlow's own
    words where it has them, and up to three nodes it occurs in.

    Raises:
        ValueError: no registry recorded for ``serving_version``, or no ``serve`` graph.
        OSError: no ``saved_model.pb``.
    """
    registry = op_registry(serving_version)
    meta_graph = _meta_graph(export_dir)
    producer = _producer_defaults(meta_graph)
    found: dict[str, list[str]] = {}
    for where, node in _nodes(meta_graph):
        op = registry.ops.get(node.op)
        if op is None:
            found.setdefault(f"Op type not registered '{node.op}' in TensorFlow {serving_version}", []).append(where)
            continue
        for problem in _node_problems(node, op, producer.get(node.op, {}), serving_version):
            found.setdefault(problem, []).append(where)
    return [f"{problem} (node {_listed(nodes)})" for problem, nodes in found.items()]


def _listed(nodes: list[str]) -> str:
    shown = ", ".join(nodes[:_MAX_LISTED])
    return shown + (f" and {len(nodes) - _MAX_LISTED} more" if len(nodes) > _MAX_LISTED else "")


def oldest_serving_version(export_dir: str | os.PathLike[str]) -> str | None:
    """The oldest recorded TensorFlow release that would load the export, or ``None`` if none would."""
    for version in SERVING_VERSIONS:
        if not compatibility_problems(export_dir, version):
            return version
    return None


def serving_version_check(export_dir: str | os.PathLike[str], serving_version: str | None) -> tuple[str, bool | None, str]:
    """One ``validate`` report line (name, ok, detail) on the TF Serving releases that would load the export.

    With ``serving_version`` the line fails when that release would refuse the
    export; without, it names the writer and the oldest recorded release
    that loads it (a warning when none does).
    """
    written = _meta_graph(export_dir).meta_info_def.tensorflow_version or "an unrecorded version"
    if serving_version is not None:
        problems = compatibility_problems(export_dir, serving_version)
        name = f"ops and attributes known to TF Serving {serving_version}"
        detail = "; ".join(problems) if problems else (
            f"every op and non-default attribute is in TensorFlow {op_registry(serving_version).tensorflow}'s registry"
        )
        return name, not problems, f"written by TensorFlow {written}: {detail}"
    oldest = oldest_serving_version(export_dir)
    span = f"recorded registries {SERVING_VERSIONS[0]} to {SERVING_VERSIONS[-1]}"
    if oldest is None:
        return "TF Serving versions", None, f"written by TensorFlow {written}; no recorded release loads it ({span})"
    return "TF Serving versions", True, f"written by TensorFlow {written}; loads on TF Serving {oldest} and newer ({span})"
