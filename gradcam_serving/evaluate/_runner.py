"""``evaluate``: score every explain method of one or more exports (or a server) on a set of images."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcam_serving.errors import GradcamServingWarning

from . import _metrics as m
from ._backends import Backend, InProcessBackend, ServerBackend, choose_methods
from ._data import Sample, Skipped, skipped_of

__all__ = ["EvaluationReport", "ImageScores", "MapFunction", "MethodScores", "evaluate", "random_map"]

MapFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A reference explanation: ``(images uint8 [N,H,W,3], class_index int32 [N]) -> maps [N,H,W] in [0, 1]``."""

Progress = Callable[[str, int, int], None]
"""Called as ``progress(description, finished, total)`` per source, after each image of each method."""

SAME_MAP_TOLERANCE = 1e-3
"""Two methods whose maps differ by at most this (maps span [0, 1]) on every image give the same maps."""

FLAT_SPREAD = 0.01
"""Below this range of class probability on every curve, the curves are flat: any two maps' AUCs differ by less."""


@dataclass(frozen=True)
class ImageScores:
    """One image under one method."""

    name: str
    class_index: int
    score: float
    deletion_curve: np.ndarray
    insertion_curve: np.ndarray
    masked_score: float
    coherency: float
    complexity: float
    hit: bool | None
    heatmap: np.ndarray = field(repr=False)

    @property
    def deletion_auc(self) -> float:
        return float(m.auc(self.deletion_curve))

    @property
    def insertion_auc(self) -> float:
        return float(m.auc(self.insertion_curve))

    @property
    def average_drop(self) -> float:
        return float(m.average_drop(np.array([self.score]), np.array([self.masked_score]))[0])

    @property
    def probability_spread(self) -> float:
        """How far the class probability moves over both curves and ``image * map``: 0 when the model ignores them."""
        values = np.concatenate([self.deletion_curve, self.insertion_curve, [self.masked_score]])
        return float(values.max() - values.min())

    @property
    def adcc(self) -> float:
        return float(m.adcc(np.array([self.coherency]), np.array([self.complexity]), np.array([self.average_drop]))[0])

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class_index": self.class_index,
            "score": self.score,
            "deletion_auc": self.deletion_auc,
            "insertion_auc": self.insertion_auc,
            "deletion_curve": self.deletion_curve.tolist(),
            "insertion_curve": self.insertion_curve.tolist(),
            "masked_score": self.masked_score,
            "average_drop": self.average_drop,
            "coherency": self.coherency,
            "complexity": self.complexity,
            "adcc": self.adcc,
            "pointing_hit": self.hit,
        }


@dataclass(frozen=True)
class MethodScores:
    """Means over the images for one method of one source (export or server)."""

    source: str
    method: str
    signature: str
    images: list[ImageScores]

    def _mean(self, values: Sequence[float]) -> float:
        return float(np.mean(values)) if len(values) else float("nan")

    @property
    def deletion_auc(self) -> float:
        """Lower is better: the class probability falls fast when the map's top pixels go."""
        return self._mean([i.deletion_auc for i in self.images])

    @property
    def insertion_auc(self) -> float:
        """Higher is better: the class probability rises fast when the map's top pixels come back."""
        return self._mean([i.insertion_auc for i in self.images])

    @property
    def average_drop(self) -> float:
        """Percent of class probability lost when only ``image * map`` is shown (lower is better)."""
        return 100.0 * self._mean([i.average_drop for i in self.images])

    @property
    def increase_in_confidence(self) -> float:
        """Percent of images whose ``image * map`` scores higher than the image (higher is better)."""
        return 100.0 * self._mean([float(i.masked_score > i.score) for i in self.images])

    @property
    def adcc(self) -> float:
        """Mean per-image ADCC (higher is better)."""
        return self._mean([i.adcc for i in self.images])

    @property
    def pointing_game(self) -> float | None:
        """Fraction of images with a box whose map peak is inside it; ``None`` without boxes."""
        hits = [i.hit for i in self.images if i.hit is not None]
        return float(np.mean(hits)) if hits else None

    @property
    def pointing_total(self) -> int:
        return sum(i.hit is not None for i in self.images)

    @property
    def probability_spread(self) -> float:
        """The largest :attr:`ImageScores.probability_spread` over the images."""
        return max((i.probability_spread for i in self.images), default=0.0)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "method": self.method,
            "signature": self.signature,
            "images": len(self.images),
            "deletion_auc": self.deletion_auc,
            "insertion_auc": self.insertion_auc,
            "average_drop": self.average_drop,
            "increase_in_confidence": self.increase_in_confidence,
            "adcc": self.adcc,
            "pointing_game": self.pointing_game,
            "pointing_total": self.pointing_total,
        }


@dataclass(frozen=True)
class EvaluationReport:
    """Everything ``evaluate`` measured, and how."""

    results: list[MethodScores]
    steps: int
    blur_sigma: float
    pointing_tolerance: int | None
    samples: list[Sample] = field(repr=False)
    skipped: tuple[Skipped, ...] = ()
    """Files of the image folder or manifest that could not be read, so were not scored."""

    def get(self, method: str, source: str | None = None) -> MethodScores:
        for result in self.results:
            if result.method == method and (source is None or result.source == source):
                return result
        raise KeyError(f"no results for method {method!r}" + (f" of {source!r}" if source else ""))

    @functools.cached_property
    def coinciding(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(source, methods)`` per group of two or more methods of one source whose maps are the same on every image.

        Not a bug: when global average pooling follows the target layer (then a dense layer or
        a softmax, as in fer's emotion CNN), the gradient is the same at every position, so
        Grad-CAM, HiResCAM, XGradCAM and others reduce to the same weighted sum of channels.
        The maps are compared, not the method names, so a real duplicate is caught too.
        """
        groups: list[tuple[str, list[MethodScores]]] = []
        for result in self.results:
            for source, group in groups:
                if source == result.source and _same_maps(group[0], result):
                    group.append(result)
                    break
            else:
                groups.append((result.source, [result]))
        return [(source, tuple(r.method for r in group)) for source, group in groups if len(group) > 1]

    def as_dict(self, *, per_image: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "settings": {
                "steps": self.steps,
                "baseline": f"gaussian blur, sigma {self.blur_sigma}",
                "pointing_tolerance_px": self.pointing_tolerance,
                "images": len(self.samples),
            },
            "results": [r.summary() for r in self.results],
            "skipped": [s.as_dict() for s in self.skipped],
            "same_maps": [{"source": source, "methods": list(methods)} for source, methods in self.coinciding],
        }
        if per_image:
            for summary, result in zip(out["results"], self.results):
                summary["per_image"] = [i.as_dict() for i in result.images]
        return out


def _same_maps(first: MethodScores, second: MethodScores) -> bool:
    """Whether two methods gave the same map (within :data:`SAME_MAP_TOLERANCE`) on every image."""
    return len(first.images) == len(second.images) and all(
        a.heatmap.shape == b.heatmap.shape and float(np.max(np.abs(a.heatmap - b.heatmap))) <= SAME_MAP_TOLERANCE
        for a, b in zip(first.images, second.images)
    )


def random_map(seed: int = 0) -> MapFunction:
    """A map of uniform noise per image: the floor any explanation must beat (``--random-baseline``)."""
    rng = np.random.default_rng(seed)
    return lambda images, _classes: rng.uniform(size=np.shape(images)[:3]).astype(np.float32)


def _quiet(_what: str, _done: int, _total: int) -> None:
    pass


@dataclass(frozen=True)
class _Settings:
    """How every image is scored; checked once."""

    steps: int
    blur_sigma: float
    batch_size: int
    pointing_tolerance: int | None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1; got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {self.batch_size}")
        if self.blur_sigma < 0:
            raise ValueError(f"blur_sigma must be >= 0 pixels; got {self.blur_sigma}")


def evaluate(
    exports: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    samples: Sequence[Sample],
    *,
    server: str | None = None,
    model: str | None = None,
    steps: int = 20,
    blur_sigma: float = 5.0,
    batch_size: int = 32,
    methods: Sequence[str] | None = None,
    references: Mapping[str, MapFunction] | None = None,
    pointing_tolerance: int | None = 0,
    progress: Progress = _quiet,
) -> EvaluationReport:
    """Score every explain method of each export (in-process, TF Serving's loading path) or of a server model.

    Args:
        exports: version folder(s); several exports (e.g. one per target layer) are compared side by side.
        samples: the images (see :func:`load_samples` / :func:`samples_from_arrays`); the files
            :func:`load_samples` left out are named in the report's ``skipped``.
        server: ``HOST:PORT`` to evaluate a served model instead (with ``model``).
        model: the model name on ``server``.
        steps: points on the deletion and insertion curves, besides the start.
        blur_sigma: Gaussian blur of the baseline image, in pixels.
        batch_size: images per ``predict`` request.
        methods: only these methods (default: every ``explain_<method>``, or ``explain``).
        references: extra map functions scored the same way, e.g. a random map as a floor.
        pointing_tolerance: pixels added around each box (``None``: 15 px at 224 px, scaled).
        progress: called as ``progress(description, finished, total)`` after each image of each method.
    """
    settings = _Settings(steps, blur_sigma, batch_size, pointing_tolerance)
    if not samples:
        raise ValueError("no images to evaluate")
    backends = list(_backends(exports, server, model))
    try:
        results = []
        for backend in backends:
            extra = references if backend is backends[0] else None
            results += _evaluate_backend(backend, samples, settings, methods, extra, progress)
    finally:
        for backend in backends:
            backend.close()
    _warn_if_flat(results)
    return EvaluationReport(results, steps, blur_sigma, pointing_tolerance, list(samples), skipped_of(samples))


def _warn_if_flat(results: Sequence[MethodScores]) -> None:
    """Warn per source whose curves are all flat: its AUCs, average drop and ADCC then rank nothing.

    A model whose scores do not react to the images (a dead head, a constant output) gives
    every method the same AUCs and no drop, so ADCC is left comparing only how coherent and
    compact the maps are; the table would still look like a ranking.
    """
    sources: dict[str, list[MethodScores]] = {}
    for result in results:
        sources.setdefault(result.source, []).append(result)
    for source, scored in sources.items():
        spread = max(r.probability_spread for r in scored)
        if spread >= FLAT_SPREAD:
            continue
        methods = ", ".join(r.method for r in scored)
        warnings.warn(
            f"{source}: the class probability moves by at most {spread:.3f} on every deletion and insertion curve "
            f"of {len(scored[0].images)} images ({methods}): the model's scores do not react to the pixels the maps "
            "remove or insert, so deletion/insertion AUC, average drop, increase in confidence and ADCC cannot rank "
            "these methods; check the model, the images, and --blur (sigma 0 makes the baseline the image itself)",
            GradcamServingWarning,
            stacklevel=3,
        )


def _backends(exports: Any, server: str | None, model: str | None) -> Iterator[Backend]:
    if (server is None) != (model is None):
        raise ValueError("give --server and --model together")
    if server is not None:
        if exports:
            raise ValueError("give either export folders or --server/--model, not both")
        yield ServerBackend(server, model)  # type: ignore[arg-type]
        return
    if not exports:
        raise ValueError("give an export folder (BASE/NAME/VERSION) or --server HOST:PORT --model NAME")
    for export in [exports] if isinstance(exports, (str, os.PathLike)) else exports:
        yield InProcessBackend(export)


def _evaluate_backend(
    backend: Backend,
    samples: Sequence[Sample],
    settings: _Settings,
    methods: Sequence[str] | None,
    references: Mapping[str, MapFunction] | None,
    progress: Progress,
) -> list[MethodScores]:
    """Score one backend's methods (and any reference map functions) on ``samples``."""
    available = backend.methods()
    chosen = choose_methods(available, methods)
    classes = _classes(backend, samples)
    baselines = [m.blur(s.image[None], settings.blur_sigma)[0] for s in samples]
    maps: dict[str, MapFunction] = {
        method: (lambda images, cls, s=signature: backend.explain(s, images, cls)) for method, signature in chosen.items()
    }
    maps.update(references or {})
    results = []
    total = len(maps) * len(samples)
    for method, explain in maps.items():
        scores = []
        for sample, cls, baseline in zip(samples, classes, baselines):
            scores.append(_score_image(backend, explain, sample, cls, baseline, settings))
            progress(f"{backend.name} {method}", len(results) * len(samples) + len(scores), total)
        results.append(MethodScores(backend.name, method, chosen.get(method, "reference"), scores))
    return results


def _classes(backend: Backend, samples: Sequence[Sample]) -> list[int]:
    """The class explained per image: its label, else the predicted class."""
    labels = _label_names(backend, samples)
    classes = []
    for sample in samples:
        if sample.label is None:
            classes.append(int(np.argmax(backend.predict(sample.image[None])[0])))
        elif isinstance(sample.label, str):
            if sample.label not in labels:
                raise ValueError(f"{sample.name}: label {sample.label!r} is not one of the model's labels {labels}")
            classes.append(labels.index(sample.label))
        else:
            classes.append(sample.label)
    return classes


def _label_names(backend: Backend, samples: Sequence[Sample]) -> list[str]:
    """The model's label texts, read from its outputs only when a manifest names classes by text."""
    if not any(isinstance(s.label, str) for s in samples):
        return []
    if not isinstance(backend, InProcessBackend):
        raise ValueError("class labels given as text need an export folder; give class indices for --server")
    from gradcam_serving import signatures as sig

    image = samples[0].image[None]
    count = backend.predict(image).shape[1]
    export = backend.export
    outputs = export.run(sig.EXPLAIN, {sig.IMAGES: np.repeat(image, count, 0),
                                       sig.CLASS_INDEX: np.arange(count, dtype=np.int32)}, [sig.LABEL])
    return [v.decode() if isinstance(v, bytes) else str(v) for v in outputs[sig.LABEL]]


def _predict_class(backend: Backend, images: np.ndarray, cls: int, batch_size: int) -> np.ndarray:
    """Class probability of each image, ``batch_size`` images per ``predict`` request."""
    return np.concatenate(
        [backend.predict(images[i : i + batch_size])[:, cls] for i in range(0, len(images), batch_size)]
    )


def _score_image(
    backend: Backend,
    explain: MapFunction,
    sample: Sample,
    cls: int,
    baseline: np.ndarray,
    settings: _Settings,
) -> ImageScores:
    image, steps = sample.image, settings.steps
    class_index = np.array([cls], np.int32)
    heatmap = np.asarray(explain(image[None], class_index)[0], np.float32)
    masked = m.masked_by_map(image[None], heatmap[None])
    masked_heatmap = np.asarray(explain(masked, class_index)[0], np.float32)
    deletion = m.perturbation_curve_inputs(image, heatmap, baseline, steps, mode="deletion")
    insertion = m.perturbation_curve_inputs(image, heatmap, baseline, steps, mode="insertion")
    scores = _predict_class(backend, np.concatenate([deletion, insertion, masked]), cls, settings.batch_size)
    hit = None
    if sample.box is not None:
        boxes = np.array([sample.box])
        hit = bool(m.pointing_game_hits(heatmap[None], boxes, tolerance=settings.pointing_tolerance)[0])
    return ImageScores(
        name=sample.name,
        class_index=cls,
        score=float(scores[0]),
        deletion_curve=scores[: steps + 1],
        insertion_curve=scores[steps + 1 : 2 * steps + 2],
        masked_score=float(scores[-1]),
        coherency=float(m.coherency(heatmap[None], masked_heatmap[None])[0]),
        complexity=float(m.complexity(heatmap[None])[0]),
        hit=hit,
        heatmap=heatmap,
    )
