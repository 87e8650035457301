"""One ``explain-batch`` job: check the output folder, build the pipeline, run it, report.

The job is built once (:class:`BatchJob`) and only travels down: the model's
facts (methods, labels, pixel limit) are read once in the driver
(:func:`~._model.model_facts`), so a wrong ``--method`` fails before any worker
starts; the methods are resolved there, once, and the pieces below (the read
transform, the model handler, the writer) each get the plain values they need.
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

from gradcam_serving import signatures as sig

from ._handlers import ExplainModelHandler, RemoteExplainModelHandler
from ._job import BatchJob, check_job
from ._model import model_facts
from ._pipeline import ExplainTransform, ReadImages, WriteExplanations, input_root
from ._summary import BORDER_THRESHOLD

__all__ = ["BatchReport", "OUTPUT_NAMES", "prepare_output", "run_batch"]

OUTPUT_NAMES = ("results-*.parquet", "failed.jsonl", "summary.json", "summary.png", "overlays/**", "heatmaps/**")
"""What a job writes under its output folder (and what ``overwrite`` deletes first)."""


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


def _handler(job: BatchJob, methods: tuple[str, ...]) -> Any:
    if job.export is not None:
        return ExplainModelHandler(job.export, methods=methods, top_k=job.top_k, overlays=job.overlays,
                                   batch_size=job.batch_size, session_threads=job.session_threads)
    return RemoteExplainModelHandler(job.server, job.model, methods=methods, top_k=job.top_k,  # type: ignore[arg-type]
                                     overlays=job.overlays, batch_size=job.batch_size)


def run_batch(job: BatchJob, pipeline_args: Sequence[str] = ()) -> BatchReport:
    """Run the job on the runner ``pipeline_args`` name (the DirectRunner by default) and wait for it."""
    check_job(job)
    refuse_existing(job.output, job.overwrite)  # before loading anything; deleted only once the job is sound
    facts = model_facts(job.export, job.server, job.model)
    methods = sig.resolve_methods(job.methods, facts.methods, facts.default_method)
    threshold = BORDER_THRESHOLD if job.border_threshold is None else job.border_threshold
    prepare_output(job.output, job.overwrite)
    options = PipelineOptions(list(pipeline_args))
    started = time.perf_counter()
    with _quiet_beam():
        pipeline = beam.Pipeline(options=options)
        explained = pipeline | "Read" >> ReadImages(job.source, job.input_kind) | "Explain" >> ExplainTransform(
            _handler(job, methods), class_from_label=job.class_from_label, max_pixels=facts.max_pixels,
            labels=facts.labels, num_classes=facts.num_classes)
        _ = explained | "Write" >> WriteExplanations(job.output, overlays=job.overlays, heatmaps=job.heatmaps,
                                                    top_k=job.top_k, border_threshold=threshold,
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
