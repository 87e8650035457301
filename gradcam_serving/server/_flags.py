"""``tensorflow_model_server`` command-line flags -> :class:`ServerOptions`.

Flag names and defaults are TF Serving's (``model_servers/main.cc``); both
``--port=8500`` and ``--port 8500`` work, booleans accept ``--flag``,
``--flag=true`` and ``--flag=false``. Syntax errors raise :class:`FlagError`
(exit code 2); semantic errors that the real server only finds in
``BuildAndStart`` raise :class:`ServingError` with TF Serving's text so
``main`` can print ``Failed to start server. Error: ...``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Sequence
from typing import NoReturn

from gradcam_serving import signatures as sig
from gradcam_serving.errors import ConfigError, InvalidArgumentError
from gradcam_serving.server._options import DEFAULT_REST_API_MAX_BODY_BYTES, ServerOptions

__all__ = ["FlagError", "build_parser", "parse_channel_arguments", "parse_flags"]


class FlagError(ConfigError):
    """A flag is unknown or has an invalid value."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise FlagError(message)


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser(prog: str = "tensorflow_model_server") -> argparse.ArgumentParser:
    """The flag parser (exposed for ``--help`` and for the CLI's documentation)."""
    cpus = os.cpu_count() or 1
    parser = _Parser(prog=prog, allow_abbrev=False, description=(
        "Local stand-in for tensorflow_model_server: same flags, gRPC API, errors and version handling."))
    add = parser.add_argument

    def flag(name: str, default: bool, text: str) -> None:
        add(f"--{name}", type=_bool, nargs="?", const=True, default=default, metavar="BOOL", help=text)

    add("--port", type=int, default=8500, help="gRPC port (0 picks a free one)")
    add("--rest_api_port", type=int, default=0, help="REST port (0 = no REST API)")
    add("--rest_api_num_threads", type=int, default=4 * cpus, help="REST worker threads")
    add("--rest_api_timeout_in_ms", type=int, default=30000, help="deadline of each REST request (0 = none)")
    add("--monitoring_config_file", default="",
        help="text-format tensorflow.serving.MonitoringConfig (Prometheus metrics on the REST port)")
    add("--model_name", default="default", help="model name when --model_base_path is used")
    add("--model_base_path", default="", help="folder holding numeric version folders")
    add("--model_config_file", default="", help="text-format tensorflow.serving.ModelServerConfig")
    add("--model_config_file_poll_wait_seconds", type=int, default=0, help="re-read the config file (0 = never)")
    add("--file_system_poll_wait_seconds", type=int, default=1, help="poll period of version folders (0 = once)")
    flag("enable_batching", False, "batch concurrent Predict requests")
    add("--batching_parameters_file", default="", help="text-format tensorflow.serving.BatchingParameters")
    add("--saved_model_tags", default=sig.SERVE_TAG, help="comma-separated MetaGraph tags to load")
    add("--grpc_max_threads", type=int, default=4 * cpus, help="gRPC worker threads")
    flag("enable_model_warmup", True, "replay assets.extra/tf_serving_warmup_requests on load")
    add("--num_request_iterations_for_warmup", type=int, default=1, help="runs per warmup record")
    add("--max_num_load_retries", type=int, default=5, help="retries of a failed version load")
    add("--load_retry_interval_micros", type=int, default=60_000_000, help="pause between load retries")
    flag("allow_version_labels_for_unavailable_models", False, "allow labels on versions not yet AVAILABLE")
    add("--tensorflow_intra_op_parallelism", type=int, default=0, help="Session intra-op threads (0 = auto)")
    add("--tensorflow_inter_op_parallelism", type=int, default=0, help="Session inter-op threads (0 = auto)")
    add("--per_process_gpu_memory_fraction", type=float, default=0.0,
        help="GPU memory share (checked, then ignored: this local server runs on the CPU)")
    add("--tensorflow_session_config_file", default="",
        help="text-format tensorflow.ConfigProto every Session is built from, as TF Serving does; the thread "
             "flags override its thread counts (GPU options are ignored on the CPU). "
             "'graph_options { place_pruned_graph: true }' cuts load and warmup time")
    add("--grace_period_seconds", type=float, default=10.0, help="SIGTERM drain time for in-flight RPCs")
    add("--grpc_channel_arguments", default="",
        help="comma-separated gRPC server arguments key=value, e.g. grpc.max_receive_message_length=4194304 "
             "(integers are passed as ints; default message limit 2147483647 bytes)")
    add("--ssl_config_file", default="",
        help="text-format tensorflow.serving.SSLConfig (server_key, server_cert, custom_ca, client_verify): "
             "serve gRPC over TLS, with client_verify over mutual TLS")
    add("--rest_api_max_body_bytes", type=int, default=DEFAULT_REST_API_MAX_BODY_BYTES,
        help="largest REST request body; larger ones get HTTP 413 (not a TF Serving flag)")
    add("--host", default="0.0.0.0", help="interface to bind (not a TF Serving flag)")
    return parser


def _int32(text: str) -> int | None:
    """``safe_strto32``: an optionally signed decimal within int32, surrounding spaces allowed."""
    if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
        return None
    value = int(text)
    return value if -(2**31) <= value < 2**31 else None


def parse_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """``parseGrpcChannelArgs``: ``k=v,k=v``; a value that parses as int32 is passed as an int.

    Raises:
        FlagError: an entry without exactly one ``=`` or with an empty key (TF would crash on it).
    """
    result: list[tuple[str, int | str]] = []
    for entry in (part for part in text.split(",") if part):
        key, sep, value = entry.partition("=")
        if not sep or "=" in value or not key.strip():
            raise FlagError(f"argument --grpc_channel_arguments: expected key=value, got {entry!r}")
        number = _int32(value)
        result.append((key.strip(), number if number is not None else value))
    return tuple(result)


def _rest_port(port: int, rest_api_port: int) -> int | None:
    """TF starts REST only for a non-zero port different from the gRPC port (``server.cc``).

    Like TF, a clash is logged and REST is skipped rather than refusing to start.
    """
    if rest_api_port == 0:
        return None
    if rest_api_port == port:
        logging.getLogger("gradcam_serving.server").error(
            "server_options.http_port cannot be same as grpc_port. Please use a different port for HTTP/REST API. "
            "Skipped exporting HTTP/REST API.")
        return None
    return rest_api_port


def _read_session_config(args: argparse.Namespace) -> str:
    """Check the GPU flags and read ``--tensorflow_session_config_file``; returns its text ("" if none).

    The file's ConfigProto builds every Session, as in TF Serving. The GPU parts of a production
    command line are validated as TF Serving would, then ignored: the local server has no GPU.
    """
    if not 0.0 <= args.per_process_gpu_memory_fraction <= 1.0:
        raise FlagError(f"argument --per_process_gpu_memory_fraction: must be in [0, 1], "
                        f"got {args.per_process_gpu_memory_fraction}")
    text, config = "", None
    if args.tensorflow_session_config_file:
        from google.protobuf import text_format
        from tensorflow.core.protobuf import config_pb2

        try:
            with open(args.tensorflow_session_config_file, encoding="utf-8") as handle:
                text = handle.read()
            config = text_format.Parse(text, config_pb2.ConfigProto())
        except (OSError, text_format.ParseError) as exc:
            raise InvalidArgumentError(
                f"Error parsing text-format tensorflow.ConfigProto from {args.tensorflow_session_config_file}: {exc}"
            ) from exc
    if args.per_process_gpu_memory_fraction or (config is not None and config.HasField("gpu_options")):
        logging.getLogger("gradcam_serving.server").info(
            "GPU memory settings accepted and ignored: this local server runs on the CPU")
    return text


def parse_flags(argv: Sequence[str] | None) -> ServerOptions:
    """Parse flags and read the files they name.

    Raises:
        FlagError: unknown flag or malformed value (``--help`` raises SystemExit(0)).
        ServingError: INVALID_ARGUMENT with TF Serving's text for config problems.
    """
    from gradcam_serving.server._config import (
        read_batching_parameters, read_model_server_config, read_monitoring_config, single_model_config,
    )
    from gradcam_serving.server._options import BatchingOptions
    from gradcam_serving.server._tls import read_ssl_config

    args = build_parser().parse_args(argv)
    for name in ("port", "rest_api_port", "rest_api_num_threads", "grpc_max_threads", "file_system_poll_wait_seconds", "max_num_load_retries",
                 "model_config_file_poll_wait_seconds", "load_retry_interval_micros", "rest_api_max_body_bytes"):
        if getattr(args, name) < (1 if name in ("grpc_max_threads", "rest_api_num_threads", "rest_api_max_body_bytes") else 0):
            raise FlagError(f"argument --{name}: invalid value {getattr(args, name)}")
    for name in ("port", "rest_api_port"):
        if getattr(args, name) > 65535:
            raise FlagError(f"argument --{name}: invalid value {getattr(args, name)}")
    session_config_text = _read_session_config(args)
    channel_arguments = parse_channel_arguments(args.grpc_channel_arguments)
    ssl_config = read_ssl_config(args.ssl_config_file) if args.ssl_config_file else None
    tags = tuple(t.strip() for t in args.saved_model_tags.split(",") if t.strip())
    if not tags:
        raise FlagError("argument --saved_model_tags: must name at least one tag")

    if not args.model_base_path and not args.model_config_file:
        raise InvalidArgumentError(
            "Both server_options.model_base_path and server_options.model_config_file are empty!")
    if args.model_config_file:
        models = read_model_server_config(args.model_config_file)
    else:
        models = single_model_config(args.model_name, args.model_base_path)
    batching = None
    if args.enable_batching:
        batching = read_batching_parameters(args.batching_parameters_file) if args.batching_parameters_file \
            else BatchingOptions()
    elif args.batching_parameters_file:
        raise InvalidArgumentError(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.")
    return ServerOptions(
        models=models,
        port=args.port,
        host=args.host,
        rest_api_port=_rest_port(args.port, args.rest_api_port),
        rest_api_num_threads=args.rest_api_num_threads,
        rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
        prometheus_path=read_monitoring_config(args.monitoring_config_file) if args.monitoring_config_file else None,
        grpc_max_threads=args.grpc_max_threads,
        file_system_poll_wait_seconds=float(args.file_system_poll_wait_seconds),
        model_config_file=args.model_config_file,
        model_config_file_poll_wait_seconds=float(args.model_config_file_poll_wait_seconds),
        batching=batching,
        saved_model_tags=tags,
        enable_model_warmup=args.enable_model_warmup,
        num_request_iterations_for_warmup=args.num_request_iterations_for_warmup,
        max_num_load_retries=args.max_num_load_retries,
        load_retry_interval_seconds=args.load_retry_interval_micros / 1e6,
        allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
        intra_op_parallelism=args.tensorflow_intra_op_parallelism,
        inter_op_parallelism=args.tensorflow_inter_op_parallelism,
        session_config_text=session_config_text,
        grace_period_seconds=args.grace_period_seconds,
        grpc_channel_arguments=channel_arguments,
        ssl_config=ssl_config,
        rest_api_max_body_bytes=args.rest_api_max_body_bytes,
    )
