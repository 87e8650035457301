"""What an ``explain-batch`` job is asked to do, checked before anything loads.

Free of Beam and TensorFlow, so the command builds and checks the job before
either is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BatchJob", "check_job"]


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
