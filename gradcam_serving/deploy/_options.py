"""What to deploy and how, as frozen dataclasses validated in their constructors.

The model entries reuse the local server's :class:`ModelConfig`,
:class:`VersionPolicy` and :class:`BatchingOptions`, which mirror TF Serving's
``ModelConfig`` and ``BatchingParameters`` field for field, so the generator,
the stand-in server and the real ``tensorflow_model_server`` share one meaning.
Every check runs before a file is written.

:class:`DeploymentOptions` only checks its fields: it reads no export and warns
about nothing, so copies (``dataclasses.replace``) are cheap and silent. What
needs the exports on disk (the image tag) and the warnings about choices that
work but cost are done once, where the options are built
(:func:`~gradcam_serving.deploy.deployment_options`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path

from gradcam_serving.deploy._tls import TlsOptions
from gradcam_serving.errors import ConfigError
from gradcam_serving.server import BatchingOptions, ModelConfig, VersionPolicy

__all__ = [
    "DEFAULT_IMAGE_TAG",
    "GPU_BATCHING",
    "DeployedModel",
    "DeploymentOptions",
    "batching_grpc_threads",
    "local_versions",
    "model_from_export",
]

DEFAULT_IMAGE_TAG = "2.21.0"
"""The tag for models without a local export to read: the TensorFlow this package exports with.

With local exports the tag follows the TensorFlow that wrote them (``deploy._image``).
"""

STARTUP_PROBE_PERIOD = 10
"""Seconds between two tries of the startup probe; ``startup_seconds`` is rounded up to a multiple."""

GPU_BATCHING = BatchingOptions(
    max_batch_size=32,
    batch_timeout_micros=2000,
    max_enqueued_batches=100,
    num_batch_threads=4,
    allowed_batch_sizes=(1, 2, 4, 8, 16, 32),
)
"""Batching defaults for one GPU serving small CNNs with Grad-CAM.

Why these numbers:

* ``max_batch_size`` 32: a small CNN is near full GPU use well before 32
  images, and 32 float32 224x224 heatmaps are already about 6.4 MB per
  ``explain`` response (batching wraps every signature, explain included).
* ``batch_timeout_micros`` 2000: a lone request waits at most 2 ms for company,
  small next to the model's own GPU time.
* ``allowed_batch_sizes`` powers of two up to 32: batches are padded to one of
  six shapes, so cuDNN/XLA tune six shapes instead of 32 and padding wastes at
  most half a batch.
* ``num_batch_threads`` 4: one GPU runs one batch at a time; a few threads
  overlap host-side work (decode, resize, copies) with the GPU without
  queueing more work on it.
* ``max_enqueued_batches`` 100: beyond about 3,200 waiting images the server
  answers UNAVAILABLE at once (load shedding) instead of growing latency.
"""


def batching_grpc_threads(batching: BatchingOptions) -> int:
    """gRPC threads that let every batch thread hold a full batch while the next one fills.

    A request holds its gRPC thread until its batch has run, so the server
    needs ``(num_batch_threads + 1) * max_batch_size`` of them to keep all
    batch threads busy; TF Serving's default (4 x CPUs) is below that on most
    GPU nodes. Measured here (``benchmarks/serving_throughput.py``): 8 threads
    against ``max_batch_size`` 16 gave batches of about 4 rows.
    """
    return (batching.num_batch_threads + 1) * batching.max_batch_size


_NUMERIC = re.compile(r"^[0-9]+$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# Kubernetes' resource.Quantity without a sign: a decimal number, then a binary (Ki..Ei) or
# decimal (m, k..E) suffix or an exponent.
_QUANTITY = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[mkMGTPE]|[eE][+-]?\d+)?$")


@dataclasses.dataclass(frozen=True)
class DeployedModel:
    """One model: its ``models.config`` entry plus, optionally, its local export.

    Checked in the constructor without touching the disk: :func:`model_from_export`
    reads the version folders and passes them in.

    Attributes:
        config: the entry as the server sees it; ``base_path`` is the path
            inside the container (e.g. ``/models/shapes``) or a URI.
        local_path: this machine's copy of ``BASE/NAME``, if there is one.
        local_versions: the numeric version folders under ``local_path``
            (required with it); the version policy and labels are checked
            against them.
    """

    config: ModelConfig
    local_path: Path | None = None
    local_versions: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.config.name:
            raise ValueError("model name must not be empty")
        if (self.local_path is None) != (self.local_versions is None):
            raise ValueError(
                f"model {self.config.name!r}: give local_path and local_versions together "
                "(model_from_export reads the versions from the folder)"
            )
        _check_base_path(self.config)
        _check_labels(self.config, self.local_versions, self.local_path)

    @property
    def name(self) -> str:
        return self.config.name

    def served_folders(self) -> list[Path]:
        """The local version folders the version policy serves, oldest first; empty without a local export."""
        if self.local_path is None or self.local_versions is None:
            return []
        served = self.config.version_policy.select(set(self.local_versions))
        return [self.local_path / str(version) for version in sorted(served)]


def _check_base_path(config: ModelConfig) -> None:
    base = config.base_path
    if not (base.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", base)):
        raise ValueError(
            f"base_path of model {config.name!r} must be absolute inside the container or a URI, got {base!r}"
        )


def local_versions(path: Path) -> list[int]:
    """Numeric version folders under a local ``BASE/NAME``, sorted.

    Raises:
        ConfigError: the folder is missing or holds no numeric version folder
            (TF Serving would refuse it with the same advice).
    """
    if not path.is_dir():
        raise ConfigError(f"model folder {path} does not exist or is not a folder")
    versions = sorted(int(child.name) for child in path.iterdir() if child.is_dir() and _NUMERIC.match(child.name))
    if not versions:
        raise ConfigError(
            f"No versions of servable found under base path {path}. "
            "Did you forget to name your leaf directory as a number (eg. '/1/')? "
            "Give the model folder BASE/NAME, not BASE or a version folder."
        )
    return versions


def _check_labels(config: ModelConfig, versions: tuple[int, ...] | None, local_path: Path | None) -> None:
    """A label must name a version that will be served, or TF Serving refuses to start."""
    policy = config.version_policy
    on_disk = set(versions) if versions is not None else None
    served = policy.select(on_disk) if on_disk is not None else None
    for label, version in config.version_labels:
        if on_disk is not None and version not in on_disk:
            raise ConfigError(
                f"label {label!r} of model {config.name!r} points to version {version}, "
                f"but {local_path} has versions {_listed(on_disk)}"
            )
        if policy.kind == "specific" and version not in policy.versions:
            raise ConfigError(
                f"label {label!r} of model {config.name!r} points to version {version}, "
                f"which the version policy specific:{_listed(policy.versions)} does not serve"
            )
        if served is not None and version not in served:
            raise ConfigError(
                f"label {label!r} of model {config.name!r} points to version {version}, "
                f"which the version policy {policy.kind}:{policy.num_versions} does not serve "
                f"(it serves {_listed(served)})"
            )


def _listed(versions: object) -> str:
    return ",".join(str(v) for v in sorted(versions))  # type: ignore[call-overload]


def model_from_export(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    container_base: str = "/models",
    version_policy: VersionPolicy = VersionPolicy(),
    labels: Mapping[str, int] | None = None,
) -> DeployedModel:
    """Describe a local export ``BASE/NAME`` as it will be mounted in the container.

    Args:
        path: the local model folder holding numeric version folders.
        name: model name clients use; default the folder's name.
        container_base: where model folders are mounted in the container;
            the base path becomes ``container_base/name``.
        version_policy: which versions the server loads.
        labels: e.g. ``{"stable": 1, "canary": 2}``; each must be served.

    Returns:
        The checked model entry.

    Raises:
        ConfigError: no version folders, or a label points to a missing or
            unserved version.

    Example::

        model = model_from_export("exports/shapes", labels={"stable": 1})
    """
    local = Path(path).resolve()
    model_name = name or local.name
    config = ModelConfig(
        name=model_name,
        base_path=f"{container_base.rstrip('/')}/{model_name}",
        version_policy=version_policy,
        version_labels=tuple(sorted((labels or {}).items())),
    )
    return DeployedModel(config, local, tuple(local_versions(local)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeploymentOptions:
    """Everything the config files and manifests are generated from.

    Paths are as seen inside the container unless named ``host_*``.

    Attributes:
        models: the models, unique by name.
        batching: batching parameters; ``None`` disables batching.
        grpc_port / rest_port: the server's ports (TF Serving's 8500 / 8501).
        image_tag: ``tensorflow/serving`` tag without the ``-gpu`` suffix,
            taken as given. :func:`~gradcam_serving.deploy.deployment_options`
            picks ``X.Y.0`` of the newest TensorFlow that wrote a served local
            export (:data:`DEFAULT_IMAGE_TAG` without local exports), and
            checks a tag given to it against the exports.
        gpus: GPUs per replica; 0 uses the CPU image and no GPU limits.
        cpu_request / memory_request: the serving container's Kubernetes
            resource requests (quantities such as ``"2"``, ``"500m"``,
            ``"4Gi"``), so the scheduler places the pod on a node with room
            for the server's host side: decoding, batching threads, the
            CUDA libraries and the loaded graphs.
        startup_seconds: how long Kubernetes waits for the gRPC port before
            restarting the pod. TF Serving opens it only once every model has
            loaded and replayed its warmup requests, so this must cover the
            slowest load; the startup probe tries every
            :data:`STARTUP_PROBE_PERIOD` seconds for this long.
        gpu_memory_fraction: ``--per_process_gpu_memory_fraction``; ``None``
            lets TF take all GPU memory at start (its default).
        allow_growth: grow GPU memory on demand instead, through a session
            config file (exclusive with ``gpu_memory_fraction``).
        place_pruned_graph: the session config's ``graph_options.place_pruned_graph``:
            each signature's run places and optimises only the subgraph it
            runs, not the whole graph of every signature, which shortens the
            load and the warmup (docs/deploying.md, "Load time, warmup and stopping").
        config_dir: container folder holding the config files. Kept apart
            from the model volume so Kubernetes can mount a ConfigMap there
            and update it in place (``subPath`` mounts never update).
        config_poll_seconds: ``--model_config_file_poll_wait_seconds``; the
            server re-reads models.config, so label/version changes apply
            without a restart.
        monitoring_path: Prometheus metrics path on the REST port.
        app_name: Kubernetes name of the Deployment, Service and ConfigMap.
        namespace / replicas: Kubernetes placement.
        models_pvc: PersistentVolumeClaim holding ``NAME/VERSION`` folders,
            mounted at the models' container base.
        host_models_dir: for ``docker-run.sh``, the host folder holding
            ``NAME/VERSION`` folders (overridable with ``$MODELS_DIR``).
        storage_uri_prefix: KServe ``storageUri`` prefix; the model name is
            appended. Default ``pvc://<models_pvc>``.
        kserve: also write ``kserve.yaml`` (one InferenceService per model;
            needs DNS-1035 model names).
        tls: serve gRPC over TLS (or mTLS): writes ``ssl.config`` and adds
            ``--ssl_config_file``, mounted from a Kubernetes Secret.
        grpc_max_threads: ``--grpc_max_threads``. ``None`` (the default)
            leaves TF Serving's 4 x CPUs without batching, and with batching
            gives :func:`batching_grpc_threads`: each request waiting for its
            batch holds one gRPC thread, so fewer threads than
            ``max_batch_size`` keep every batch from filling (each then waits
            for its timeout). A value below ``max_batch_size`` is allowed
            (requests of several images can still fill a batch);
            :func:`~gradcam_serving.deploy.deployment_options` warns about it.
    """

    models: tuple[DeployedModel, ...]
    batching: BatchingOptions | None = GPU_BATCHING
    grpc_port: int = 8500
    rest_port: int = 8501
    image_tag: str
    gpus: int = 1
    cpu_request: str = "2"
    memory_request: str = "4Gi"
    startup_seconds: int = 600
    gpu_memory_fraction: float | None = None
    allow_growth: bool = False
    place_pruned_graph: bool = False
    config_dir: str = "/config"
    config_poll_seconds: int = 60
    monitoring_path: str = "/monitoring/prometheus/metrics"
    app_name: str = "gradcam-serving"
    namespace: str = "default"
    replicas: int = 1
    models_pvc: str = "gradcam-models"
    host_models_dir: str = "./models"
    storage_uri_prefix: str | None = None
    kserve: bool = True
    tls: TlsOptions | None = None
    grpc_max_threads: int | None = None

    def __post_init__(self) -> None:
        self._check_models()
        _ = self.models_mount
        self._check_numbers()
        self._check_resources()
        self._check_names()
        self._check_image()
        if not self.config_dir.startswith("/") or not self.monitoring_path.startswith("/"):
            raise ValueError(
                f"config_dir and monitoring_path must be absolute, got {self.config_dir!r}, {self.monitoring_path!r}"
            )

    def _check_models(self) -> None:
        if not self.models:
            raise ValueError("models must name at least one model")
        seen: set[str] = set()
        for model in self.models:
            if model.name in seen:
                raise ConfigError(f"model {model.name!r} is listed twice; model names must be unique")
            seen.add(model.name)
        if self.kserve:
            for model in self.models:
                if not _DNS_LABEL.match(model.name):
                    raise ConfigError(
                        f"model name {model.name!r} cannot name a KServe InferenceService (lowercase letters, "
                        "digits and '-'); rename it or turn KServe output off (--no-kserve)"
                    )

    def _check_numbers(self) -> None:
        for name in ("grpc_port", "rest_port"):
            if not 1 <= getattr(self, name) <= 65535:
                raise ValueError(f"{name} must be in [1, 65535], got {getattr(self, name)}")
        if self.grpc_port == self.rest_port:
            raise ValueError(f"grpc_port and rest_port must differ, both are {self.grpc_port}")
        if self.gpus < 0 or self.replicas < 1 or self.config_poll_seconds < 0:
            raise ValueError(
                f"need gpus >= 0, replicas >= 1, config_poll_seconds >= 0; "
                f"got {self.gpus}, {self.replicas}, {self.config_poll_seconds}"
            )
        fraction = self.gpu_memory_fraction
        if fraction is not None and not 0 < fraction <= 1:
            raise ValueError(f"gpu_memory_fraction must be in (0, 1], got {fraction}")
        if fraction is not None and self.allow_growth:
            raise ValueError("give gpu_memory_fraction or allow_growth, not both")
        if self.grpc_max_threads is not None and self.grpc_max_threads < 1:
            raise ValueError(f"grpc_max_threads must be >= 1, got {self.grpc_max_threads}")

    def _check_resources(self) -> None:
        for name in ("cpu_request", "memory_request"):
            value = getattr(self, name)
            match = _QUANTITY.match(value) if isinstance(value, str) else None
            if match is None or float(match[1]) <= 0:
                raise ValueError(
                    f"{name} must be a positive Kubernetes quantity such as '2', '500m' or '4Gi', got {value!r}"
                )
        if self.startup_seconds < 1:
            raise ValueError(f"startup_seconds must be >= 1, got {self.startup_seconds}")

    @property
    def needs_session_config(self) -> bool:
        """Whether a ``session_config.pbtxt`` is written and passed as ``--tensorflow_session_config_file``."""
        return self.allow_growth or self.place_pruned_graph

    @property
    def server_grpc_threads(self) -> int | None:
        """The ``--grpc_max_threads`` to run with; ``None`` keeps TF Serving's default (no batching)."""
        if self.grpc_max_threads is not None or self.batching is None:
            return self.grpc_max_threads
        return batching_grpc_threads(self.batching)

    def _check_names(self) -> None:
        for field in ("app_name", "namespace", "models_pvc"):
            if not _DNS_LABEL.match(getattr(self, field)):
                raise ValueError(
                    f"{field} must be a DNS label (lowercase letters, digits, '-'), got {getattr(self, field)!r}"
                )
        if not re.match(r"^[A-Za-z0-9_./-]+$", self.host_models_dir):
            raise ValueError(
                f"host_models_dir may hold only letters, digits and _ . / - (it goes into a shell script), "
                f"got {self.host_models_dir!r}"
            )

    def _check_image(self) -> None:
        tag = self.image_tag
        if not isinstance(tag, str) or not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", tag) or tag.endswith("-gpu"):
            raise ValueError(f"image_tag must be a plain tag such as '2.21.0' (no '-gpu'), got {tag!r}")

    @property
    def startup_failure_threshold(self) -> int:
        """Startup probe tries, :data:`STARTUP_PROBE_PERIOD` seconds apart, that cover ``startup_seconds``."""
        return math.ceil(self.startup_seconds / STARTUP_PROBE_PERIOD)

    @property
    def image(self) -> str:
        """The ``tensorflow/serving`` image: the ``-gpu`` variant when GPUs are asked for."""
        suffix = "-gpu" if self.gpus else ""
        return f"tensorflow/serving:{self.image_tag}{suffix}"

    @property
    def tls_secret(self) -> str | None:
        """The Kubernetes Secret holding ``ssl.config`` (``None`` without TLS)."""
        if self.tls is None:
            return None
        return self.tls.secret_name or f"{self.app_name}-tls"

    @property
    def models_mount(self) -> str | None:
        """The container folder the model volume is mounted at; ``None`` when every base path is a URI.

        Raises:
            ValueError: the local base paths have different parents, so one
                volume cannot hold them all.
        """
        parents = {posixpath.dirname(m.config.base_path.rstrip("/")) for m in self.models if m.config.base_path.startswith("/")}
        if len(parents) > 1:
            raise ValueError(f"all container base paths must share one parent folder (one volume), got {sorted(parents)}")
        return parents.pop() if parents else None

    @property
    def model_configs(self) -> tuple[ModelConfig, ...]:
        return tuple(model.config for model in self.models)
