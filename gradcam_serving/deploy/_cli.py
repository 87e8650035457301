"""``gradcam-serving config``: parse the command line, build the options, write.

Parsing only: every rule lives in :class:`DeploymentOptions` and the builders
(:func:`deployment_options` picks the image tag and gives the warnings), so
the CLI and the Python API refuse the same inputs with the same words.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import click

from gradcam_serving.console import errors_as_exit, quiet_tensorflow, warnings_as_lines
from gradcam_serving.deploy._build import deployment_options
from gradcam_serving.deploy._files import render_files, write_files
from gradcam_serving.deploy._options import DEFAULT_IMAGE_TAG, STARTUP_PROBE_PERIOD, DeployedModel, model_from_export
from gradcam_serving.deploy._tls import TlsOptions
from gradcam_serving.server import BatchingOptions, VersionPolicy

__all__ = ["config_command", "parse_labels", "parse_version_policy", "powers_of_two_up_to"]


def parse_version_policy(text: str) -> VersionPolicy:
    """``latest``, ``latest:N``, ``all`` or ``specific:1,2`` -> :class:`VersionPolicy`.

    Raises:
        ValueError: any other text, naming the accepted forms.
    """
    kind, _, value = text.strip().partition(":")
    try:
        if kind == "latest":
            return VersionPolicy(kind="latest", num_versions=int(value) if value else 1)
        if kind == "all" and not value:
            return VersionPolicy(kind="all")
        if kind == "specific" and value:
            return VersionPolicy(kind="specific", versions=tuple(sorted({int(v) for v in value.split(",")})))
    except ValueError:
        pass
    raise ValueError(f"--versions must be latest, latest:N, all or specific:V1,V2,...; got {text!r}")


def parse_labels(texts: Sequence[str], model_names: Sequence[str]) -> dict[str, dict[str, int]]:
    """``[MODEL:]LABEL=VERSION`` items -> model -> label -> version.

    Without ``MODEL:`` the label applies to the only model.

    Raises:
        ValueError: malformed item, unknown model, or no ``MODEL:`` with several models.
    """
    labels: dict[str, dict[str, int]] = {name: {} for name in model_names}
    for text in texts:
        match = re.fullmatch(r"(?:([^:=]+):)?([^:=]+)=([0-9]+)", text.strip())
        if not match:
            raise ValueError(f"--label must look like [MODEL:]LABEL=VERSION, e.g. stable=1; got {text!r}")
        model, label, version = match.groups()
        if model is None and len(model_names) != 1:
            raise ValueError(f"--label {text!r}: name the model (MODEL:LABEL=VERSION) when there are several")
        model = model or model_names[0]
        if model not in labels:
            raise ValueError(f"--label {text!r}: no model {model!r}; models are {', '.join(model_names)}")
        labels[model][label] = int(version)
    return labels


def powers_of_two_up_to(limit: int) -> tuple[int, ...]:
    """1, 2, 4, ... below ``limit``, then ``limit``: few padded shapes, at most 2x padding."""
    sizes = [1 << i for i in range(limit.bit_length()) if 1 << i < limit]
    return (*sizes, limit)


def _model_sources(sources: Sequence[str], name: str | None) -> list[tuple[str, Path]]:
    """``BASE/NAME`` or ``NAME=PATH`` arguments -> (name, local path)."""
    pairs = []
    for source in sources:
        if "=" in source and not os.path.exists(source):
            model, _, path = source.partition("=")
            pairs.append((model, Path(path)))
        else:
            pairs.append((Path(source).resolve().name, Path(source)))
    if name is not None:
        if len(sources) != 1 or ("=" in sources[0] and not os.path.exists(sources[0])):
            raise ValueError("--name goes with exactly one MODEL_DIR (use NAME=PATH for several models)")
        pairs = [(name, pairs[0][1])]
    return pairs


def _common_parent(paths: Sequence[Path]) -> str:
    parents = {str(path.resolve().parent) for path in paths}
    return parents.pop() if len(parents) == 1 else "./models"


def _batching(max_batch_size: int, timeout: int, threads: int, queued: int, allowed: str | None) -> BatchingOptions:
    try:
        sizes = tuple(int(s) for s in allowed.split(",")) if allowed else powers_of_two_up_to(max_batch_size)
    except ValueError:
        raise ValueError(f"--allowed-batch-sizes must be comma-separated integers, got {allowed!r}") from None
    return BatchingOptions(
        max_batch_size=max_batch_size,
        batch_timeout_micros=timeout,
        num_batch_threads=threads,
        max_enqueued_batches=queued,
        allowed_batch_sizes=sizes,
    )


def _models(sources: list[tuple[str, Path]], container_base: str, versions: str, labels: Sequence[str]) -> tuple[DeployedModel, ...]:
    policy = parse_version_policy(versions)
    per_model = parse_labels(labels, [name for name, _ in sources])
    return tuple(
        model_from_export(path, name=name, container_base=container_base, version_policy=policy, labels=per_model[name])
        for name, path in sources
    )


def _tls(key: str | None, cert: str | None, ca: str | None, verify: bool, secret: str | None) -> TlsOptions | None:
    """``--ssl-*`` options -> :class:`TlsOptions`; none of them means plaintext gRPC."""
    if not (key or cert or ca or verify or secret):
        return None
    if not (key and cert):
        raise ValueError("TLS needs both --ssl-server-key and --ssl-server-cert")
    return TlsOptions.from_files(key, cert, ca, client_verify=verify, secret_name=secret)


@click.command("config")
@click.argument("model_dirs", nargs=-1, required=True, metavar="MODEL_DIR|NAME=PATH...")
@click.option("--output", "-o", type=click.Path(file_okay=False), help="Folder to write the files into.")
@click.option("--print", "print_files", is_flag=True, help="Print the files on stdout (as well as writing with --output).")
@click.option("--name", help="Model name for a single MODEL_DIR (default: its folder name).")
@click.option("--container-base", default="/models", show_default=True, help="Where model folders are mounted in the container.")
@click.option("--versions", default="latest:1", show_default=True, help="latest:N, all or specific:V1,V2 (every model).")
@click.option("--label", "labels", multiple=True, metavar="[MODEL:]LABEL=VERSION", help="Version label; repeatable.")
@click.option("--max-batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--batch-timeout-micros", type=click.IntRange(min=0), default=2000, show_default=True)
@click.option("--num-batch-threads", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--max-enqueued-batches", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--allowed-batch-sizes", metavar="N1,N2,...", help="Increasing, ending at --max-batch-size (default powers of two).")
@click.option("--no-batching", is_flag=True, help="Serve without batching.")
@click.option("--grpc-max-threads", type=click.IntRange(min=1), help="--grpc_max_threads (default with batching: (num-batch-threads + 1) x max-batch-size; without: TF Serving's 4 x CPUs).")
@click.option("--gpus", type=click.IntRange(min=0), default=1, show_default=True, help="GPUs per replica; 0 = CPU image.")
@click.option("--cpu", "cpu_request", default="2", show_default=True, metavar="QUANTITY", help="Kubernetes CPU request of the server container (e.g. 2, 500m).")
@click.option("--memory", "memory_request", default="4Gi", show_default=True, metavar="QUANTITY", help="Kubernetes memory request of the server container (e.g. 4Gi).")
@click.option("--startup-seconds", type=click.IntRange(min=1), default=600, show_default=True, help=f"How long Kubernetes waits for the gRPC port before restarting the pod: TF Serving opens it after every model has loaded and replayed its warmup, so give at least twice your slowest measured load (the startup probe tries every {STARTUP_PROBE_PERIOD} s).")
@click.option("--gpu-memory-fraction", type=float, help="--per_process_gpu_memory_fraction for the server.")
@click.option("--allow-growth", is_flag=True, help="Grow GPU memory on demand (writes session_config.pbtxt).")
@click.option("--place-pruned-graph", is_flag=True, help="Place and optimise only the subgraph each signature runs (writes session_config.pbtxt): about half the load and warmup time (docs/deploying.md: Load time).")
@click.option("--image-tag", help=f"tensorflow/serving tag without -gpu (default: X.Y.0 of the TensorFlow that wrote the exports, else {DEFAULT_IMAGE_TAG}).")
@click.option("--grpc-port", type=int, default=8500, show_default=True)
@click.option("--rest-port", type=int, default=8501, show_default=True)
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--namespace", default="default", show_default=True)
@click.option("--app-name", default="gradcam-serving", show_default=True, help="Kubernetes Deployment/Service name.")
@click.option("--models-pvc", default="gradcam-models", show_default=True, help="PVC holding NAME/VERSION folders.")
@click.option("--host-models-dir", help="Host folder docker-run.sh mounts (default: the models' common parent).")
@click.option("--storage-uri-prefix", help="KServe storageUri prefix (default pvc://<models-pvc>).")
@click.option("--kserve/--no-kserve", default=True, show_default=True, help="Write kserve.yaml.")
@click.option("--ssl-server-key", type=click.Path(exists=True, dir_okay=False), help="Serve gRPC over TLS: the server's PEM key.")
@click.option("--ssl-server-cert", type=click.Path(exists=True, dir_okay=False), help="The server's PEM certificate (with --ssl-server-key).")
@click.option("--ssl-custom-ca", type=click.Path(exists=True, dir_okay=False), help="PEM CA that signs client certificates.")
@click.option("--ssl-client-verify", is_flag=True, help="mTLS: require a client certificate signed by --ssl-custom-ca.")
@click.option("--tls-secret", help="Kubernetes Secret holding ssl.config (default <app-name>-tls).")
def config_command(
    model_dirs: tuple[str, ...],
    output: str | None,
    print_files: bool,
    name: str | None,
    container_base: str,
    versions: str,
    labels: tuple[str, ...],
    max_batch_size: int,
    batch_timeout_micros: int,
    num_batch_threads: int,
    max_enqueued_batches: int,
    allowed_batch_sizes: str | None,
    no_batching: bool,
    grpc_max_threads: int | None,
    gpus: int,
    cpu_request: str,
    memory_request: str,
    startup_seconds: int,
    gpu_memory_fraction: float | None,
    allow_growth: bool,
    place_pruned_graph: bool,
    image_tag: str | None,
    grpc_port: int,
    rest_port: int,
    replicas: int,
    namespace: str,
    app_name: str,
    models_pvc: str,
    host_models_dir: str | None,
    storage_uri_prefix: str | None,
    kserve: bool,
    ssl_server_key: str | None,
    ssl_server_cert: str | None,
    ssl_custom_ca: str | None,
    ssl_client_verify: bool,
    tls_secret: str | None,
) -> None:
    """Write TF Serving config files and Docker/Kubernetes/KServe manifests for exported models.

    Each MODEL_DIR is a local export folder BASE/NAME holding numeric version
    folders; NAME=PATH names it explicitly.
    """
    with errors_as_exit(), warnings_as_lines(), quiet_tensorflow():
        if output is None and not print_files:
            raise ValueError("give --output DIR, --print, or both")
        sources = _model_sources(model_dirs, name)
        options = deployment_options(
            _models(sources, container_base, versions, labels),
            batching=None if no_batching else _batching(
                max_batch_size, batch_timeout_micros, num_batch_threads, max_enqueued_batches, allowed_batch_sizes
            ),
            grpc_max_threads=grpc_max_threads,
            grpc_port=grpc_port,
            rest_port=rest_port,
            image_tag=image_tag,
            gpus=gpus,
            cpu_request=cpu_request,
            memory_request=memory_request,
            startup_seconds=startup_seconds,
            gpu_memory_fraction=gpu_memory_fraction,
            allow_growth=allow_growth,
            place_pruned_graph=place_pruned_graph,
            namespace=namespace,
            app_name=app_name,
            replicas=replicas,
            models_pvc=models_pvc,
            host_models_dir=host_models_dir or _common_parent([path for _, path in sources]),
            storage_uri_prefix=storage_uri_prefix,
            kserve=kserve,
            tls=_tls(ssl_server_key, ssl_server_cert, ssl_custom_ca, ssl_client_verify, tls_secret),
        )
        files = render_files(options)
        written = write_files(files, output) if output is not None else []
    if print_files:
        for file_name, text in files.items():
            click.echo(f"# ==> {file_name} <==\n{text}")
    for path in written:
        click.echo(str(path), err=print_files)
