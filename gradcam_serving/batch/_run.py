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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from gradcam_serving import signatures as sig

from ._handlers import explain_handler
from ._job import BatchJob, check_job
from ._model import model_facts
from ._output import prepare_output
from ._pipeline import ExplainTransform, ReadImages, WriteExplanations
from ._summary import BORDER_THRESHOLD

__all__ = ["BatchReport", "run_batch"]

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


def run_batch(job: BatchJob, pipeline_args: Sequence[str] = ()) -> BatchReport:
    """Run the job on the runner ``pipeline_args`` name (the DirectRunner by default) and wait for it."""
    job = check_job(job)
    facts = model_facts(job.export, job.server, job.model)
    methods = sig.resolve_methods(job.methods, facts.methods, facts.default_method)
    handler = explain_handler(job.export, job.server, job.model, methods, top_k=job.top_k, overlays=job.overlays,
                              batch_size=job.batch_size, session_threads=job.session_threads)
    prepare_output(job.output, job.overwrite)  # deleted only once the job is known to be sound
    threshold = BORDER_THRESHOLD if job.border_threshold is None else job.border_threshold
    options = PipelineOptions(list(pipeline_args))
    started = time.perf_counter()
    with _quiet_beam():
        pipeline = beam.Pipeline(options=options)
        explained = pipeline | "Read" >> ReadImages(job.source, job.input_kind) | "Explain" >> ExplainTransform(
            handler, class_from_label=job.class_from_label, max_pixels=facts.max_pixels,
            labels=facts.labels, num_classes=facts.num_classes)
        _ = explained | "Write" >> WriteExplanations(job.output, overlays=job.overlays, heatmaps=job.heatmaps,
                                                    top_k=job.top_k, border_threshold=threshold,
                                                    input_root=job.root)
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
