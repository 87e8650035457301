"""The transport-free serving core that gRPC (and later REST) front ends call.

:class:`ServingCore` ties the manager, the runner (direct or batching), warmup
and metrics together and implements the four operations TF Serving offers for
SavedModels: Predict, GetModelMetadata, GetModelStatus and ReloadConfig. It
takes and returns plain Python values and TF protos (``SignatureDef``), never
gRPC messages, and raises only :class:`ServingError`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from gradcam_serving.errors import InvalidArgumentError, ServingError
from gradcam_serving.server._batching import BatchScheduler
from gradcam_serving.server._manager import ModelManager, ModelRef, VersionStatus
from gradcam_serving.server._metrics import Metrics
from gradcam_serving.server._options import ModelConfig, ServerOptions
from gradcam_serving.server._predict import PredictResult, Runner, direct_runner, run_predict
from gradcam_serving.server._servable import Servable, SessionSettings, load_servable
from gradcam_serving.server._tensors import to_numpy
from gradcam_serving.server._warmup import run_warmup
from gradcam_serving.signatures import SIGNATURE_DEF as SIGNATURE_DEF_FIELD

__all__ = ["SIGNATURE_DEF_FIELD", "ModelMetadata", "ServingCore"]

_log = logging.getLogger("gradcam_serving.server")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """GetModelMetadata's answer: the version and every SignatureDef by key."""

    model_name: str
    version: int
    signature_defs: dict[str, Any]


class ServingCore:
    """Everything the server does, minus the wire protocol.

    Args:
        options: the server options (models, batching, warmup, load retries ...).
    """

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.metrics = Metrics()
        self._settings = SessionSettings(
            tags=options.saved_model_tags,
            intra_op_parallelism=options.intra_op_parallelism,
            inter_op_parallelism=options.inter_op_parallelism,
            config_text=options.session_config_text,
        )
        self._scheduler = BatchScheduler(options.batching, self.metrics) if options.batching else None
        self._runner: Runner = self._scheduler if self._scheduler is not None else direct_runner
        self.manager = ModelManager(
            self._load_version,
            poll_wait_seconds=options.file_system_poll_wait_seconds,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_seconds=options.load_retry_interval_seconds,
            allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
        )

    def start(self) -> None:
        """Load the configured models (raising on failure) and start polling."""
        self.manager.start(self.options.models)

    def stop(self) -> None:
        """Stop polling, drain the batch queues, unload everything."""
        if self._scheduler is not None:
            self._scheduler.stop()
        self.manager.stop()

    # -- operations ----------------------------------------------------------------------

    def predict(
        self,
        ref: ModelRef | None,
        *,
        signature_name: str,
        inputs: Mapping[str, T],
        decode: Callable[[T], np.ndarray],
        output_filter: Sequence[str] = (),
        timeout_ms: int = 0,
    ) -> PredictResult:
        """Predict as TF Serving does; see :func:`_predict.run_predict` for the checks."""
        if ref is None:
            raise InvalidArgumentError("Missing ModelSpec")
        with self.manager.servable(ref) as servable:
            return run_predict(
                servable, model_name=ref.name, signature_name=signature_name, inputs=inputs,
                decode=decode, output_filter=output_filter, timeout_ms=timeout_ms, runner=self._runner,
            )

    def metadata(self, ref: ModelRef | None, fields: Sequence[str]) -> ModelMetadata:
        """GetModelMetadata: only the ``signature_def`` field exists."""
        if ref is None:
            raise InvalidArgumentError("Missing ModelSpec")
        if not fields:
            raise InvalidArgumentError("GetModelMetadataRequest must specify at least one metadata_field")
        for field in fields:
            if field != SIGNATURE_DEF_FIELD:
                raise InvalidArgumentError(f"Metadata field {field} is not supported")
        with self.manager.servable(ref) as servable:
            return ModelMetadata(ref.name, servable.version, dict(servable.signature_defs))

    def status(self, ref: ModelRef | None) -> list[VersionStatus]:
        """GetModelStatus: one version, or all versions highest first."""
        if ref is None:
            raise InvalidArgumentError("Missing ModelSpec")
        return self.manager.version_statuses(ref.name, ref.version)

    def reload_config(self, models: tuple[ModelConfig, ...]) -> None:
        """HandleReloadConfigRequest: replace the config, wait for new models."""
        self.manager.reload(models)

    # -- loading -------------------------------------------------------------------------

    def _load_version(self, name: str, version: int, path: str) -> Servable:
        servable = load_servable(name, version, path, self._settings)
        if not self.options.enable_model_warmup:
            return servable
        try:
            run_warmup(path, lambda request: self._warmup_request(servable, request),
                       self.options.num_request_iterations_for_warmup)
        except ServingError:
            servable.close()
            raise
        return servable

    def _warmup_request(self, servable: Servable, request: Any) -> None:
        run_predict(
            servable, model_name=request.model_spec.name,
            signature_name=request.model_spec.signature_name, inputs=request.inputs, decode=to_numpy,
            output_filter=list(request.output_filter), timeout_ms=0, runner=self._runner,
        )
