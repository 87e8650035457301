"""In-process counters: request outcomes, Session runs and batch sizes.

Kept tiny and transport-free so tests can check that batching really merged
requests, and a later REST front end can export the same numbers the way TF
Serving's Prometheus endpoint does.
"""

from __future__ import annotations

import collections
import threading

__all__ = ["Metrics"]


class Metrics:
    """Thread-safe counters keyed by model name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._batch_sizes: dict[str, list[int]] = collections.defaultdict(list)
        self._padded_sizes: dict[str, list[int]] = collections.defaultdict(list)

    def record_request(self, model: str, api: str, status: str) -> None:
        """One RPC finished with ``status`` (a status code name such as ``OK``)."""
        with self._lock:
            self._requests[(model, api, status)] += 1

    def record_batch(self, model: str, size: int, padded_size: int) -> None:
        """One batched ``Session.run`` of ``size`` real rows, padded to ``padded_size``."""
        with self._lock:
            self._batch_sizes[model].append(size)
            self._padded_sizes[model].append(padded_size)

    def batch_sizes(self, model: str) -> list[int]:
        """The real row count of every batch run for ``model``, oldest first."""
        with self._lock:
            return list(self._batch_sizes.get(model, ()))

    def padded_batch_sizes(self, model: str) -> list[int]:
        with self._lock:
            return list(self._padded_sizes.get(model, ()))

    def request_count(self, model: str, api: str = "Predict", status: str | None = None) -> int:
        with self._lock:
            return sum(
                n for (m, a, s), n in self._requests.items()
                if m == model and a == api and (status is None or s == status)
            )
