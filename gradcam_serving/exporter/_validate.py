"""``gradcam-serving validate``: would TF Serving load and run this export?

A pipeline can gate a deployment on it: every check loads or runs the export
the way ``tensorflow_model_server`` does, and the report says pass or fail.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from gradcam_serving import signatures as sig
from gradcam_serving.errors import GradcamServingError
from gradcam_serving.runtime import ExportSession, load_failure, run_checked

from ._compat import serving_version_check
from ._graph import REFUSED_OPS
from ._signatures import LABEL_TEXT_SCOPE
from ._warmup import WARMUP_FILE, sample_requests, warmup_records

__all__ = ["Check", "ValidationReport", "validate_export"]

_LOAD_CHECK = "loads with the TF1 loader and the 'serve' tag"


# Nodes of the export's own label text (tf.name_scope numbers a scope entered again: ``_1``, ``_2``...).
_LABEL_TEXT_NODE = re.compile(rf"(^|/){LABEL_TEXT_SCOPE}(_\d+)?/")

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


def _called_functions(node: Any) -> list[str]:
    """Library functions a node calls (``f`` of a call op, the branches and bodies of control flow)."""
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func)
    return names


def _function_ops(graph_def: Any, roots: list[str]) -> set[str]:
    """Op types inside the functions ``roots`` and everything they call."""
    library = {f.signature.name: f for f in graph_def.library.function}
    ops: set[str] = set()
    pending, seen = list(roots), set()
    while pending:
        name = pending.pop()
        if name in seen or name not in library:
            continue
        seen.add(name)
        for node in library[name].node_def:
            if not _LABEL_TEXT_NODE.search(node.name):
                ops.add(node.op)
            pending.extend(_called_functions(node))
    return ops


def _compute_ops(export: ExportSession) -> set[str]:
    """Op types on the model's compute path: what the uint8-image signatures run.

    Image decoding and PNG encoding (only in the ``*_bytes`` signatures) and the label text
    (``LABEL_TEXT_SCOPE``) run on the host CPU in TF Serving by design, so they are left out
    of the GPU check.
    """
    graph_def = export.meta_graph.graph_def
    nodes = {node.name: node for node in graph_def.node}
    pending = [
        info.name.split(":")[0]
        for row in export.metadata.signature_table().values() if not row.encoded and row.name in export.signature_defs
        for info in export.signature_defs[row.name].outputs.values()
    ]
    ops, functions, seen = set(), [], set()
    while pending:
        name = pending.pop().lstrip("^").split(":")[0]
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        if not _LABEL_TEXT_NODE.search(name):
            ops.add(nodes[name].op)
        functions.extend(_called_functions(nodes[name]))
        pending.extend(nodes[name].input)
    return (ops | _function_ops(graph_def, functions)) - {f.signature.name for f in graph_def.library.function}


def _has_gpu_kernel(op: str) -> bool:
    from tensorflow.python.framework import kernels

    return any(k.device_type in ("GPU", "DEFAULT") for k in kernels.get_registered_kernels_for_op(op).kernel)


def _check_ops(
    report: ValidationReport, ops: set[str], compute_ops: set[str], has_gpu_kernel: Any = _has_gpu_kernel,
    built_with_gpu: bool | None = None,
) -> None:
    from tensorflow.python.framework import op_def_registry

    unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
    report.add("ops registered in this TensorFlow", not unknown,
               f"unknown ops: {', '.join(unknown)}" if unknown else f"all {len(ops)} op types known")
    refused = sorted(ops & set(REFUSED_OPS))
    report.add("no refused ops (PyFunc, file system)", not refused,
               "; ".join(f"{op}: {REFUSED_OPS[op]}" for op in refused) or "none found")
    if not (tf.test.is_built_with_cuda() if built_with_gpu is None else built_with_gpu):
        report.add("GPU kernels", None, "this TensorFlow build has no GPU kernels, so they cannot be checked")
        return
    cpu_only = sorted(op for op in compute_ops - set(unknown) - _SAVER_OPS if not has_gpu_kernel(op))
    report.add("GPU kernels", None if cpu_only else True,
               f"no GPU kernel on the model's compute path (these run on the host CPU): {', '.join(cpu_only)}"
               if cpu_only else "every op on the model's compute path has a GPU kernel "
               "(image decoding, PNG encoding and label text run on the CPU by design)")


def _check_contract(report: ValidationReport, export: ExportSession) -> None:
    """Every row of the export's signature table is there, fed and answering as the table says."""
    problems = []
    table = export.metadata.signature_table()
    for name, row in table.items():
        if name not in export.signature_defs:
            problems.append(f"missing signature {name!r}")
            continue
        signature = export.signature_defs[name]
        if set(signature.inputs) != set(row.inputs) or not set(row.outputs) <= set(signature.outputs):
            problems.append(
                f"{name!r} has inputs {sorted(signature.inputs)} and outputs {sorted(signature.outputs)} "
                f"(expected inputs {sorted(row.inputs)} and outputs {sorted(row.outputs)})"
            )
            continue
        problems += _dtype_problems(row, signature)
    if sig.SERVING_DEFAULT not in export.signature_defs:
        problems.append(f"missing signature {sig.SERVING_DEFAULT!r}")
    report.add("signature contract", not problems,
               "; ".join(problems) or f"all {len(table)} signatures of the table as documented")


def _dtype_problems(row: sig.SignatureRow, signature: Any) -> list[str]:
    """Outputs whose dtype is not the one the contract gives them."""
    problems = []
    for spec in row.output_specs:
        alias = spec.alias_in(row.contract)
        got = tf.as_dtype(signature.outputs[alias].dtype).name
        if got != spec.dtype:
            problems.append(f"{row.name!r} output {alias!r} is {got}, expected {spec.dtype}")
    return problems


def _check_warmup(report: ValidationReport, export: ExportSession) -> None:
    """Replay the warmup records in the loaded session, run the signatures they leave out; check every answer."""
    records: list[tuple[str, dict[str, Any]]] = []
    if not (export.path / WARMUP_FILE).exists():
        report.add("warmup records", None, f"no {WARMUP_FILE}; TF Serving's first requests will be slow")
    else:
        try:
            records = list(export.warmup_requests())
        except (GradcamServingError, ValueError, tf.errors.OpError) as exc:
            report.add("warmup records", False, str(exc).splitlines()[0])
            return
    generated = _requests_without_records(export, {name for name, _ in records})
    try:
        outputs = export.run_each(records + generated, run=lambda name, inputs: run_checked(export, name, inputs))
    except (GradcamServingError, ValueError, tf.errors.OpError) as exc:
        report.add("warmup records" if records else "signatures run", False, str(exc).splitlines()[0])
        return
    if records:
        report.add("warmup records", True, f"{len(records)} records replayed on TF Serving's loading path")
    if generated:
        names = ", ".join(name for name, _ in generated)
        report.add("signatures without warmup", None,
                   f"{len(generated)} run here with sample images; on TF Serving each pays its first run "
                   f"on its first request (export --warmup): {names}")
    answers = [(name, inputs, answer) for (name, inputs), answer in zip(records + generated, outputs)]
    _check_heatmaps(report, export.metadata.signature_table(), answers)
    _check_answers(report, export, answers)


def _requests_without_records(export: ExportSession, recorded: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """Sample requests for the table's signatures that have no warmup record (none if the export cannot say its size)."""
    metadata = export.metadata
    if metadata.input_size is None or metadata.num_classes is None:
        return []
    samples = warmup_records(sample_requests(metadata.input_size, metadata.num_classes, metadata.methods, metadata.topk))
    return [(name, inputs) for name, inputs in samples.items() if name not in recorded]


def _image_count(inputs: dict[str, Any]) -> int:
    return len(inputs[sig.IMAGES] if sig.IMAGES in inputs else inputs[sig.IMAGE_BYTES])


def _expected_shapes(row: sig.SignatureRow, inputs: dict[str, Any], export: ExportSession) -> dict[str, tuple]:
    """Each output's documented shape for ``inputs``, from the row's output specs; ``None`` is a size left open."""
    count = _image_count(inputs)
    leading = (count,) if row.head != sig.HEAD_TOPK else (count, int(np.max(inputs[sig.K])))
    if row.encoded:
        size = export.metadata.input_size or (None, None)
    else:
        size = tuple(inputs[sig.IMAGES].shape[1:3])
    symbols = {"C": export.metadata.num_classes, "H": size[0], "W": size[1]}
    return {
        spec.alias_in(row.contract): (
            *((count,) if spec.per_image else leading),
            *(symbols.get(dim) if isinstance(dim, str) else dim for dim in spec.shape),
        )
        for spec in row.output_specs
    }


def _shape_problems(name: str, outputs: dict[str, Any], shapes: dict[str, tuple]) -> list[str]:
    problems = []
    for alias, want in shapes.items():
        got = np.shape(outputs.get(alias))
        if alias not in outputs or len(got) != len(want) or any(w is not None and g != w for g, w in zip(got, want)):
            shown = tuple("?" if w is None else w for w in want)
            problems.append(f"{name}: {alias} has shape {got if alias in outputs else 'missing'}, expected {shown}")
    return problems


def _check_answers(report: ValidationReport, export: ExportSession, answers: list[tuple[str, dict, dict]]) -> None:
    """Every signature of the table answered its records with the documented shapes."""
    table = export.metadata.signature_table()
    seen = {name for name, _, _ in answers}
    problems = [f"{name}: no warmup record, so it was not run" for name in table if name not in seen]
    for name, inputs, outputs in answers:
        row = table.get(name) or (table[sig.PREDICT] if name == sig.SERVING_DEFAULT else None)
        if row is not None:
            problems += _shape_problems(name, outputs, _expected_shapes(row, inputs, export))
    report.add("answers of every signature", not problems,
               "; ".join(problems) or f"{len(seen)} signatures answered with the documented shapes")


def _map_problem(row: sig.SignatureRow, inputs: dict[str, Any], outputs: dict[str, Any]) -> str | None:
    """Why an explain answer is wrong, by the row's family: its map missing or not one per image at the
    images' size, non-finite values, or values outside the range the contract gives."""
    if row.map_output not in outputs:
        return f"no {row.map_output} output"
    problem = _map_shape_problem(row.map_output, inputs, outputs[row.map_output])
    if problem is not None:
        return problem
    for spec in row.output_specs:
        alias = spec.alias_in(row.contract)
        value = outputs.get(alias)
        if value is None or spec.dtype != "float32" or np.size(value) == 0:
            continue
        if not np.all(np.isfinite(value)):
            return f"non-finite values in {alias}"
        low, high = float(np.min(value)), float(np.max(value))
        if spec.unit_range and (low < 0.0 or high > 1.0):
            return f"{alias} values in [{low:.3g}, {high:.3g}], expected [0, 1]"
        if spec.nonnegative and low < 0.0:
            return f"{alias} has minimum {low:.3g}, expected >= 0"
    return None


def _map_shape_problem(alias: str, inputs: dict[str, Any], value: np.ndarray) -> str | None:
    """The map is ``[N, H, W]`` (``[N, k, H, W]`` in top-k) at the size of the uint8 images it explains."""
    count = _image_count(inputs)
    leading = (count, int(np.max(inputs[sig.K]))) if sig.K in inputs else (count,)
    if value.shape[: len(leading)] != leading or value.ndim != len(leading) + 2:
        return f"{alias} shape {value.shape} for {count} images (expected {leading} + (H, W))"
    if sig.IMAGES in inputs and value.shape[-2:] != inputs[sig.IMAGES].shape[1:3]:
        return f"{alias} size {value.shape[-2:]} differs from the images' {inputs[sig.IMAGES].shape[1:3]}"
    return None


def _check_heatmaps(
    report: ValidationReport,
    table: dict[str, sig.SignatureRow],
    answers: list[tuple[str, dict[str, Any], dict[str, Any]]],
) -> None:
    """Every explain answer of the warmup records and samples, by its row's family: the map, finite, in range."""
    explains = [(table[name], inputs, outputs) for name, inputs, outputs in answers
                if name in table and table[name].head != sig.HEAD_PREDICT]
    if not explains:
        report.add("heatmaps of every method", None, "no explain signature among the warmup records")
        return
    problems = [f"{row.name}: {problem}" for row, inputs, outputs in explains
                if (problem := _map_problem(row, inputs, outputs)) is not None]
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
        export = ExportSession(path)
    except Exception as exc:  # noqa: BLE001 - any load failure is the report's answer
        report.add(_LOAD_CHECK, False, load_failure(path, exc))
        return report
    with export:
        _validate_loaded(report, export, serving_version)
    return report


def _validate_loaded(report: ValidationReport, export: ExportSession, serving_version: str | None) -> None:
    report.add(_LOAD_CHECK, True, f"{len(export.signature_defs)} signatures")
    for name, signature in sorted(export.signature_defs.items()):
        report.signatures[name] = {
            "inputs": [f"{alias}: {_describe(info)}" for alias, info in sorted(signature.inputs.items())],
            "outputs": [f"{alias}: {_describe(info)}" for alias, info in sorted(signature.outputs.items())],
        }
    _check_contract(report, export)
    _check_ops(report, _op_types(export.meta_graph), _compute_ops(export))
    report.add(*serving_version_check(export.path, serving_version))
    _check_warmup(report, export)
