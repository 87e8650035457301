"""The public surface of ``gradcam_serving.deploy`` is pinned and imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import gradcam_serving.deploy as deploy


def test_all_is_pinned():
    assert deploy.__all__ == [
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
    assert all(hasattr(deploy, name) for name in deploy.__all__)


def test_import_needs_neither_tensorflow_nor_yaml():
    code = ("import sys, gradcam_serving.deploy; "
            "print(sorted(m for m in ('tensorflow', 'yaml', 'grpc') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
