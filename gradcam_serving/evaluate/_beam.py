"""``evaluate --runner``: the same per-image scoring as :func:`evaluate`, as an Apache Beam pipeline.

Scoring one image under one method is independent of every other (its class,
blurred baseline, maps and curves), so each ``(source, method, image)`` is one
element of a ``ParDo`` whose workers open the export (or the server client)
once in ``setup``. A ``CombinePerKey`` per ``(source, method)`` gathers the
image scores in input order and forms the method's means on the workers. The
driver only reads the combined results back, so the report, table and JSON
are built by the same code as an in-process run and give the same numbers.

Needs the ``[beam]`` extra (imported only when a runner is asked for).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from . import _metrics as m
from ._backends import Backend, choose_methods
from ._data import Sample, skipped_of
from ._runner import (
    EvaluationReport,
    MethodScores,
    _backends,
    _classes,
    _score_image,
    _Settings,
    _warn_if_flat,
)

__all__ = ["evaluate_on_beam"]

_Key = tuple[int, int]  # (source position, method position): the in-process run's order


class _ScoreImage(beam.DoFn):
    """``(key, signature, index, sample)`` -> ``(key, (index, ImageScores))``, one backend per source per worker."""

    def __init__(self, exports: Sequence[str] | None, server: str | None, model: str | None,
                 settings: _Settings) -> None:
        self.exports = list(exports) if exports else None
        self.server = server
        self.model = model
        self.settings = settings
        self.backends: list[Backend] = []

    def setup(self) -> None:
        self.backends = list(_backends(self.exports, self.server, self.model))

    def process(self, element: tuple[_Key, str, int, Sample]) -> Iterator[tuple[_Key, tuple[int, Any]]]:
        key, signature, index, sample = element
        backend = self.backends[key[0]]
        (cls,) = _classes(backend, [sample])
        baseline = m.blur(sample.image[None], self.settings.blur_sigma)[0]

        def explain(images: Any, classes: Any) -> Any:
            return backend.explain(signature, images, classes)

        yield key, (index, _score_image(backend, explain, sample, cls, baseline, self.settings))

    def teardown(self) -> None:
        for backend in self.backends:
            backend.close()


class _MethodScoresFn(beam.CombineFn):
    """A method's ``(index, ImageScores)`` from every worker, merged and put back in input order."""

    def create_accumulator(self) -> list[tuple[int, Any]]:
        return []

    def add_input(self, accumulator: list[tuple[int, Any]], scored: tuple[int, Any]) -> list[tuple[int, Any]]:
        accumulator.append(scored)
        return accumulator

    def merge_accumulators(self, accumulators: Any) -> list[tuple[int, Any]]:
        return [scored for accumulator in accumulators for scored in accumulator]

    def extract_output(self, accumulator: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        return sorted(accumulator, key=lambda scored: scored[0])


class _Save(beam.DoFn):
    """Write each method's result where the driver reads it back (any Beam filesystem)."""

    def __init__(self, folder: str, names: dict[_Key, tuple[str, str, str]]) -> None:
        self.folder = folder
        self.names = names

    def process(self, item: tuple[_Key, list[tuple[int, Any]]]) -> Iterator[str]:
        key, scored = item
        source, method, signature = self.names[key]
        result = MethodScores(source, method, signature, [scores for _, scores in scored])
        result.summary()  # the means, formed here on the worker
        path = FileSystems.join(self.folder, f"{key[0]}-{key[1]}.pickle")
        with FileSystems.create(path) as handle:
            handle.write(pickle.dumps((key, result)))
        yield path


def _plan(exports: Any, server: str | None, model: str | None,
          methods: Sequence[str] | None) -> dict[_Key, tuple[str, str, str]]:
    """``{(source, method) position: (source name, method, signature)}``, checked in the driver before any worker."""
    names = {}
    backends = list(_backends(exports, server, model))
    try:
        for i, backend in enumerate(backends):
            for j, (method, signature) in enumerate(choose_methods(backend.methods(), methods).items()):
                names[(i, j)] = (backend.name, method, signature)
    finally:
        for backend in backends:
            backend.close()
    return names


def evaluate_on_beam(
    exports: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    samples: Sequence[Sample],
    pipeline_args: Sequence[str],
    *,
    server: str | None = None,
    model: str | None = None,
    steps: int = 20,
    blur_sigma: float = 5.0,
    batch_size: int = 32,
    methods: Sequence[str] | None = None,
    pointing_tolerance: int | None = 0,
) -> EvaluationReport:
    """:func:`evaluate` on the Beam runner ``pipeline_args`` name: the same report, scored by the workers.

    Reference map functions (``--random-baseline``) are not taken: a stateful random map's
    draws depend on the order images are scored in, which a distributed run does not keep.
    """
    settings = _Settings(steps, blur_sigma, batch_size, pointing_tolerance)
    if not samples:
        raise ValueError("no images to evaluate")
    if isinstance(exports, (str, os.PathLike)):
        exports = [exports]
    export_list = [os.fspath(e) for e in exports] if exports else None
    names = _plan(export_list, server, model, methods)
    options = PipelineOptions(list(pipeline_args))
    folder = _results_folder(options)
    elements = [(key, signature, index, sample) for key, (_, _, signature) in names.items()
                for index, sample in enumerate(samples)]
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline | "Images" >> beam.Create(elements, reshuffle=True)
             | "Score" >> beam.ParDo(_ScoreImage(export_list, server, model, settings))
             | "PerMethod" >> beam.CombinePerKey(_MethodScoresFn())
             | "Save" >> beam.ParDo(_Save(folder, names)))
    results = [_load(folder, key) for key in names]
    if "://" not in folder:
        shutil.rmtree(folder, ignore_errors=True)
    _warn_if_flat(results)
    return EvaluationReport(results, steps, blur_sigma, pointing_tolerance, list(samples), skipped_of(samples))


def _results_folder(options: PipelineOptions) -> str:
    """A fresh folder under ``--temp_location`` (remote runners), else a local temporary one."""
    temp = options.view_as(GoogleCloudOptions).temp_location
    if temp:
        return FileSystems.join(temp, f"gradcam_evaluate_{uuid.uuid4().hex}")
    return tempfile.mkdtemp(prefix="gradcam_evaluate_")


def _load(folder: str, key: _Key) -> MethodScores:
    with FileSystems.open(FileSystems.join(folder, f"{key[0]}-{key[1]}.pickle")) as handle:
        loaded_key, result = pickle.loads(handle.read())
    assert loaded_key == key
    return result
