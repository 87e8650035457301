"""Which model a batch job explains: a local copy of its export, and what the export or the server says it holds.

The bottom of the batch package: the driver reads the model's facts here once
(methods, labels, pixel limit), and each worker's handler localizes the export
here; neither comes back up.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass

from gradcam_serving import signatures as sig

__all__ = ["ModelFacts", "localize_export", "model_facts"]

_local_copies: dict[str, str] = {}
_local_lock = threading.Lock()


def localize_export(path: str) -> str:
    """A local folder holding the export at ``path``: itself if local, else a copy made once per process."""
    if os.path.isdir(path):
        return path
    with _local_lock:
        if path not in _local_copies:
            _local_copies[path] = _copy_to_local(path)
        return _local_copies[path]


def _copy_to_local(path: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    root = path.rstrip("/")
    (matched,) = FileSystems.match([f"{root}/**"])
    if not matched.metadata_list:
        raise FileNotFoundError(f"no export found at {path} (no files under it)")
    target = tempfile.mkdtemp(prefix="gradcam_export_")
    for meta in matched.metadata_list:
        relative = meta.path[len(root) + 1:]
        destination = os.path.join(target, *relative.split("/"))
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with FileSystems.open(meta.path) as source, open(destination, "wb") as sink:
            sink.write(source.read())
    return target


@dataclass(frozen=True)
class ModelFacts:
    """What the driver needs to know before any worker starts.

    ``methods`` are those the export holds (empty for an export made before ``explain_<method>``);
    a server's metadata names no default, no labels and no pixel limit.
    """

    methods: tuple[str, ...]
    default_method: str | None = None
    labels: tuple[str, ...] | None = None
    num_classes: int | None = None
    max_pixels: int | None = None


def model_facts(export: str | None, server: str | None, model: str | None) -> ModelFacts:
    """Read the export's metadata (``export``, without TensorFlow), or the served model's signatures (``server`` + ``model``)."""
    if export is not None:
        from gradcam_serving.exports import read_export

        local = localize_export(export)
        metadata = read_export(local).metadata
        return ModelFacts(tuple(metadata.methods), metadata.default_method, metadata.labels, metadata.num_classes,
                          metadata.max_pixels)
    from gradcam_serving.client import ExplainClient

    with ExplainClient(server, model) as client:  # type: ignore[arg-type]
        return ModelFacts(tuple(sig.exported_methods(client.metadata().signatures)))
