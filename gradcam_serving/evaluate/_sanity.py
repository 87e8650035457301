"""``validate --sanity``: the model-parameter randomisation test (Adebayo et al., 2018).

A map that explains the model must change when the model's learned weights
are destroyed. The export is loaded the way TF Serving loads it; then, from
the output layer down, one layer at a time, its weights are re-initialised in
place (cumulatively: a layer stays randomised for all later steps), and the
maps of the sample images are computed again through the same ``explain``
signature. Kernels get zero-mean normal values at their own spread (as an
initialiser would, so signs are random); vectors such as biases and
normalisation statistics are shuffled, which keeps variances positive.

Each step reports the Spearman rank correlation and SSIM between the
randomised maps and the originals. The test fails when the mean rank
correlation is still above the threshold at the end of the cascade, once the
layers from the output back to the target layer (inclusive) are randomised:
such a map does not depend on what the model learned (an edge detector would
pass as an "explanation" otherwise). Intermediate steps are reported, not
judged: with only the classifier head randomised, Grad-CAM at the last
convolution still shows where the (intact) features fire, by design.

Layers "above the target" are those whose ops ``explain`` differentiates
(``tf.gradients`` names its ops ``[scope/]gradients/<op>_grad``). A method without
gradients gives no such hint; then the cascade goes down to the input layer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcam_serving import signatures as sig

from ._backends import choose_methods, explain_methods, signature_contracts

if TYPE_CHECKING:
    from gradcam_serving.runtime import ExportSession

__all__ = ["DEFAULT_THRESHOLD", "MethodSanity", "SanityReport", "SanityStep", "rank_correlation", "sanity_check", "similarity_per_step", "ssim"]

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class SanityStep:
    """Maps after randomising ``layers`` (cumulative, top down)."""

    layers: tuple[str, ...]
    rank_correlation: np.ndarray
    ssim: np.ndarray
    above_target: bool

    @property
    def mean_rank_correlation(self) -> float:
        return float(np.mean(self.rank_correlation))

    @property
    def mean_ssim(self) -> float:
        return float(np.mean(self.ssim))


@dataclass(frozen=True)
class MethodSanity:
    """The randomisation cascade of one explain signature."""

    method: str
    signature: str
    steps: list[SanityStep]
    target_known: bool
    threshold: float

    @property
    def judged_step(self) -> SanityStep:
        """The end of the cascade: the target layer's own weights are randomised too (or every layer's)."""
        return self.steps[-1]

    @property
    def passed(self) -> bool:
        return self.judged_step.mean_rank_correlation <= self.threshold


@dataclass(frozen=True)
class SanityReport:
    export_dir: Path
    images: int
    threshold: float
    methods: list[MethodSanity] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(method.passed for method in self.methods)

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_dir": str(self.export_dir),
            "images": self.images,
            "threshold": self.threshold,
            "passed": self.passed,
            "methods": [
                {
                    "method": m.method,
                    "signature": m.signature,
                    "passed": m.passed,
                    "target_known": m.target_known,
                    "judged_after": list(m.judged_step.layers),
                    "steps": [
                        {
                            "randomised": list(s.layers),
                            "above_target": s.above_target,
                            "rank_correlation": s.mean_rank_correlation,
                            "ssim": s.mean_ssim,
                        }
                        for s in m.steps
                    ],
                }
                for m in self.methods
            ],
        }


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get their average rank (as ``scipy.stats.rankdata``)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps; 0 when either is constant (nothing to rank)."""
    ra, rb = _ranks(np.ravel(a)), _ranks(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = float(np.linalg.norm(ra) * np.linalg.norm(rb))
    return float(ra @ rb / norm) if norm > 0 else 0.0


def ssim(a: np.ndarray, b: np.ndarray, *, window: int = 7, data_range: float = 1.0) -> float:
    """Mean structural similarity of two ``[H, W]`` maps (Wang et al., 2004), 7x7 uniform windows."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    window = min(window, *a.shape) | 1 if min(a.shape) >= 3 else 1
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def mean_filter(x: np.ndarray) -> np.ndarray:
        padded = np.pad(np.cumsum(np.cumsum(x, 0), 1), ((1, 0), (1, 0)))
        w = window
        return (padded[w:, w:] - padded[:-w, w:] - padded[w:, :-w] + padded[:-w, :-w]) / (w * w)

    n = window * window
    correction = n / (n - 1) if n > 1 else 1.0
    mu_a, mu_b = mean_filter(a), mean_filter(b)
    var_a = (mean_filter(a * a) - mu_a**2) * correction
    var_b = (mean_filter(b * b) - mu_b**2) * correction
    cov = (mean_filter(a * b) - mu_a * mu_b) * correction
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def similarity_per_step(original: np.ndarray, randomised: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per step ``(rank correlations [N], SSIMs [N])`` of each randomised batch of maps against the originals."""
    return [
        (
            np.array([rank_correlation(o, r) for o, r in zip(original, maps)]),
            np.array([ssim(o, r) for o, r in zip(original, maps)]),
        )
        for maps in randomised
    ]


class _Randomiser:
    """Shuffles variables of a loaded export in place, by layer."""

    def __init__(self, export: ExportSession, seed: int) -> None:
        import tensorflow as tf

        self._export = export
        self._rng = np.random.default_rng(seed)
        self._assign: dict[str, tuple[Any, Any]] = {}
        with export.graph.as_default():
            for node in export.meta_graph.graph_def.node:
                if node.op == "VarHandleOp":
                    handle = export.graph.get_tensor_by_name(f"{node.name}:0")
                    value = tf.compat.v1.placeholder(tf.as_dtype(node.attr["dtype"].type))
                    read = tf.raw_ops.ReadVariableOp(resource=handle, dtype=value.dtype)
                    self._assign[node.name] = (value, tf.raw_ops.AssignVariableOp(resource=handle, value=value), read)

    def randomise(self, variables: Sequence[str]) -> None:
        session = self._export.session
        for name in variables:
            value, assign, read = self._assign[name]
            session.run(assign, {value: self._reinitialised(session.run(read))})

    def _reinitialised(self, current: np.ndarray) -> np.ndarray:
        """Kernels: zero-mean normal draws at the tensor's own spread. Vectors (biases, norms): shuffled."""
        if current.ndim < 2 or current.dtype.kind != "f":
            return self._rng.permutation(current.ravel()).reshape(current.shape)
        spread = float(np.std(current)) or float(np.sqrt(2.0 / (current.shape[-2] + current.shape[-1])))
        return self._rng.normal(0.0, spread, current.shape).astype(current.dtype)


def _layer_order(export: ExportSession, signature: str) -> list[tuple[str, list[str]]]:
    """``[(layer, variable nodes)]`` bottom-up, in the order the signature's call takes its variables.

    The signature function captures variables in the order the model's
    forward pass first reads them, so this is the network's order.
    """
    definition = export.meta_graph.signature_def[signature]
    call = export.graph.get_tensor_by_name(definition.outputs[sig.map_output(definition.outputs)].name).op
    variables = {n.name for n in export.meta_graph.graph_def.node if n.op == "VarHandleOp"}
    layers: dict[str, list[str]] = {}
    for tensor in call.inputs:
        name = tensor.op.name
        if name in variables:
            layers.setdefault(name.rsplit("/", 1)[0] if "/" in name else name, []).append(name)
    return list(layers.items())


def _function_node_names(export: ExportSession, signature: str) -> list[str]:
    """Node names of every function the signature's call reaches."""
    definition = export.meta_graph.signature_def[signature]
    call = export.graph.get_tensor_by_name(definition.outputs[sig.map_output(definition.outputs)].name).op
    library = {f.signature.name: f for f in export.meta_graph.graph_def.library.function}
    pending = [call.get_attr("f").name] if "f" in call.node_def.attr else []
    seen: set[str] = set()
    names: list[str] = []
    while pending:
        function = library.get(pending.pop())
        if function is None or function.signature.name in seen:
            continue
        seen.add(function.signature.name)
        for node in function.node_def:
            names.append(node.name)
            pending.extend(_called_functions(node))
    return names


def _called_functions(node: Any) -> list[str]:
    """Functions a node calls through any attribute: ``f`` of a call, ``then_branch``/``else_branch`` of an ``If``.

    The exporter wraps the CAM in a ``tf.cond`` (empty batches), so the
    gradients live in a branch function, not in the call's ``f``.
    """
    called = []
    for value in node.attr.values():
        if value.func.name:
            called.append(value.func.name)
        called.extend(func.name for func in value.list.func)
    return called


def _layers_above_target(layers: list[tuple[str, list[str]]], node_names: list[str]) -> set[str]:
    """Layers with an op that ``tf.gradients`` differentiated: those between the target and the score."""
    # ``gradients/...`` at the top, ``cond/gradients/...`` inside the exporter's empty-batch ``tf.cond``.
    gradient_nodes = [name for name in node_names if name.startswith("gradients/") or "/gradients/" in name]
    above = set()
    for layer, _ in layers:
        segment = f"/{layer.rsplit('/', 1)[-1]}/"
        if any(segment in name for name in gradient_nodes):
            above.add(layer)
    return above


def _warmup_images(export_dir: Path) -> np.ndarray:
    """The ``images`` of the export's warmup records (what TF Serving replays at load)."""
    from gradcam_serving.runtime import read_warmup_requests

    found = [inputs[sig.IMAGES] for _, inputs in read_warmup_requests(export_dir) if sig.IMAGES in inputs]
    if not found:
        raise ValueError(f"{export_dir} has no warmup images; give sample images (--images DIR)")
    unique = {array.tobytes(): array for batch in found for array in batch}
    return np.stack(list(unique.values()))


def sanity_check(
    export_dir: str | os.PathLike[str],
    images: np.ndarray | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    max_layers: int | None = None,
) -> SanityReport:
    """Run the cascading model-parameter randomisation test on an export, in-process.

    Args:
        export_dir: a version folder.
        images: uint8 ``[N, H, W, 3]`` sample images (default: the export's warmup images).
        threshold: the largest mean rank correlation a method may keep once the layers
            from the output back to its target layer are randomised.
        methods: only these methods (default: every ``explain_<method>``, or ``explain``).
        seed: seed of the re-initialisation.
        max_layers: stop the cascade after this many layers (deep models whose target
            layer is unknown); the last randomised layer is then the judged step.
    """
    export_dir = Path(export_dir)
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a rank correlation in [-1, 1]; got {threshold}")
    if max_layers is not None and max_layers < 1:
        raise ValueError(f"max_layers must be at least 1; got {max_layers}")
    report = None
    for method, signature in _methods(export_dir, methods):
        export = _load(export_dir)  # a fresh load per method: the weights get shuffled
        try:
            samples = _warmup_images(export_dir) if images is None else _check_images(images)
            result = _cascade(export, method, signature, samples, threshold, seed, max_layers)
        finally:
            export.close()
        report = report or SanityReport(export_dir, len(samples), threshold)
        report.methods.append(result)
    assert report is not None
    return report


def _methods(export_dir: Path, methods: Sequence[str] | None) -> list[tuple[str, str]]:
    with _load(export_dir) as export:
        available = explain_methods(signature_contracts(export.signature_defs))
    return list(choose_methods(available, methods).items())


def _load(export_dir: Path) -> ExportSession:
    """The export on TF Serving's path, its graph left open for the randomiser's assign ops."""
    from gradcam_serving.runtime import ExportSession

    return ExportSession(export_dir, finalize=False)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"sample images must be uint8 [N, H, W, 3] with N >= 1; got {images.dtype} {images.shape}")
    return images


def _cascade(
    export: ExportSession,
    method: str,
    signature: str,
    images: np.ndarray,
    threshold: float,
    seed: int,
    max_layers: int | None,
) -> MethodSanity:
    map_alias = sig.map_output(export.signature(signature).outputs)

    def maps() -> np.ndarray:
        inputs = {sig.IMAGES: images, sig.CLASS_INDEX: classes}
        return export.run(signature, inputs, [map_alias])[map_alias]

    classes = np.full(len(images), sig.PREDICTED_CLASS, np.int32)
    # Explain the originally predicted class at every step, so only the model changes.
    classes = export.run(signature, {sig.IMAGES: images, sig.CLASS_INDEX: classes}, [sig.CLASS_INDEX])[sig.CLASS_INDEX]
    original = maps()
    layers = _layer_order(export, signature)
    above = _layers_above_target(layers, _function_node_names(export, signature))
    top_down = list(reversed(layers))
    if above:
        # From the output back to the target layer: the layers above it, then the target's own layer.
        lowest = max(i for i, (layer, _) in enumerate(top_down) if layer in above)
        top_down = top_down[: lowest + 2]
    top_down = top_down[:max_layers]
    randomiser = _Randomiser(export, seed)
    steps, done = [], []
    for layer, variables in top_down:
        randomiser.randomise(variables)
        done.append(layer)
        ((rho, structural),) = similarity_per_step(original, [maps()])
        steps.append(SanityStep(tuple(done), rho, structural, layer in above))
    return MethodSanity(method, signature, steps, bool(above), threshold)
