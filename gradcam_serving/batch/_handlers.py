"""Beam ``ModelHandler``s for ``RunInference``: the export in this worker, or a server over gRPC.

In-process, each worker process loads the export once through the project's
one export runtime (TF1 loader, Session, signatures by name, as TF Serving
runs it) and its threads share it; ``share_across_processes`` hands Beam one
copy per machine instead (GPU workers). An export on ``gs://`` or any other
Beam filesystem is copied to local disk first, since the TF1 loader reads
local folders the way TF Serving does.

Remotely, Beam's ``RemoteModelHandler`` retries failed calls and throttles
on the client side when the server starts refusing, so a large job backs off
instead of taking the serving fleet down.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RemoteModelHandler

from gradcam_serving import signatures as sig

from ._progress import NAMESPACE as METRICS_NAMESPACE
from ._explain import Answers, ExplainPlan, explain_batch
from ._model import localize_export
from ._records import STAGE_EXPLAIN, ExplainRequest

__all__ = ["ExplainModelHandler", "RemoteExplainModelHandler", "explain_handler"]


class _SessionBackend:
    """``explain_bytes_<method>`` and ``predict_bytes`` of a loaded :class:`ExportSession`."""

    failure_stage = STAGE_EXPLAIN

    def __init__(self, export: Any, overlays: bool) -> None:
        import tensorflow as tf

        self.refusals = (tf.errors.InvalidArgumentError,)
        self.export = export
        self.table = export.metadata.signature_table()
        self.overlays = overlays

    def explain(self, method: str, data: Sequence[bytes], classes: Sequence[int]) -> Answers:
        from gradcam_serving.client import ModelSpec, explanation_from_outputs

        row = self.table[sig.explain_signature(method, encoded=True)]
        wanted = [spec.alias_in(row.contract) for spec in row.output_specs if self.overlays or not spec.binary]
        inputs = {row.pixels: np.asarray(data, dtype=object), sig.CLASS_INDEX: np.asarray(classes, np.int32)}
        out = self.export.run(row.name, inputs, wanted)
        return Answers.of(explanation_from_outputs(out, ModelSpec(str(self.export.path), row.name, None),
                                                   encoded=self.overlays))

    def predict(self, data: Sequence[bytes]) -> np.ndarray:
        row = self.table[sig.PREDICT_BYTES]
        return self.export.run(row.name, {row.pixels: np.asarray(data, dtype=object)}, [sig.PROBABILITIES])[
            sig.PROBABILITIES
        ]


class ExplainModelHandler(ModelHandler[ExplainRequest, PredictionResult, Any]):
    """Explain checked images with an export loaded in the worker (``RunInference``'s in-process handler).

    Args:
        export: the version folder (``BASE/NAME/VERSION``), local or on any Beam filesystem.
        methods: CAM methods, ``"all"``, or ``None`` for the export's default (checked against the loaded
            export once, by :func:`gradcam_serving.signatures.resolve_methods`).
        top_k: explain the k most probable classes of each image (1: the requested or predicted class).
        overlays: keep the export's overlay PNG of each row.
        batch_size: the most images per ``Session.run``.
        session_threads: TensorFlow's intra-op threads per worker process (0: TensorFlow decides).
        share_across_processes: one copy of the model per machine, shared by its worker processes.
    """

    def __init__(
        self,
        export: str | os.PathLike[str],
        *,
        methods: Sequence[str] | str | None = None,
        top_k: int = 1,
        overlays: bool = False,
        batch_size: int = 16,
        session_threads: int = 0,
        share_across_processes: bool = False,
    ) -> None:
        super().__init__(min_batch_size=1, max_batch_size=batch_size, large_model=share_across_processes)
        self._export = os.fspath(export)
        self._methods = methods
        self._top_k = top_k
        self._overlays = overlays
        self._session_threads = session_threads
        self._plan: ExplainPlan | None = None

    def load_model(self) -> Any:
        from gradcam_serving.runtime import ExportSession, tool_session_config

        threads = self._session_threads
        return ExportSession(localize_export(self._export), config=tool_session_config(threads, threads))

    def run_inference(
        self, batch: Sequence[ExplainRequest], model: Any, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        if self._plan is None:  # once per handler, not per batch: the loaded export cannot change its methods
            metadata = model.metadata
            self._plan = ExplainPlan(sig.resolve_methods(self._methods, metadata.methods, metadata.default_method),
                                     self._top_k, self._overlays)
        outcomes = explain_batch(_SessionBackend(model, self._overlays), batch, self._plan)
        return [PredictionResult(request, outcome) for request, outcome in zip(batch, outcomes)]

    def get_num_bytes(self, batch: Sequence[ExplainRequest]) -> int:
        return sum(len(request.data) for request in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE


class _ClientBackend:
    """The same signatures through :class:`ExplainClient` (``explain_bytes_<method>``, ``predict_bytes``)."""

    failure_stage = STAGE_EXPLAIN

    def __init__(self, client: Any) -> None:
        from gradcam_serving.errors import InvalidArgumentError

        self.refusals = (InvalidArgumentError,)
        self.client = client

    def explain(self, method: str, data: Sequence[bytes], classes: Sequence[int]) -> Answers:
        return Answers.of(self.client.explain(list(data), list(classes), method=method))

    def predict(self, data: Sequence[bytes]) -> np.ndarray:
        return np.asarray(self.client.predict(list(data)).probabilities)


def _retryable(exc: Exception) -> bool:
    """Worth another call: the server is down, overloaded or slow (not: the request itself is wrong)."""
    from gradcam_serving.errors import DeadlineExceededError, ResourceExhaustedError, UnavailableError

    return isinstance(exc, (UnavailableError, DeadlineExceededError, ResourceExhaustedError))


class RemoteExplainModelHandler(RemoteModelHandler[ExplainRequest, PredictionResult, Any]):
    """Explain checked images on TF Serving (or ``gradcam-serving serve``) through :class:`ExplainClient`.

    Beam retries a batch whose call failed with UNAVAILABLE, DEADLINE_EXCEEDED or
    RESOURCE_EXHAUSTED (``num_retries`` times, exponential backoff) and throttles on the
    client side while the server refuses; a batch that still fails goes to RunInference's
    dead-letter output. Images the server refuses (INVALID_ARGUMENT) are retried one by one.

    Args:
        server: ``HOST:PORT`` of the gRPC endpoint.
        model: the served model's name.
        methods: CAM methods, ``"all"``, or ``None`` for the export's default.
        top_k: as for :class:`ExplainModelHandler`.
        overlays: keep the server's overlay PNG of each row.
        batch_size: the most images per call.
        timeout: seconds per call.
        num_retries: Beam's retries of a failed call.
    """

    def __init__(
        self,
        server: str,
        model: str,
        *,
        methods: Sequence[str] | str | None = None,
        top_k: int = 1,
        overlays: bool = False,
        batch_size: int = 16,
        timeout: float = 60.0,
        num_retries: int = 5,
        throttle_delay_secs: int = 5,
    ) -> None:
        super().__init__(namespace=METRICS_NAMESPACE, num_retries=num_retries,
                         throttle_delay_secs=throttle_delay_secs, retry_filter=_retryable)
        self._batching_kwargs = {"min_batch_size": 1, "max_batch_size": batch_size}
        self._server = server
        self._model = model
        self._methods = methods
        self._top_k = top_k
        self._overlays = overlays
        self._timeout = timeout
        self._plan: ExplainPlan | None = None

    def create_client(self) -> Any:
        from gradcam_serving.client import ExplainClient, Timeout

        return ExplainClient(self._server, self._model, timeout=Timeout(self._timeout))

    def request(
        self, batch: Sequence[ExplainRequest], model: Any, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        outcomes = explain_batch(_ClientBackend(model), batch, self._plan_for(model))
        return [PredictionResult(request, outcome) for request, outcome in zip(batch, outcomes)]

    def _plan_for(self, client: Any) -> ExplainPlan:
        if self._plan is None:
            exported = sig.exported_methods(client.metadata().signatures)
            methods = sig.resolve_methods(self._methods, exported)
            self._plan = ExplainPlan(methods, self._top_k, self._overlays)
        return self._plan

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        return self._batching_kwargs

    def get_num_bytes(self, batch: Sequence[ExplainRequest]) -> int:
        return sum(len(request.data) for request in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE



def explain_handler(
    export: str | None,
    server: str | None,
    model: str | None,
    methods: Sequence[str],
    *,
    top_k: int = 1,
    overlays: bool = False,
    batch_size: int = 16,
    session_threads: int = 0,
) -> ExplainModelHandler | RemoteExplainModelHandler:
    """The handler a job runs: the export loaded in each worker, or ``model`` on ``server``, with resolved methods."""
    if export is not None:
        return ExplainModelHandler(export, methods=methods, top_k=top_k, overlays=overlays, batch_size=batch_size,
                                   session_threads=session_threads)
    return RemoteExplainModelHandler(server, model, methods=methods, top_k=top_k,  # type: ignore[arg-type]
                                     overlays=overlays, batch_size=batch_size)
