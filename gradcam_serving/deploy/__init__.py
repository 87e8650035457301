"""Write TF Serving config files and deployment manifests for exported models.

From local exports ``BASE/NAME/VERSION`` this generates, for the real GPU
``tensorflow_model_server`` (and accepted by the local stand-in):

* ``models.config`` (``ModelServerConfig``), ``batching_parameters.txt``
  (``BatchingParameters``), ``monitoring.config`` (``MonitoringConfig``),
  with ``allow_growth`` ``session_config.pbtxt`` (``ConfigProto``) and with
  ``tls`` ``ssl.config`` (``SSLConfig``), all printed from the protos the
  server parses;
* ``docker-run.sh``, ``kubernetes.yaml`` (ConfigMap, GPU Deployment, headless
  Service for client-side gRPC load balancing) and ``kserve.yaml``;
* a ``README.md`` on how to use them.

Example::

    from gradcam_serving.deploy import deployment_options, model_from_export, write_deployment

    model = model_from_export("exports/shapes", labels={"stable": 1})
    write_deployment(deployment_options([model]), "serving_config")

or ``gradcam-serving config exports/shapes --label stable=1 --output serving_config``.
:func:`deployment_options` picks the image tag from the exports (the
:class:`DeploymentOptions` record takes every field as given).
Importing this package needs neither TensorFlow nor PyYAML; they are imported
when files are rendered or an export is read.
"""

from __future__ import annotations

from gradcam_serving.deploy._build import deployment_options
from gradcam_serving.deploy._cli import config_command, parse_labels, parse_version_policy, powers_of_two_up_to
from gradcam_serving.deploy._files import config_files, render_files, write_deployment, write_files
from gradcam_serving.deploy._manifests import docker_run_argv, grpc_target, server_flags, tls_secret_command
from gradcam_serving.deploy._options import (
    DEFAULT_IMAGE_TAG,
    GPU_BATCHING,
    STARTUP_PROBE_PERIOD,
    DeployedModel,
    DeploymentOptions,
    batching_grpc_threads,
    local_versions,
    model_from_export,
)
from gradcam_serving.deploy._tls import TlsOptions

__all__ = [
    "DEFAULT_IMAGE_TAG",
    "GPU_BATCHING",
    "STARTUP_PROBE_PERIOD",
    "DeployedModel",
    "DeploymentOptions",
    "TlsOptions",
    "batching_grpc_threads",
    "config_command",
    "config_files",
    "deployment_options",
    "docker_run_argv",
    "grpc_target",
    "local_versions",
    "model_from_export",
    "parse_labels",
    "parse_version_policy",
    "powers_of_two_up_to",
    "render_files",
    "server_flags",
    "tls_secret_command",
    "write_deployment",
    "write_files",
]
