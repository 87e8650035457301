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
from ._graph import Candidate, ModelGraph, trace_model_graph
from ._loaders import LoadedModel, load_model
from ._encoded import DEFAULT_MAX_PIXELS
from ._cam import parse_methods
from ._signatures import GradcamModule, Preprocessing, ScoreMode
from ._warmup import write_warmup_requests
from ._writer import ensure_version_free, write_version

__all__ = ["ExportResult", "Inspection", "export_model", "inspect_model", "read_export_methods", "read_labels"]

Progress = Callable[[str], None]
_SAMPLE_SEED = 20261125


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
    if layer != "auto":
        _warn_if_unweighted(graph.resolve_layer(layer))
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


def read_export_methods(path: str | os.PathLike[str]) -> list[str] | None:
    """The CAM methods of a gradcam-serving export folder, or ``None`` if ``path`` is not one.

    Read from ``saved_model.pb``'s signature names without loading TensorFlow's runtime.
    """
    pb = Path(path) / "saved_model.pb"
    if not pb.is_file():
        return None
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    names = {name for meta in saved.meta_graphs for name in meta.signature_def}
    if sig.EXPLAIN not in names:
        return None
    return sig.exported_methods(names)


def _warn_if_unweighted(candidate: Candidate) -> None:
    message = unweighted_warning(candidate)
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


def _encode(image: np.ndarray, fmt: str) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def sample_requests(
    graph: ModelGraph, methods: tuple[str, ...] = (sig.DEFAULT_EXPORT_METHOD,), topk: bool = True
) -> dict[str, dict[str, np.ndarray]]:
    """A small fixed batch per signature of the table, used to compare loading paths.

    The encoded batch mixes PNG and JPEG and two image sizes, as real callers do.
    """
    height, width = graph.input_size
    images = np.random.default_rng(_SAMPLE_SEED).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    encoded = np.array([_encode(images[0], "PNG"), _encode(images[1, : height // 2 + 1], "JPEG")], dtype=object)
    values = {
        sig.IMAGES: images,
        sig.IMAGE_BYTES: encoded,
        sig.CLASS_INDEX: np.array([sig.PREDICTED_CLASS, graph.num_classes - 1], np.int32),
        sig.K: np.array([min(2, graph.num_classes), 1], np.int32),
    }
    requests = {
        name: {alias: values[alias] for alias in row.inputs}
        for name, row in sig.signature_table(methods, topk).items()
    }
    requests[sig.SERVING_DEFAULT] = requests[sig.PREDICT]
    return requests


def _warmup_requests(requests: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """One image per signature: enough to warm every kernel, small enough to load fast."""
    return {
        name: {alias: value[:1] for alias, value in inputs.items()}
        for name, inputs in requests.items()
    }


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
        progress: called with a short description before each step.

    Raises:
        ExportError: any failure; nothing numeric is left under ``base/name``.

    Example:
        >>> export_model("hub_module/", "models", "flowers")  # doctest: +SKIP
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    chosen_methods = parse_methods(methods)
    ensure_version_free(base, name, version, overwrite)
    loaded, graph = _analyse(source, input_size, output, grid, progress)
    target = graph.resolve_layer(layer)
    _warn_if_unweighted(target)
    seconds["load_and_split"] = time.perf_counter() - started

    progress(f"Building signatures ({', '.join(chosen_methods)} at {target.name})")
    module = GradcamModule(
        graph, target, methods=chosen_methods, labels=labels, preprocessing=preprocessing, scores=scores,
        max_pixels=max_pixels, colormap=colormap,
    )
    requests = sample_requests(graph, chosen_methods, topk=not target.is_tokens)
    expected = _run_in_process(module, requests)
    seconds["build"] = time.perf_counter() - started - sum(seconds.values())

    def build(folder: Path) -> None:
        progress("Writing SavedModel")
        # Gradients are already part of `explain`; saving custom-gradient functions (Keras 3 swish) is
        # not needed by TF Serving and fails on their captured constants.
        options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
        tf.saved_model.save(module, str(folder), signatures=module.signatures(), options=options)
        write_warmup_requests(folder, _warmup_requests(requests))
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
