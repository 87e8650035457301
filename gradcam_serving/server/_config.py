"""Read TF Serving's text-format config protos into the dataclasses of ``_options``.

``--model_config_file`` holds a ``tensorflow.serving.ModelServerConfig``,
``--batching_parameters_file`` a ``tensorflow.serving.BatchingParameters`` and
``--monitoring_config_file`` a ``tensorflow.serving.MonitoringConfig``; all
use the upstream protos (declared here where tensorflow-serving-api lacks
them), so any file the real ``tensorflow_model_server`` accepts is accepted here with the same meaning.
The checks and texts follow ``server_core.cc``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re

from gradcam_serving.errors import InvalidArgumentError
from gradcam_serving.server._options import BatchingOptions, ModelConfig, VersionPolicy

__all__ = [
    "DEFAULT_PROMETHEUS_PATH",
    "batching_options_from_proto",
    "batching_parameters_class",
    "models_from_proto",
    "monitoring_config_class",
    "read_batching_parameters",
    "read_model_server_config",
    "read_monitoring_config",
    "single_model_config",
]

_log = logging.getLogger("gradcam_serving.server")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _parse_text_file(path: str, message: object) -> None:
    """Parse ``path`` into ``message`` like TF Serving's ``ParseProtoTextFile``."""
    from google.protobuf import text_format

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InvalidArgumentError(f"{path}; {exc.strerror or exc}") from exc
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        full_name = message.DESCRIPTOR.full_name  # type: ignore[attr-defined]
        _log.error("Error parsing text-format %s: %s", full_name, exc)
        raise InvalidArgumentError(f"Invalid protobuf file: '{path}'") from exc


def single_model_config(name: str, base_path: str) -> tuple[ModelConfig, ...]:
    """The config TF Serving builds from ``--model_name`` / ``--model_base_path``."""
    return validate_models((ModelConfig(name=name, base_path=base_path),))


def read_model_server_config(path: str) -> tuple[ModelConfig, ...]:
    """Read ``--model_config_file``.

    Raises:
        InvalidArgumentError: unreadable or unparsable file, or a config TF Serving rejects.
    """
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    _parse_text_file(path, proto)
    if proto.WhichOneof("config") != "model_config_list":
        raise InvalidArgumentError("Invalid ServerModelConfig")
    return models_from_proto(proto.model_config_list)


def models_from_proto(config_list: object) -> tuple[ModelConfig, ...]:
    """Convert a ``ModelConfigList`` proto, validating it as ``server_core.cc`` does."""
    models = []
    for entry in config_list.config:  # type: ignore[attr-defined]
        policy_proto = entry.model_version_policy
        which = policy_proto.WhichOneof("policy_choice")
        if which == "all":
            policy = VersionPolicy(kind="all")
        elif which == "specific":
            policy = VersionPolicy(kind="specific", versions=tuple(policy_proto.specific.versions))
        elif which == "latest":
            policy = VersionPolicy(kind="latest", num_versions=max(1, policy_proto.latest.num_versions))
        else:
            policy = VersionPolicy()
        platform = entry.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise InvalidArgumentError(f"PlatformConfigMap has no entry for platform {platform}")
        models.append(
            ModelConfig(
                name=entry.name,
                base_path=entry.base_path,
                version_policy=policy,
                version_labels=tuple(sorted(entry.version_labels.items())),
                platform=platform,
            )
        )
    return validate_models(tuple(models))


def validate_models(models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
    """Reject duplicate names and relative base paths with TF Serving's texts."""
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise InvalidArgumentError(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
    for model in models:
        if not (os.path.isabs(model.base_path) or _URI.match(model.base_path)):
            raise InvalidArgumentError(
                f"Expected model {model.name} to have an absolute path or URI; "
                f"got base_path()={model.base_path}"
            )
    return models


def read_batching_parameters(path: str) -> BatchingOptions:
    """Read ``--batching_parameters_file`` (text-format ``BatchingParameters``)."""
    proto = batching_parameters_class()()
    _parse_text_file(path, proto)
    return batching_options_from_proto(proto)


@functools.cache
def batching_parameters_class() -> type:
    """The ``tensorflow.serving.BatchingParameters`` message class.

    tensorflow-serving-api does not ship ``session_bundle_config_pb2``, so the
    message is declared here with the field numbers and types of
    ``servables/tensorflow/session_bundle_config.proto``, in a private
    descriptor pool so it cannot clash with a future official module.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    file_proto = descriptor_pb2.FileDescriptorProto(
        name="gradcam_serving/server/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = file_proto.message_type.add(name="BatchingParameters")
    fdp = descriptor_pb2.FieldDescriptorProto
    wrapped = {
        "max_batch_size": (1, "Int64Value"),
        "batch_timeout_micros": (2, "Int64Value"),
        "max_enqueued_batches": (3, "Int64Value"),
        "num_batch_threads": (4, "Int64Value"),
        "thread_pool_name": (5, "StringValue"),
        "enable_large_batch_splitting": (8, "BoolValue"),
        "max_execution_batch_size": (9, "Int64Value"),
    }
    for name, (number, type_name) in wrapped.items():
        message.field.add(
            name=name, number=number, label=fdp.LABEL_OPTIONAL,
            type=fdp.TYPE_MESSAGE, type_name=f".google.protobuf.{type_name}",
        )
    message.field.add(name="allowed_batch_sizes", number=6, label=fdp.LABEL_REPEATED, type=fdp.TYPE_INT64)
    message.field.add(name="pad_variable_length_inputs", number=7, label=fdp.LABEL_OPTIONAL, type=fdp.TYPE_BOOL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(file_proto.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def batching_options_from_proto(proto: object) -> BatchingOptions:
    """Apply the set fields of a ``BatchingParameters`` over the scheduler defaults."""
    defaults = BatchingOptions()
    values: dict[str, object] = {}
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
        if proto.HasField(name):  # type: ignore[attr-defined]
            values[name] = getattr(proto, name).value
    values["pad_variable_length_inputs"] = bool(proto.pad_variable_length_inputs)  # type: ignore[attr-defined]
    sizes = tuple(int(s) for s in proto.allowed_batch_sizes)  # type: ignore[attr-defined]
    values["allowed_batch_sizes"] = sizes
    if proto.HasField("enable_large_batch_splitting") and proto.enable_large_batch_splitting.value:  # type: ignore[attr-defined]
        _log.warning("enable_large_batch_splitting is not supported by the local server; ignored")
    try:
        return dataclasses.replace(defaults, **values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from exc


DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath


def read_monitoring_config(path: str) -> str | None:
    """Read ``--monitoring_config_file``; the Prometheus path to serve, or None when not enabled.

    An empty ``path`` in the file means TF's default ``/monitoring/prometheus/metrics``.
    """
    proto = monitoring_config_class()()
    _parse_text_file(path, proto)
    prometheus = proto.prometheus_config  # type: ignore[attr-defined]
    if not prometheus.enable:
        return None
    return prometheus.path or DEFAULT_PROMETHEUS_PATH


@functools.cache
def monitoring_config_class() -> type:
    """The ``tensorflow.serving.MonitoringConfig`` message class (``config/monitoring_config.proto``).

    tensorflow-serving-api ships no ``monitoring_config_pb2``, so, as for
    ``BatchingParameters``, the two messages are declared with the upstream
    field numbers in a private descriptor pool.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FieldDescriptorProto
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="gradcam_serving/server/monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    prometheus = file_proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, label=fdp.LABEL_OPTIONAL, type=fdp.TYPE_BOOL)
    prometheus.field.add(name="path", number=2, label=fdp.LABEL_OPTIONAL, type=fdp.TYPE_STRING)
    monitoring = file_proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config", number=1, label=fdp.LABEL_OPTIONAL,
        type=fdp.TYPE_MESSAGE, type_name=".tensorflow.serving.PrometheusConfig",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(file_proto.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))
