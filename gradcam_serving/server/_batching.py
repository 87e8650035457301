"""Request batching like TF Serving's ``BatchingSession`` + shared batch scheduler.

Concurrent Predict calls for the same version, signature and fetch list are
concatenated along dimension 0 and run as one ``Session.run``; outputs are
split back by each request's row count. One scheduler (``num_batch_threads``
workers) serves every queue, as TF Serving's shared scheduler does.

Deviation, on purpose: TF Serving keys a queue only by tensor names, so
requests whose non-batch dimensions differ (say 32x32 and 64x64 images) land in
one batch whose concatenation fails for all of them. Here the queue key also
holds each input's dtype and non-batch shape, so such requests simply run in
separate batches. Like TF Serving, an error inside a batch (for example a
``tf.debugging`` assert tripped by one request's rows) fails every request in
that batch with the same status.
"""

from __future__ import annotations

import bisect
import collections
import threading
import time
from collections.abc import Hashable, Sequence

import numpy as np

from gradcam_serving.errors import (
    FailedPreconditionError, InvalidArgumentError, ServingError, UnavailableError, UnknownError,
)
from gradcam_serving.server._metrics import Metrics
from gradcam_serving.server._options import BatchingOptions
from gradcam_serving.server._servable import Servable

__all__ = ["BatchScheduler"]


class _Task:
    def __init__(self, feeds: dict[str, np.ndarray], size: int, timeout_ms: int) -> None:
        self.feeds = feeds
        self.size = size
        self.deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms > 0 else None
        self.done = threading.Event()
        self.outputs: list[np.ndarray] | None = None
        self.error: ServingError | None = None


class _Batch:
    def __init__(self, servable: Servable, fetches: tuple[str, ...]) -> None:
        self.servable = servable
        self.fetches = fetches
        self.tasks: list[_Task] = []
        self.size = 0
        self.opened = time.monotonic()


def _task_size(feeds: dict[str, np.ndarray]) -> int:
    """Rows of a request; TF's ``ComputeInputSize`` checks and texts."""
    sizes = set()
    for value in feeds.values():
        if value.ndim == 0:
            raise InvalidArgumentError("Batching session Run() input tensors must have at least one dimension")
        sizes.add(value.shape[0])
    if not sizes:
        raise InvalidArgumentError("Batching session Run() must have at least one input tensor")
    if len(sizes) > 1:
        raise InvalidArgumentError("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


class BatchScheduler:
    """A :class:`~gradcam_serving.server._predict.Runner` that batches requests.

    Args:
        options: TF Serving's ``BatchingParameters`` values.
        metrics: receives one ``record_batch`` per batched run.
    """

    def __init__(self, options: BatchingOptions, metrics: Metrics) -> None:
        self._options = options
        self._metrics = metrics
        self._cond = threading.Condition()
        self._queues: dict[Hashable, collections.deque[_Batch]] = {}
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def __call__(
        self, servable: Servable, signature_name: str, feeds: dict[str, np.ndarray],
        fetches: Sequence[str], timeout_ms: int,
    ) -> list[np.ndarray]:
        size = _task_size(feeds)
        limit = self._options.max_batch_size
        if size > limit:
            raise InvalidArgumentError(f"Task size {size} is larger than maximum input batch size {limit}")
        task = _Task(feeds, size, timeout_ms)
        key = (
            id(servable), signature_name, tuple(fetches),
            tuple((name, feeds[name].dtype.str, feeds[name].shape[1:]) for name in sorted(feeds)),
        )
        with self._cond:
            if self._stopping:
                raise UnavailableError("The batch scheduler is shutting down")
            queue = self._queues.setdefault(key, collections.deque())
            opened = not queue or queue[-1].size + size > limit
            if opened:
                if len(queue) >= self._options.max_enqueued_batches:
                    raise UnavailableError("The batch scheduling queue to which this task was submitted is full")
                queue.append(_Batch(servable, tuple(fetches)))
            batch = queue[-1]
            batch.tasks.append(task)
            batch.size += size
            # Workers only need waking when their wait changes: a new batch brings a new timeout (and
            # makes the one before it ready), a full batch is ready now. Waking them for every task
            # cost two thread switches per request under load.
            if opened or batch.size >= limit:
                self._cond.notify_all()
        task.done.wait()
        if task.error is not None:
            raise task.error
        assert task.outputs is not None
        return task.outputs

    def stop(self) -> None:
        """Run what is queued, then end the worker threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    # -- scheduling -----------------------------------------------------------------

    def _ready(self, queue: collections.deque[_Batch], now: float) -> bool:
        """A batch runs once it is full, no longer the open one, or timed out."""
        head = queue[0]
        timeout = self._options.batch_timeout_micros / 1e6
        return (
            len(queue) > 1 or head.size >= self._options.max_batch_size
            or now - head.opened >= timeout or self._stopping
        )

    def _next_batch(self) -> _Batch | None:
        with self._cond:
            while True:
                now = time.monotonic()
                ready = [(q[0].opened, key) for key, q in self._queues.items() if q and self._ready(q, now)]
                if ready:
                    _, key = min(ready)
                    queue = self._queues[key]
                    batch = queue.popleft()
                    if not queue:
                        del self._queues[key]
                    return batch
                if self._stopping:
                    return None
                waits = [q[0].opened + self._options.batch_timeout_micros / 1e6 - now for q in self._queues.values() if q]
                self._cond.wait(timeout=max(min(waits), 0.0005) if waits else None)

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._process(batch)
            except ServingError as exc:
                for task in batch.tasks:
                    task.error = exc
            except Exception as exc:  # noqa: BLE001 - a worker must never die silently
                for task in batch.tasks:
                    task.error = UnknownError(f"Batch processing failed: {exc}")
            finally:
                for task in batch.tasks:
                    task.done.set()

    def _padded_size(self, size: int) -> int:
        allowed = self._options.allowed_batch_sizes
        if not allowed:
            return size
        return allowed[min(bisect.bisect_left(allowed, size), len(allowed) - 1)]

    def _process(self, batch: _Batch) -> None:
        tasks = batch.tasks
        padding = self._padded_size(batch.size) - batch.size
        feeds: dict[str, np.ndarray] = {}
        for name in tasks[0].feeds:
            parts = [task.feeds[name] for task in tasks]
            if padding and parts[0].shape[0] > 0:
                parts.append(np.repeat(parts[0][:1], padding, axis=0))
            feeds[name] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        real_rows = feeds[next(iter(feeds))].shape[0] if feeds else 0
        deadlines = [task.deadline for task in tasks]
        timeout_ms = 0 if None in deadlines else max(1, int((max(deadlines) - time.monotonic()) * 1000))  # type: ignore[type-var]
        outputs = batch.servable.run(feeds, batch.fetches, timeout_ms)
        self._metrics.record_batch(batch.servable.name, batch.size, real_rows)
        for value in outputs:
            if value.ndim == 0:
                raise FailedPreconditionError("Batched output tensor has 0 dimensions")
            if value.shape[0] != real_rows:
                raise FailedPreconditionError(
                    "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension "
                    "sizes of the input tensors"
                )
        offset = 0
        for task in tasks:
            task.outputs = [value[offset : offset + task.size] for value in outputs]
            offset += task.size
