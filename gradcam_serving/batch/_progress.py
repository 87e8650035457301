"""A live count of images done and failed on the DirectRunner, and Beam counters for every runner.

Beam's DirectRunner publishes its metrics only when the pipeline ends, so for
the terminal each worker process also keeps a running tally in a small file
of a folder the command names in an environment variable (inherited by the
``multi_processing`` workers); the command sums the files. On other runners
the variable is unset and the runner's UI shows the Beam counters.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from apache_beam.metrics import Metrics

__all__ = ["PROGRESS_ENV", "count", "read_progress"]

PROGRESS_ENV = "GRADCAM_SERVING_BATCH_PROGRESS"
NAMESPACE = "gradcam_serving.batch"
_FLUSH_SECONDS = 0.3

_images_counter = Metrics.counter(NAMESPACE, "images")
_failed_counter = Metrics.counter(NAMESPACE, "failed")
_lock = threading.Lock()
_tally = {"images": 0, "failed": 0, "flushed": 0.0}


def count(*, images: int = 0, failed: int = 0) -> None:
    """Count explained images and failed inputs (Beam counters; the progress file when one is asked for)."""
    if images:
        _images_counter.inc(images)
    if failed:
        _failed_counter.inc(failed)
    folder = os.environ.get(PROGRESS_ENV)
    if not folder:
        return
    with _lock:
        _tally["images"] += images
        _tally["failed"] += failed
        now = time.monotonic()
        if now - _tally["flushed"] < _FLUSH_SECONDS:
            return
        _tally["flushed"] = now
        line = f"{_tally['images']} {_tally['failed']}"
    target = Path(folder) / str(os.getpid())
    temporary = target.with_suffix(".tmp")
    temporary.write_text(line)
    temporary.replace(target)


def read_progress(folder: str | os.PathLike[str]) -> tuple[int, int]:
    """``(images, failed)`` summed over the workers' files (each a few hundred ms behind at most)."""
    images = failed = 0
    for file in Path(folder).glob("*"):
        if file.suffix == ".tmp":
            continue
        try:
            done, bad = (int(v) for v in file.read_text().split())
        except (OSError, ValueError):
            continue
        images, failed = images + done, failed + bad
    return images, failed
