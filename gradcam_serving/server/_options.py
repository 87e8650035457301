"""Explicit server configuration as frozen dataclasses.

The flag parser (``_flags.py``), the config-file reader (``_config.py``) and
``HandleReloadConfigRequest`` all produce these values; the core consumes only
them, never an ``argparse.Namespace`` or a proto, so a REST front end or a test
can build a server from plain Python.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from gradcam_serving import signatures as sig
from gradcam_serving.server._tls import SslConfig

__all__ = [
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "DEFAULT_REST_API_MAX_BODY_BYTES",
    "BatchingOptions",
    "ModelConfig",
    "ServerOptions",
    "VersionPolicy",
]

# server.cc ``builder.SetMaxMessageSize(tensorflow::kint32max)``: larger gRPC messages get RESOURCE_EXHAUSTED.
DEFAULT_MAX_MESSAGE_LENGTH = 2**31 - 1
# Not a TF Serving flag: JSON costs ~10x its size once parsed, so REST bodies are capped well below gRPC's.
DEFAULT_REST_API_MAX_BODY_BYTES = 64 * 1024 * 1024
ChannelArgument = tuple[str, int | str]
PolicyKind = Literal["latest", "all", "specific"]


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which numeric version folders are served (TF Serving's ``model_version_policy``).

    Attributes:
        kind: ``"latest"`` (the ``num_versions`` highest), ``"all"`` or ``"specific"``.
        num_versions: for ``latest``; TF Serving's default is 1.
        versions: for ``specific``.
    """

    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("latest", "all", "specific"):
            raise ValueError(f"kind must be 'latest', 'all' or 'specific', got {self.kind!r}")
        if self.kind == "latest" and self.num_versions < 1:
            raise ValueError(f"num_versions must be >= 1, got {self.num_versions}")

    def select(self, on_disk: set[int]) -> set[int]:
        """The aspired versions among those found on disk."""
        if self.kind == "all":
            return set(on_disk)
        if self.kind == "specific":
            return on_disk & set(self.versions)
        return set(sorted(on_disk)[-self.num_versions :]) if on_disk else set()


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One entry of ``model_config_list``.

    Attributes:
        name: the model name clients put in ``ModelSpec.name``.
        base_path: absolute folder holding numeric version folders.
        version_policy: which versions to serve.
        version_labels: label -> version, e.g. ``{"stable": 1}``.
        platform: only ``"tensorflow"`` exists in the stock server.
    """

    name: str
    base_path: str
    version_policy: VersionPolicy = VersionPolicy()
    version_labels: tuple[tuple[str, int], ...] = ()
    platform: str = "tensorflow"

    @property
    def labels(self) -> dict[str, int]:
        return dict(self.version_labels)


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's ``BatchingParameters`` with the defaults of its shared batch scheduler.

    Attributes:
        max_batch_size: largest batch, in 0th-dimension rows.
        batch_timeout_micros: how long an open batch waits for more rows.
        max_enqueued_batches: per queue; beyond it requests get UNAVAILABLE.
        num_batch_threads: threads that run batches, shared by all queues.
        allowed_batch_sizes: increasing; a batch is padded up to the next one.
        pad_variable_length_inputs: accepted for compatibility; requests whose
            non-batch dimensions differ are put in separate queues instead.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}")
        sizes = self.allowed_batch_sizes
        if sizes:
            if any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] < 1:
                raise ValueError(f"allowed_batch_sizes must be positive and increasing, got {list(sizes)}")
            if sizes[-1] != self.max_batch_size:
                raise ValueError(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                    f"{sizes[-1]}; expected {self.max_batch_size}"
                )


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Everything the server needs; built by :func:`gradcam_serving.server.parse_flags`.

    Attributes:
        models: the initial ``model_config_list``.
        port: gRPC port; 0 picks a free one (see ``ModelServer.port``).
        host: interface to bind.
        rest_api_port: REST port; ``None`` = no REST server (the flag's 0), 0 picks a free
            port (see ``ModelServer.rest_port``).
        rest_api_num_threads: REST worker threads (TF default: 4 x CPUs).
        rest_api_timeout_in_ms: the deadline of each REST request; 0 = none.
        prometheus_path: where the REST port serves Prometheus metrics; ``None`` = not served
            (``--monitoring_config_file`` with ``prometheus_config { enable: true }`` sets it).
        grpc_max_threads: gRPC worker threads (TF default: 4 x CPUs).
        file_system_poll_wait_seconds: version-folder poll period; 0 polls only once.
        model_config_file: re-read every ``model_config_file_poll_wait_seconds`` when > 0.
        batching: ``None`` disables batching.
        saved_model_tags: the MetaGraph tag set to load.
        enable_model_warmup: replay ``assets.extra/tf_serving_warmup_requests``.
        num_request_iterations_for_warmup: times each warmup record runs.
        max_num_load_retries / load_retry_interval_seconds: retry failed loads like TF.
        allow_version_labels_for_unavailable_models: skip the label availability check.
        intra_op_parallelism / inter_op_parallelism: session thread pools (0 = TF's choice).
        session_config_text: the text ConfigProto of ``--tensorflow_session_config_file`` ("" = TF's default).
        grace_period_seconds: how long ``stop`` lets in-flight RPCs finish.
        grpc_channel_arguments: ``--grpc_channel_arguments`` as ``(key, int or str)`` pairs, applied
            after TF Serving's defaults (2**31-1 bytes each way), so they can override them.
        ssl_config: ``--ssl_config_file``; None serves plain-text gRPC.
        rest_api_max_body_bytes: larger REST bodies get HTTP 413 without being read.
    """

    models: tuple[ModelConfig, ...]
    port: int = 8500
    host: str = "[::]"
    rest_api_port: int | None = None
    rest_api_num_threads: int = dataclasses.field(default_factory=lambda: 4 * (os.cpu_count() or 1))
    rest_api_timeout_in_ms: int = 30000
    prometheus_path: str | None = None
    grpc_max_threads: int = dataclasses.field(default_factory=lambda: 4 * (os.cpu_count() or 1))
    file_system_poll_wait_seconds: float = 1.0
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0.0
    batching: BatchingOptions | None = None
    saved_model_tags: tuple[str, ...] = (sig.SERVE_TAG,)
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0
    allow_version_labels_for_unavailable_models: bool = False
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    session_config_text: str = ""
    grace_period_seconds: float = 10.0
    grpc_channel_arguments: tuple[ChannelArgument, ...] = ()
    ssl_config: SslConfig | None = None
    rest_api_max_body_bytes: int = DEFAULT_REST_API_MAX_BODY_BYTES

    def grpc_server_options(self) -> list[ChannelArgument]:
        """TF Serving's message-size defaults, then the user's channel arguments (a later key wins)."""
        merged: dict[str, int | str] = {
            "grpc.max_receive_message_length": DEFAULT_MAX_MESSAGE_LENGTH,
            "grpc.max_send_message_length": DEFAULT_MAX_MESSAGE_LENGTH,
        }
        merged.update(dict(self.grpc_channel_arguments))
        return list(merged.items())

    @property
    def max_receive_message_length(self) -> int | None:
        """The largest request gRPC accepts, in bytes; None when unlimited (a negative value)."""
        value = dict(self.grpc_server_options())["grpc.max_receive_message_length"]
        return value if isinstance(value, int) and value >= 0 else None

    def __post_init__(self) -> None:
        if self.rest_api_max_body_bytes < 1:
            raise ValueError(f"rest_api_max_body_bytes must be >= 1, got {self.rest_api_max_body_bytes}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if self.rest_api_port is not None and not 0 <= self.rest_api_port <= 65535:
            raise ValueError(f"rest_api_port must be None or in [0, 65535], got {self.rest_api_port}")
        if self.rest_api_num_threads < 1:
            raise ValueError(f"rest_api_num_threads must be >= 1, got {self.rest_api_num_threads}")
        if self.prometheus_path is not None and not self.prometheus_path.startswith("/"):
            raise ValueError(f"prometheus_path must start with '/', got {self.prometheus_path!r}")
        if self.grpc_max_threads < 1:
            raise ValueError(f"grpc_max_threads must be >= 1, got {self.grpc_max_threads}")
        if self.file_system_poll_wait_seconds < 0:
            raise ValueError("file_system_poll_wait_seconds must be >= 0")
        if not self.saved_model_tags:
            raise ValueError("saved_model_tags must name at least one tag")
