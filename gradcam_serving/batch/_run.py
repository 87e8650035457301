"""One ``explain-batch`` job: check the output folder, build the pipeline, run it, report.

The export's metadata (methods, labels, pixel limit) is read once in the
driver, so a wrong ``--method`` fails before any worker starts, and the
pixel limit and label texts reach the per-image check.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from ._explain import resolve_methods
from ._handlers import ExplainModelHandler, RemoteExplainModelHandler, localize_export
from ._pipeline import ExplainTransform, ReadImages, WriteExplanations, input_root
from ._summary import BORDER_THRESHOLD

__all__ = ["BatchJob", "BatchReport", "OUTPUT_NAMES", "prepare_output", "run_batch"]

OUTPUT_NAMES = ("results-*.parquet", "failed.jsonl", "summary.json", "summary.png", "overlays/**", "heatmaps/**")
"""What a job writes under its output folder (and what ``overwrite`` deletes first)."""


@dataclass(frozen=True)
class BatchJob:
    """What to explain, with what, and where the results go.

    Exactly one of ``export`` (in-process) or ``server`` + ``model`` (remote) is given.
    """

    source: str
    output: str
    export: str | None = None
    server: str | None = None
    model: str | None = None
    methods: Sequence[str] | str | None = None
    top_k: int = 1
    class_from_label: bool = False
    batch_size: int = 16
    overlays: bool = False
    heatmaps: str = "none"
    overwrite: bool = False
    border_threshold: float = BORDER_THRESHOLD
    session_threads: int = 0
    input_kind: str | None = None


@dataclass(frozen=True)
class BatchReport:
    """How the job went: counts from ``summary.json``, wall time, and the summary itself."""

    images: int
    failed: int
    rows: int
    seconds: float
    output: str
    summary: dict[str, Any]

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        flagged = len(self.summary.get("flagged", []))
        return (f"{self.images} images, {self.failed} failed, {self.images_per_second:.1f} images/s"
                f"{f', {flagged} class(es) flagged for border evidence' if flagged else ''} -> {self.output}")


def refuse_existing(output: str, overwrite: bool) -> list[str]:
    """What ``output`` already holds; refused unless ``overwrite``.

    Raises:
        FileExistsError: the folder is not empty and ``overwrite`` is off.
    """
    existing = _existing(output)
    if existing and not overwrite:
        shown = ", ".join(sorted(os.path.basename(p.rstrip("/")) for p in existing)[:5])
        raise FileExistsError(f"output folder {output} is not empty ({shown}...); pass --overwrite to replace "
                              "the results in it, or choose another folder")
    return existing


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse a folder that already holds anything unless ``overwrite``; then delete a previous job's files only.

    Raises:
        FileExistsError: the folder is not empty and ``overwrite`` is off.
    """
    if refuse_existing(output, overwrite):
        patterns = [FileSystems.join(output, name) for name in OUTPUT_NAMES]
        stale = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]
        if stale:
            FileSystems.delete(stale)
    if "://" not in output:
        os.makedirs(output, exist_ok=True)


def _existing(output: str) -> list[str]:
    if "://" not in output:
        return [os.path.join(output, name) for name in os.listdir(output)] if os.path.isdir(output) else []
    (result,) = FileSystems.match([FileSystems.join(output, "*")])
    return [m.path for m in result.metadata_list]


@dataclass(frozen=True)
class _ExportFacts:
    methods: tuple[str, ...]
    labels: tuple[str, ...] | None
    num_classes: int | None
    max_pixels: int | None


def _export_facts(job: BatchJob) -> _ExportFacts:
    if job.export is not None:
        from gradcam_serving.runtime import ExportMetadata, read_saved_model

        local = localize_export(job.export)
        meta_graphs = read_saved_model(local).meta_graphs
        names = [name for graph in meta_graphs for name in graph.signature_def]
        metadata = ExportMetadata.read(local, names)
        methods = resolve_methods(job.methods, metadata.methods, metadata.default_method)
        return _ExportFacts(methods, metadata.labels, metadata.num_classes, metadata.max_pixels)
    from gradcam_serving import signatures as sig
    from gradcam_serving.client import ExplainClient

    with ExplainClient(job.server, job.model) as client:  # type: ignore[arg-type]
        exported = sig.exported_methods(client.metadata().signatures)
    return _ExportFacts(resolve_methods(job.methods, exported, None), None, None, None)


def _handler(job: BatchJob, methods: tuple[str, ...]) -> Any:
    if job.export is not None:
        return ExplainModelHandler(job.export, methods=methods, top_k=job.top_k, overlays=job.overlays,
                                   batch_size=job.batch_size, session_threads=job.session_threads)
    return RemoteExplainModelHandler(job.server, job.model, methods=methods, top_k=job.top_k,  # type: ignore[arg-type]
                                     overlays=job.overlays, batch_size=job.batch_size)


def check_job(job: BatchJob) -> None:
    """Refuse option combinations that cannot mean anything, before anything runs."""
    if (job.export is None) == (job.server is None):
        raise ValueError("give either an export folder (--export) or a server (--server HOST:PORT --model NAME)")
    if job.server is not None and not job.model:
        raise ValueError("--server needs --model NAME (the served model's name)")
    if job.top_k < 1:
        raise ValueError(f"--top-k must be at least 1; got {job.top_k}")
    if job.top_k > 1 and job.class_from_label:
        raise ValueError("--top-k and --class-from-label cannot be combined: --top-k picks the classes itself")
    if job.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1; got {job.batch_size}")


def run_batch(job: BatchJob, pipeline_args: Sequence[str] = ()) -> BatchReport:
    """Run the job on the runner ``pipeline_args`` name (the DirectRunner by default) and wait for it."""
    check_job(job)
    refuse_existing(job.output, job.overwrite)  # before loading anything; deleted only once the job is sound
    facts = _export_facts(job)
    prepare_output(job.output, job.overwrite)
    options = PipelineOptions(list(pipeline_args))
    started = time.perf_counter()
    with _quiet_beam():
        pipeline = beam.Pipeline(options=options)
        explained = pipeline | "Read" >> ReadImages(job.source, job.input_kind) | "Explain" >> ExplainTransform(
            _handler(job, facts.methods), class_from_label=job.class_from_label, max_pixels=facts.max_pixels,
            labels=facts.labels, num_classes=facts.num_classes)
        _ = explained | "Write" >> WriteExplanations(job.output, overlays=job.overlays, heatmaps=job.heatmaps,
                                                    top_k=job.top_k, border_threshold=job.border_threshold,
                                                    input_root=input_root(job.source, job.input_kind))
        result = pipeline.run()
        result.wait_until_finish()
    seconds = time.perf_counter() - started
    with FileSystems.open(FileSystems.join(job.output, "summary.json")) as handle:
        summary = json.loads(handle.read())
    return BatchReport(summary["images"], summary["failed"], summary["rows"], seconds, job.output, summary)


class _quiet_beam:
    """Beam's own INFO lines (and absl's) stay out of the terminal; warnings and errors still show."""

    def __enter__(self) -> None:
        self.loggers = [logging.getLogger(name) for name in ("apache_beam", "absl", "")]
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.setLevel(max(logger.level, logging.WARNING))

    def __exit__(self, *exc_info: object) -> None:
        for logger, level in zip(self.loggers, self.levels):
            logger.setLevel(level)
