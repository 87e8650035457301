"""Render every deployment file in memory, then write them.

All validation happens while rendering (in the option constructors and the
proto builders), so a bad input raises before the output folder is touched;
each file is then written to a temporary name and renamed into place, so a
reader (or a polling server) never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from gradcam_serving.deploy._manifests import (
    BATCHING_FILE,
    MODELS_CONFIG_FILE,
    MONITORING_FILE,
    SESSION_CONFIG_FILE,
    docker_run_script,
    grpc_target,
    kserve_yaml,
    kubernetes_yaml,
    tls_secret_command,
)
from gradcam_serving.deploy._options import STARTUP_PROBE_PERIOD, DeploymentOptions
from gradcam_serving.deploy._protos import (
    batching_parameters_text,
    model_server_config_text,
    monitoring_config_text,
    session_config_text,
    ssl_config_text,
)
from gradcam_serving.deploy._tls import SSL_CONFIG_FILE
from gradcam_serving.server import BatchingOptions

__all__ = ["config_files", "render_files", "write_deployment", "write_files"]

DOCKER_SCRIPT = "docker-run.sh"
KUBERNETES_FILE = "kubernetes.yaml"
KSERVE_FILE = "kserve.yaml"
README_FILE = "README.md"


def config_files(options: DeploymentOptions) -> dict[str, str]:
    """The files the server reads (also the ConfigMap's data): name -> contents."""
    files = {MODELS_CONFIG_FILE: model_server_config_text(options.model_configs)}
    if options.batching is not None:
        files[BATCHING_FILE] = batching_parameters_text(options.batching)
    files[MONITORING_FILE] = monitoring_config_text(options.monitoring_path)
    if options.needs_session_config:
        files[SESSION_CONFIG_FILE] = session_config_text(
            allow_growth=options.allow_growth, place_pruned_graph=options.place_pruned_graph
        )
    return files


def render_files(options: DeploymentOptions) -> dict[str, str]:
    """Every output file, name -> contents, without touching the disk.

    Raises:
        ConfigError, ValueError: the options describe a deployment TF Serving
            would refuse (see :class:`DeploymentOptions`).
    """
    files = config_files(options)
    manifests = {
        DOCKER_SCRIPT: docker_run_script(options),
        KUBERNETES_FILE: kubernetes_yaml(options, files),
    }
    if options.kserve:
        manifests[KSERVE_FILE] = kserve_yaml(options)
    if options.tls is not None:  # not a config file: the ConfigMap must not carry its private key
        manifests[SSL_CONFIG_FILE] = ssl_config_text(options.tls)
    return {**files, **manifests, README_FILE: readme_text(options, [*files, *manifests])}


def write_files(files: dict[str, str], output: str | os.PathLike[str]) -> list[Path]:
    """Write ``files`` into ``output`` (created if needed), each atomically.

    ``docker-run.sh`` is made executable and ``ssl.config`` (it holds the
    server's private key) readable by its owner only. Other files in
    ``output`` are left alone.
    """
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        target = folder / name
        temporary = folder / f".{name}.tmp"
        temporary.touch(mode=0o600)
        temporary.chmod(0o600)  # no window in which the key is world-readable
        temporary.write_text(text, encoding="utf-8")
        if name.endswith(".sh"):
            temporary.chmod(0o755)
        elif name != SSL_CONFIG_FILE:
            temporary.chmod(0o644)
        os.replace(temporary, target)
        written.append(target)
    return written


def write_deployment(options: DeploymentOptions, output: str | os.PathLike[str]) -> list[Path]:
    """Render and write every file for ``options`` into ``output``; return the paths.

    Example::

        options = deployment_options([model_from_export("exports/shapes")])
        write_deployment(options, "serving_config")
    """
    return write_files(render_files(options), output)


def readme_text(options: DeploymentOptions, names: list[str]) -> str:
    """A short guide to the generated files, for whoever deploys them."""
    sections = [_readme_files(options, names), _readme_docker(options), _readme_kubernetes(options)]
    if options.kserve:
        sections.append(_readme_kserve())
    if options.batching is not None:
        sections.append(_readme_batching(options.batching))
    if options.tls is not None:
        sections.append(_readme_tls(options))
    sections.append(_readme_local_check(options))
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def _session_options(options: DeploymentOptions) -> str:
    chosen = [("GPU `allow_growth`", options.allow_growth), ("`place_pruned_graph`", options.place_pruned_graph)]
    return " and ".join(name for name, on in chosen if on)


def _readme_files(options: DeploymentOptions, names: list[str]) -> list[str]:
    models = ", ".join(f"`{model.name}` ({model.config.base_path})" for model in options.models)
    purposes = {
        MODELS_CONFIG_FILE: "models, base paths inside the container, version policy, labels (`--model_config_file`)",
        BATCHING_FILE: "batching parameters (`--batching_parameters_file`)",
        MONITORING_FILE: f"Prometheus metrics at `{options.monitoring_path}` on the REST port (`--monitoring_config_file`)",
        SESSION_CONFIG_FILE: f"session config with {_session_options(options)} (`--tensorflow_session_config_file`)",
        DOCKER_SCRIPT: f"`docker run` of `{options.image}` with these files",
        KUBERNETES_FILE: "ConfigMap (the config files), Deployment and headless Service",
        KSERVE_FILE: "one KServe InferenceService per model (gRPC on port 9000)",
        SSL_CONFIG_FILE: "gRPC TLS: server key and certificate, client CA (`--ssl_config_file`); secret, mode 0600",
    }
    return [
        "# TF Serving deployment",
        "",
        f"Models: {models}. Generated by `gradcam-serving config`; regenerate rather than edit",
        "(the ConfigMap in `kubernetes.yaml` embeds the config files).",
        "",
        "| file | what |",
        "| --- | --- |",
        *(f"| `{name}` | {purposes[name]} |" for name in names),
    ]


def _readme_docker(options: DeploymentOptions) -> list[str]:
    return [
        "## Docker on one GPU machine" if options.gpus else "## Docker",
        "",
        f"    MODELS_DIR=/path/to/models ./{DOCKER_SCRIPT}",
        "",
        f"`MODELS_DIR` holds `NAME/VERSION` folders (default `{options.host_models_dir}`).",
        f"gRPC listens on port {options.grpc_port}, REST on {options.rest_port}.",
        f"`models.config` is re-read every {options.config_poll_seconds} s, so labels and version policies",
        "change without a restart.",
    ]


def _readme_kubernetes(options: DeploymentOptions) -> list[str]:
    return [
        "## Kubernetes",
        "",
        f"    kubectl apply -f {KUBERNETES_FILE}",
        "",
        f"The PVC `{options.models_pvc}` must hold the `NAME/VERSION` folders.",
        "The Service is headless, so gRPC clients should dial",
        f"`{grpc_target(options)}` with the `round_robin` policy",
        "(the default of `ExplainClient`) to spread calls over all pods.",
        "",
        f"Each pod requests {options.cpu_request} CPU and {options.memory_request} of memory (`--cpu`, `--memory`).",
        "The gRPC port opens once every model has loaded and replayed its warmup; the startup probe waits",
        f"{options.startup_failure_threshold * STARTUP_PROBE_PERIOD} s for it (`--startup-seconds`) before the pod is restarted:",
        "give at least twice the slowest load you measured.",
    ]


def _readme_kserve() -> list[str]:
    return [
        "## KServe",
        "",
        f"    kubectl apply -f {KSERVE_FILE}",
        "",
        "KServe starts one server per model from `storageUri`; it ignores `models.config`,",
        "batching and monitoring.",
    ]


def _readme_batching(batching: BatchingOptions) -> list[str]:
    sizes = ", ".join(str(size) for size in batching.allowed_batch_sizes) or "any size"
    return [
        "## Batching",
        "",
        f"Batches of up to {batching.max_batch_size} images, padded to {sizes}.",
        f"A batch waits at most {batching.batch_timeout_micros} µs for more requests; {batching.num_batch_threads} threads run batches;",
        f"beyond {batching.max_enqueued_batches} queued batches, requests fail fast with UNAVAILABLE.",
        "Why the defaults suit one GPU: see `GPU_BATCHING` in `gradcam_serving/deploy/_options.py`.",
        "Batching also wraps `explain`.",
        "Clients should send images of one size: requests of different sizes are not padded",
        "(`pad_variable_length_inputs` is off, since zero padding would change what the in-graph resize sees).",
    ]


def _readme_tls(options: DeploymentOptions) -> list[str]:
    tls = options.tls
    assert tls is not None
    mode = "mTLS: clients must present a certificate signed by `custom_ca`" if tls.client_verify else "TLS"
    client_cert = ", private_key=KEY, certificate_chain=CERT" if tls.client_verify else ""
    return [
        "## TLS",
        "",
        f"gRPC on port {options.grpc_port} serves {mode} (`--ssl_config_file={tls.config_path}`); REST stays HTTP.",
        f"`{SSL_CONFIG_FILE}` holds the server's private key: keep it out of version control.",
        f"`docker-run.sh` mounts it at `{tls.config_path}`; on Kubernetes it comes from the Secret",
        f"`{options.tls_secret}` (not the ConfigMap), created with",
        "",
        f"    {tls_secret_command(options)}",
        "",
        "KServe ignores it (its TF Serving runtime sets the flags; TLS belongs to the mesh there).",
        "Clients: `ExplainClient(target, model, credentials=grpc.ssl_channel_credentials(root_certificates=CA"
        + client_cert + "))`.",
    ]


def _readme_local_check(options: DeploymentOptions) -> list[str]:
    batching = f" --enable_batching --batching_parameters_file={BATCHING_FILE}" if options.batching else ""
    monitoring = f" --rest_api_port={options.rest_port} --monitoring_config_file={MONITORING_FILE}"
    return [
        "## Check with the local stand-in server",
        "",
        "With the models at their container paths (or a copy of `models.config` with local paths):",
        "",
        f"    python -m gradcam_serving.server --port=8500 --model_config_file={MODELS_CONFIG_FILE} \\",
        f"        {batching.strip()}{monitoring}".rstrip(),
    ]
