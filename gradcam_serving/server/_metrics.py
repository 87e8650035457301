"""In-process counters: request outcomes and latencies, Session runs and batch sizes.

Kept tiny and transport-free so tests can check that batching really merged
requests, and the REST front end can export the same numbers the way TF
Serving's Prometheus endpoint does (``_prometheus.py``). Latencies are kept as
TF's ``/tensorflow/serving/request_latency`` sampler keeps them: microseconds in
exponential buckets (scale 10, growth 1.8, 33 buckets, ``servables/tensorflow/util.cc``).
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import threading

__all__ = ["GRPC", "LATENCY_BUCKET_LIMITS", "REST", "Histogram", "Metrics"]

GRPC = "GRPC"
REST = "REST"
LATENCY_BUCKET_LIMITS: tuple[float, ...] = tuple(10.0 * 1.8**i for i in range(33))
# TF Serving counts gRPC requests in request_count/request_latency only for these
# (prediction_service_impl.cc); every REST request is counted (http_server.cc).
_TF_COUNTED_GRPC_APIS = frozenset({"Predict", "Classify", "Regress"})


@dataclasses.dataclass
class Histogram:
    """Per-bucket counts (the last bucket is +Inf) and the sum of the samples.

    Like TF's ``Histogram::Add`` (``upper_bound``), a value equal to a limit goes to the next bucket.
    """

    counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(LATENCY_BUCKET_LIMITS) + 1))
    total: float = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_right(LATENCY_BUCKET_LIMITS, value)] += 1
        self.total += value


def counted_by_tf(api: str, entrypoint: str) -> bool:
    """Whether TF Serving would count this request in its Prometheus request metrics."""
    return entrypoint == REST or api in _TF_COUNTED_GRPC_APIS


class Metrics:
    """Thread-safe counters keyed by model name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        self._latency: dict[tuple[str, str, str], Histogram] = collections.defaultdict(Histogram)
        self._batch_sizes: dict[str, list[int]] = collections.defaultdict(list)
        self._padded_sizes: dict[str, list[int]] = collections.defaultdict(list)
        self._started = 0
        self._finished = 0

    def request_started(self) -> None:
        """A request came in; :meth:`record_request` ends it (see :meth:`activity`)."""
        with self._lock:
            self._started += 1

    def record_request(
        self, model: str, api: str, status: str, *, latency_s: float | None = None, entrypoint: str = GRPC
    ) -> None:
        """One request finished with ``status`` (a status code name such as ``OK``).

        Args:
            latency_s: wall time, recorded only when given (TF records it for successes only).
            entrypoint: ``GRPC`` or ``REST``.
        """
        with self._lock:
            self._requests[(model, api, status, entrypoint)] += 1
            self._finished += 1
            if latency_s is not None:
                self._latency[(model, api, entrypoint)].add(latency_s * 1e6)

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

    def request_count(
        self, model: str, api: str = "Predict", status: str | None = None, entrypoint: str | None = None
    ) -> int:
        with self._lock:
            return sum(
                n for (m, a, s, e), n in self._requests.items()
                if m == model and a == api and status in (None, s) and entrypoint in (None, e)
            )

    def activity(self) -> tuple[int, int]:
        """(requests started, requests finished) so far: equal when none is in flight."""
        with self._lock:
            return self._started, self._finished

    def tf_request_counts(self) -> dict[tuple[str, str], int]:
        """``/tensorflow/serving/request_count``: (model_name, status) -> count."""
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        with self._lock:
            for (model, api, status, entrypoint), n in self._requests.items():
                if counted_by_tf(api, entrypoint):
                    counts[(model, status)] += n
        return dict(counts)

    def tf_request_latencies(self) -> dict[tuple[str, str, str], Histogram]:
        """``/tensorflow/serving/request_latency``: (model_name, API, entrypoint) -> copy of the histogram."""
        with self._lock:
            return {
                key: Histogram(list(h.counts), h.total)
                for key, h in self._latency.items() if counted_by_tf(key[1], key[2])
            }
