"""What an ``explain-batch`` job is asked to do, checked before anything loads.

Free of Beam and TensorFlow, so the command builds and checks the job before
either is imported.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gradcam_serving.manifests import manifest_kind

__all__ = ["BatchJob", "TFRECORD_SUFFIXES", "check_job", "input_kind", "input_root"]

TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrecord.gz", ".tfrecords.gz")


@dataclass(frozen=True)
class BatchJob:
    """What to explain, with what, and where the results go.

    Exactly one of ``export`` (in-process) or ``server`` + ``model`` (remote) is given. ``methods`` is what
    was asked (names, ``"all"``, or ``None`` for the export's default); :func:`run_batch` resolves it against
    the model once. ``border_threshold`` ``None`` is the summary's own default
    (:data:`~gradcam_serving.batch.BORDER_THRESHOLD`).
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
    border_threshold: float | None = None
    session_threads: int = 0
    input_kind: str | None = None

    @property
    def root(self) -> str:
        """The folder every input lies under, which output files keep their paths below (:func:`input_root`)."""
        return input_root(self.source, self.input_kind)


def check_job(job: BatchJob) -> BatchJob:
    """Refuse option combinations that cannot mean anything, before anything runs; the job with its input kind said.

    The kind (``files``, ``manifest``, ``tfrecord``) is settled here, once, so nothing below asks again.
    """
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
    return job if job.input_kind is not None else replace(job, input_kind=input_kind(job.source))


def input_kind(source: str) -> str:
    """``manifest``, ``tfrecord`` or ``files`` from how ``source`` is spelled (a folder reads every file in it)."""
    if manifest_kind(source) is not None:
        return "manifest"
    if source.lower().endswith(TFRECORD_SUFFIXES):
        return "tfrecord"
    return "files"


def input_root(source: str, kind: str | None = None) -> str:
    """The folder every input of ``source`` lies under: a pattern's part before its first wildcard, a manifest's folder."""
    kind = kind or input_kind(source)
    if kind == "manifest":
        return posixpath.dirname(source) if "://" in source else os.path.dirname(os.path.abspath(source))
    if kind == "files" and os.path.isdir(source):
        return source
    fixed = source[: min([source.find(ch) for ch in "*?[{" if ch in source] or [len(source)])]
    return (fixed if fixed.endswith("/") else posixpath.dirname(fixed)).rstrip("/")
