"""``gradcam-serving validate``: would TF Serving load and run this export?

A pipeline can gate a deployment on it: every check loads or runs the export
the way ``tensorflow_model_server`` does, and the report says pass or fail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from gradcam_serving import signatures as sig
from gradcam_serving.errors import GradcamServingError

from ._compat import serving_version_check
from ._gate import SERVE_TAG, run_like_tf_serving
from ._graph import REFUSED_OPS
from ._warmup import WARMUP_FILE, read_warmup_requests

__all__ = ["Check", "ValidationReport", "validate_export"]

_CONTRACT = {
    sig.PREDICT: ({sig.IMAGES}, set(sig.PREDICT_OUTPUTS)),
    sig.EXPLAIN: ({sig.IMAGES, sig.CLASS_INDEX}, set(sig.EXPLAIN_OUTPUTS)),
}


# Ops of the checkpoint saver/restorer: run once at load on the host, by design.
_SAVER_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StaticRegexFullMatch",
                        "StringJoin", "DisableCopyOnRead"})


@dataclass(frozen=True)
class Check:
    """One line of the report; ``ok=None`` is a warning that does not fail validation."""

    name: str
    ok: bool | None
    detail: str


@dataclass
class ValidationReport:
    export_dir: Path
    signatures: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.ok is not False for check in self.checks)

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def _load_meta_graph(export_dir: Path) -> Any:
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        return tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(export_dir))


def _describe(info: Any) -> str:
    if not info.dtype:  # __saved_model_init_op names an op, not a tensor
        return "op"
    dims = "?" if info.tensor_shape.unknown_rank else ",".join(str(d.size) for d in info.tensor_shape.dim)
    return f"{tf.dtypes.as_dtype(info.dtype).name}[{dims}]"


def _op_types(meta_graph: Any) -> set[str]:
    graph_def = meta_graph.graph_def
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops - {f.signature.name for f in graph_def.library.function}


def _check_ops(report: ValidationReport, ops: set[str]) -> None:
    from tensorflow.python.framework import kernels, op_def_registry

    unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
    report.add("ops registered in this TensorFlow", not unknown,
               f"unknown ops: {', '.join(unknown)}" if unknown else f"all {len(ops)} op types known")
    refused = sorted(ops & set(REFUSED_OPS))
    report.add("no refused ops (PyFunc, file system)", not refused,
               "; ".join(f"{op}: {REFUSED_OPS[op]}" for op in refused) or "none found")
    if not tf.test.is_built_with_cuda():
        report.add("GPU kernels", None, "this TensorFlow build has no GPU kernels, so they cannot be checked")
        return
    cpu_only = sorted(
        op for op in ops - set(unknown) - _SAVER_OPS
        if not any(k.device_type in ("GPU", "DEFAULT") for k in kernels.get_registered_kernels_for_op(op).kernel)
    )
    report.add("GPU kernels", None if cpu_only else True,
               f"no GPU kernel (these run on the host CPU): {', '.join(cpu_only)}" if cpu_only
               else "every op has a GPU kernel")


def _contract(signature_names: Any) -> dict[str, tuple[set[str], set[str]]]:
    """The fixed signatures, plus the twins of every method the export holds."""
    contract = dict(_CONTRACT)
    explain_outputs = set(sig.EXPLAIN_OUTPUTS) | {sig.CAM}
    for method in sig.exported_methods(signature_names):
        contract[sig.explain_signature(method)] = ({sig.IMAGES, sig.CLASS_INDEX}, explain_outputs)
        contract[sig.explain_signature(method, encoded=True)] = (
            {sig.IMAGE_BYTES, sig.CLASS_INDEX}, explain_outputs | {sig.OVERLAY_PNG}
        )
    if sig.EXPLAIN_TOPK in signature_names:
        contract[sig.EXPLAIN_TOPK] = ({sig.IMAGES, sig.K}, set(sig.TOPK_OUTPUTS))
    return contract


def _check_contract(report: ValidationReport, meta_graph: Any) -> None:
    problems = []
    for name, (inputs, outputs) in _contract(set(meta_graph.signature_def)).items():
        if name not in meta_graph.signature_def:
            problems.append(f"missing signature {name!r}")
            continue
        signature = meta_graph.signature_def[name]
        if set(signature.inputs) != inputs or not outputs <= set(signature.outputs):
            problems.append(f"{name!r} has inputs {sorted(signature.inputs)} and outputs {sorted(signature.outputs)}")
    report.add("predict/explain contract", not problems, "; ".join(problems) or "predict and explain as documented")


def _check_warmup(report: ValidationReport, export_dir: Path) -> None:
    if not (export_dir / WARMUP_FILE).exists():
        report.add("warmup records", None, f"no {WARMUP_FILE}; TF Serving's first requests will be slow")
        return
    try:
        records = list(read_warmup_requests(export_dir))
        answers = [(signature, inputs, run_like_tf_serving(export_dir, {signature: inputs})[signature])
                   for signature, inputs in records]
    except (GradcamServingError, ValueError, tf.errors.OpError) as exc:
        report.add("warmup records", False, str(exc).splitlines()[0])
        return
    report.add("warmup records", True, f"{len(records)} records replayed on TF Serving's loading path")
    _check_heatmaps(report, answers)


def _heatmap_problem(inputs: dict[str, Any], outputs: dict[str, Any]) -> str | None:
    """Why an explain answer is wrong: shape, non-finite values, or values outside [0, 1]."""
    heatmap, cam = outputs.get(sig.HEATMAP), outputs.get(sig.CAM)
    if heatmap is None:
        return "no heatmap output"
    count = len(next(iter(v for k, v in inputs.items() if k in (sig.IMAGES, sig.IMAGE_BYTES))))
    leading = (count, int(np.max(inputs[sig.K]))) if sig.K in inputs else (count,)
    if heatmap.shape[: len(leading)] != leading or heatmap.ndim != len(leading) + 2:
        return f"heatmap shape {heatmap.shape} for {count} images (expected {leading} + (H, W))"
    if sig.IMAGES in inputs and heatmap.shape[-2:] != inputs[sig.IMAGES].shape[1:3]:
        return f"heatmap size {heatmap.shape[-2:]} differs from the images' {inputs[sig.IMAGES].shape[1:3]}"
    if not np.all(np.isfinite(heatmap)) or (cam is not None and not np.all(np.isfinite(cam))):
        return "non-finite values"
    if heatmap.min() < 0.0 or heatmap.max() > 1.0:
        return f"heatmap values in [{heatmap.min():.3g}, {heatmap.max():.3g}], expected [0, 1]"
    if cam is not None and (cam.shape[: len(leading)] != leading or cam.min() < 0.0):
        return f"cam of shape {cam.shape} with minimum {cam.min():.3g} (expected {leading} + (h, w), >= 0)"
    return None


def _check_heatmaps(report: ValidationReport, answers: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    """Every explain signature of the warmup records: finite, in [0, 1], the documented shape."""
    explains = [(name, inputs, outputs) for name, inputs, outputs in answers if name.startswith(sig.EXPLAIN)]
    if not explains:
        report.add("heatmaps of every method", None, "no explain signature among the warmup records")
        return
    problems = [f"{name}: {problem}" for name, inputs, outputs in explains
                if (problem := _heatmap_problem(inputs, outputs)) is not None]
    report.add("heatmaps of every method", not problems,
               "; ".join(problems) or f"{len(explains)} explain signatures: finite, in [0, 1], documented shapes")


def validate_export(export_dir: str | os.PathLike[str], serving_version: str | None = None) -> ValidationReport:
    """Run every check on a version folder; never raises for a bad export, reports it.

    ``serving_version`` (e.g. ``"2.19"``) also checks every op and non-default
    attribute against that TensorFlow release's recorded op registry
    (``_compat``); a release without a recorded registry raises ValueError.
    """
    path = Path(export_dir)
    report = ValidationReport(path)
    try:
        meta_graph = _load_meta_graph(path)
    except Exception as exc:  # noqa: BLE001 - any load failure is the report's answer
        detail = str(exc).strip().splitlines()[0]
        if any(child.name.isdigit() for child in path.iterdir()) and not (path / "saved_model.pb").exists():
            detail += " (this looks like BASE/NAME; pass a version folder such as BASE/NAME/1)"
        report.add("loads with the TF1 loader and the 'serve' tag", False, detail)
        return report
    report.add("loads with the TF1 loader and the 'serve' tag", True, f"{len(meta_graph.signature_def)} signatures")
    for name, signature in sorted(meta_graph.signature_def.items()):
        report.signatures[name] = {
            "inputs": [f"{alias}: {_describe(info)}" for alias, info in sorted(signature.inputs.items())],
            "outputs": [f"{alias}: {_describe(info)}" for alias, info in sorted(signature.outputs.items())],
        }
    _check_contract(report, meta_graph)
    _check_ops(report, _op_types(meta_graph))
    report.add(*serving_version_check(path, serving_version))
    _check_warmup(report, path)
    return report
