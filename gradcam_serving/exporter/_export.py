"""The export pipeline: load, split, build signatures, write atomically, gate.

Each step is a small function; :func:`export_model` only sequences them and
reports progress, so the CLI and the Python API behave the same.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from gradcam_serving import signatures as sig
from gradcam_serving.errors import GradcamServingWarning

from ._gate import verify_export
from ._graph import Candidate, ModelGraph, scores_warning, trace_model_graph
from ._loaders import LoadedModel, load_model
from ._encoded import DEFAULT_MAX_PIXELS
from ._signatures import GradcamModule, Preprocessing, ScoreMode
from ._warmup import sample_requests, warmup_records, write_warmup_requests
from ._writer import ensure_version_free, write_version

__all__ = ["ExportResult", "Inspection", "export_model", "inspect_model", "read_labels"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Inspection:
    """What ``gradcam-serving inspect`` shows."""

    kind: str
    input_size: tuple[int, int]
    num_classes: int
    output_is_softmax: bool
    candidates: list[Candidate]
    auto: Candidate
    output_is_sigmoid: bool = False
    channels: int = 3

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "input_size": list(self.input_size),
            "num_classes": self.num_classes,
            "output_is_softmax": self.output_is_softmax,
            "output_is_sigmoid": self.output_is_sigmoid,
            "channels": self.channels,
            "auto": self.auto.name,
            "candidates": [
                {
                    "name": c.name,
                    "path": c.path,
                    "op_type": c.op_type,
                    "shape": list(c.shape),
                    "auto": c == self.auto,
                    "weighted": c.weighted,
                    "tokens": c.is_tokens,
                    "grid": list(c.grid) if c.grid else None,
                    "prefix_tokens": c.prefix,
                }
                for c in self.candidates
            ],
        }


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and what it measured."""

    path: Path
    version: int
    layer: Candidate
    methods: tuple[str, ...]
    kind: str
    num_classes: int
    source_weight_bytes: int
    variables_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def size_ratio(self) -> float:
        """Size of the export's ``variables/`` over the source weights (target <= 1.05)."""
        return self.variables_bytes / self.source_weight_bytes if self.source_weight_bytes else float("nan")


def _quiet(_: str) -> None:
    pass


def _analyse(
    source: Any,
    input_size: tuple[int, int] | None,
    output: str | None = None,
    grid: tuple[int, int] | None = None,
    progress: Progress = _quiet,
) -> tuple[LoadedModel, ModelGraph]:
    progress("Loading model")
    loaded = load_model(source, input_size=input_size, output=output)
    progress("Inlining the graph and probing its feature maps")
    return loaded, trace_model_graph(loaded, grid=grid)


def unweighted_warning(candidate: Candidate) -> str | None:
    """The warning for a target no weight feeds (pure preprocessing), else ``None``."""
    if candidate.weighted:
        return None
    return (
        f"layer {candidate.name!r} is not fed by any weight of the model; it is preprocessing "
        "(e.g. grayscale conversion or normalisation), not a learned feature map, so its Grad-CAM says little"
    )


def inspect_model(
    source: Any,
    *,
    input_size: tuple[int, int] | None = None,
    output: str | None = None,
    grid: tuple[int, int] | None = None,
    layer: str = "auto",
) -> Inspection:
    """List the target-layer candidates of a model and the automatic choice.

    Args:
        source: see :func:`export_model`.
        input_size: ``(height, width)`` for size-agnostic models.
        output: the class-score output of a multi-output model.
        grid: ``(h, w)`` token grid of a vision transformer whose grid is not square.
        layer: a layer to check; a warning is issued if no weight feeds it.
    """
    loaded, graph = _analyse(source, input_size, output, grid)
    _warn(scores_warning(graph, loaded.kind))
    if layer != "auto":
        _warn(unweighted_warning(graph.resolve_layer(layer)))
    return Inspection(
        kind=loaded.kind,
        input_size=graph.input_size,
        num_classes=graph.num_classes,
        output_is_softmax=graph.output_is_softmax,
        candidates=graph.candidates,
        auto=graph.auto_candidate,
        output_is_sigmoid=graph.output_is_sigmoid,
        channels=graph.channels,
    )


def _warn(message: str | None) -> None:
    """Our warning, pointing at whoever called inspect_model or export_model; nothing if ``message`` is ``None``."""
    if message:
        warnings.warn(message, GradcamServingWarning, stacklevel=3)


def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """One label per line; blank trailing lines are ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read labels file {os.fspath(path)!r}: {exc.strerror}") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def _one_request_per_function(
    module: GradcamModule, requests: dict[str, dict[str, np.ndarray]]
) -> dict[str, dict[str, np.ndarray]]:
    """The requests of signatures that call distinct functions.

    ``serving_default`` and ``predict``, ``explain`` and ``explain_<default method>``, are one saved
    function under two names; on TF Serving's path each name is a separate call site that Grappler
    optimises again (seconds on a large model), and running the second proves nothing the first did not.
    """
    functions = module.signatures()
    seen: set[int] = set()
    kept = {}
    for name, inputs in requests.items():
        if id(functions[name]) not in seen:
            seen.add(id(functions[name]))
            kept[name] = inputs
    return kept


def _run_in_process(module: GradcamModule, requests: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    functions = module.signatures()
    return {name: {k: v.numpy() for k, v in functions[name](**inputs).items()} for name, inputs in requests.items()}


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def export_model(
    source: Any,
    base: str | os.PathLike[str],
    name: str,
    *,
    version: int | None = None,
    layer: str = "auto",
    methods: str | Sequence[str] = sig.DEFAULT_EXPORT_METHOD,
    labels: Sequence[str] | None = None,
    preprocessing: Preprocessing = Preprocessing(),
    scores: ScoreMode = "auto",
    input_size: tuple[int, int] | None = None,
    output: str | None = None,
    grid: tuple[int, int] | None = None,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    colormap: str = "jet",
    warmup: str = sig.WARMUP_ALL,
    progress: Progress = _quiet,
) -> ExportResult:
    """Export ``source`` to ``base/name/version`` with ``predict`` and ``explain``.

    Args:
        source: hub handle, model path, Keras model or tf.Module (see ``load_model``).
        base: model base folder; the version lands in ``base/name/<version>``.
        name: model name.
        version: version number, default the next integer.
        layer: target layer's friendly name, or ``auto``.
        methods: CAM methods, comma-separated or a list, or ``"all"``; each gets
            ``explain_<method>`` and ``explain_bytes_<method>``. The first is the
            default that ``explain`` and ``explain_topk`` compute.
        labels: class labels, one per class.
        preprocessing: how uint8 pixels are scaled in-graph.
        scores: whether the model outputs logits, probabilities or multi-label sigmoids
            (``auto`` detects a final softmax or sigmoid).
        input_size: ``(height, width)`` for size-agnostic models.
        output: name of the class-score output of a model with several outputs.
        grid: ``(h, w)`` token grid of a vision transformer whose grid is not square.
        overwrite: replace an existing version.
        max_pixels: largest image (height x width) the ``*_bytes`` signatures accept.
        colormap: matplotlib colormap of ``explain_bytes``' in-graph ``overlay_png``.
        warmup: which signatures get a warmup record (see :func:`~gradcam_serving.signatures.warmup_signatures`):
            ``all``, ``default``, ``none`` or names separated by commas. Each record adds its signature's
            first run to the time TF Serving takes to load the version; a signature without one pays it
            on its first request.
        progress: called with a short description before each step.

    Raises:
        ExportError: any failure; nothing numeric is left under ``base/name``.

    Example:
        >>> export_model("hub_module/", "models", "flowers")  # doctest: +SKIP
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    chosen_methods = sig.parse_methods(methods)
    sig.warmup_signatures(warmup, chosen_methods)  # a wrong name fails before the slow load
    ensure_version_free(base, name, version, overwrite)
    loaded, graph = _analyse(source, input_size, output, grid, progress)
    _warn(scores_warning(graph, loaded.kind, labels))
    target = graph.resolve_layer(layer)
    _warn(unweighted_warning(target))
    seconds["load_and_split"] = time.perf_counter() - started

    progress(f"Building signatures ({', '.join(chosen_methods)} at {target.name})")
    module = GradcamModule(
        graph, target, methods=chosen_methods, labels=labels, preprocessing=preprocessing, scores=scores,
        max_pixels=max_pixels, colormap=colormap,
    )
    requests = sample_requests(graph.input_size, graph.num_classes, chosen_methods, topk=not target.is_tokens)
    warmed = sig.warmup_signatures(warmup, chosen_methods, topk=not target.is_tokens)
    expected = _run_in_process(module, requests)
    seconds["build"] = time.perf_counter() - started - sum(seconds.values())

    def build(folder: Path) -> None:
        progress("Writing SavedModel")
        # Gradients are already part of `explain`; saving custom-gradient functions (Keras 3 swish) is
        # not needed by TF Serving and fails on their captured constants.
        options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
        tf.saved_model.save(module, str(folder), signatures=module.signatures(), options=options)
        if warmed:
            write_warmup_requests(folder, warmup_records({n: inputs for n, inputs in requests.items() if n in warmed}))
        (folder / sig.METADATA_FILE).parent.mkdir(parents=True, exist_ok=True)
        (folder / sig.METADATA_FILE).write_text(module.metadata().as_json(), encoding="utf-8")
        progress("Checking with TF Serving's loading path")
        checked = _one_request_per_function(module, requests)
        verify_export(folder, checked, {name: expected[name] for name in checked})

    path = write_version(base, name, build, version=version, overwrite=overwrite)
    seconds["write_and_check"] = time.perf_counter() - started - sum(seconds.values())
    weight_bytes = sum(int(v.shape.num_elements()) * v.dtype.size for v in loaded.function.variables)
    return ExportResult(
        path=path,
        version=int(path.name),
        layer=target,
        methods=chosen_methods,
        kind=loaded.kind,
        num_classes=graph.num_classes,
        source_weight_bytes=weight_bytes,
        variables_bytes=_folder_bytes(path / "variables"),
        seconds=seconds,
    )
