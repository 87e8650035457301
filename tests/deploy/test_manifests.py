"""docker-run.sh, kubernetes.yaml and kserve.yaml carry the fields a GPU deployment needs."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess

import pytest
import yaml

from gradcam_serving.deploy import (
    STARTUP_PROBE_PERIOD,
    DeploymentOptions,
    config_files,
    deployment_options,
    docker_run_argv,
    render_files,
    server_flags,
)
from gradcam_serving.errors import GradcamServingWarning

SERVER_FLAGS = [
    "--port=8500",
    "--rest_api_port=8501",
    "--model_config_file=/config/models.config",
    "--model_config_file_poll_wait_seconds=60",
    "--enable_batching=true",
    "--batching_parameters_file=/config/batching_parameters.txt",
    "--grpc_max_threads=160",
    "--monitoring_config_file=/config/monitoring.config",
]


def _kubernetes(options: DeploymentOptions) -> dict[str, dict]:
    documents = list(yaml.safe_load_all(render_files(options)["kubernetes.yaml"]))
    return {document["kind"]: document for document in documents}


def _container(options: DeploymentOptions) -> dict:
    return _kubernetes(options)["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_server_flags_are_tf_servings(options):
    assert server_flags(options) == SERVER_FLAGS


def test_batching_gets_enough_grpc_threads_to_fill_its_batches(options):
    batching = dataclasses.replace(options.batching, max_batch_size=64, num_batch_threads=2, allowed_batch_sizes=(32, 64))
    assert "--grpc_max_threads=192" in server_flags(dataclasses.replace(options, batching=batching))
    assert not any("grpc_max_threads" in flag for flag in server_flags(dataclasses.replace(options, batching=None)))
    assert "--grpc_max_threads=40" in server_flags(dataclasses.replace(options, grpc_max_threads=40))
    with pytest.warns(GradcamServingWarning, match="grpc_max_threads 8 is below max_batch_size 32.*at least 32"):
        fewer = deployment_options(options.models, grpc_max_threads=8)
    assert "--grpc_max_threads=8" in server_flags(fewer)  # kept: requests of several rows can still fill a batch


def test_gpu_memory_flags(options):
    fraction = dataclasses.replace(options, gpu_memory_fraction=0.8)
    assert server_flags(fraction)[-1] == "--per_process_gpu_memory_fraction=0.8"
    growth = dataclasses.replace(options, allow_growth=True)
    assert server_flags(growth)[-1] == "--tensorflow_session_config_file=/config/session_config.pbtxt"
    pruned = dataclasses.replace(options, place_pruned_graph=True)
    assert server_flags(pruned)[-1] == "--tensorflow_session_config_file=/config/session_config.pbtxt"
    assert "session_config.pbtxt" in render_files(pruned)["README.md"]


def test_docker_script_runs_the_gpu_image_with_mounts_ports_and_flags(options):
    script = render_files(options)["docker-run.sh"]
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    command = shlex.split(script.split("exec ", 1)[1].replace("\\\n", " "))
    assert command[:5] == ["docker", "run", "--rm", "--gpus", "all"]
    assert "$MODELS_DIR:/models:ro" in command and "$CONFIG_DIR:/config:ro" in command
    assert command[command.index("--entrypoint") + 1] == "/usr/bin/tensorflow_model_server"
    assert "tensorflow/serving:2.21.0-gpu" in command
    assert command[-len(SERVER_FLAGS):] == SERVER_FLAGS
    assert command == docker_run_argv(options)
    published = [command[i + 1] for i, word in enumerate(command) if word == "-p"]
    assert published == ["8500:8500", "8501:8501"]


def test_docker_script_expands_its_folders(options, exports, tmp_path):
    """Run the script with a fake ``docker`` that prints its arguments."""
    files = render_files(dataclasses.replace(options, host_models_dir=str(exports)))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "docker-run.sh").write_text(files["docker-run.sh"])
    run = subprocess.run(["bash", str(tmp_path / "docker-run.sh")], capture_output=True, text=True, check=True,
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    arguments = run.stdout.splitlines()
    assert f"{exports}:/models:ro" in arguments
    assert f"{tmp_path}:/config:ro" in arguments


def test_kubernetes_has_configmap_gpu_deployment_and_headless_service(options):
    documents = _kubernetes(options)
    assert set(documents) == {"ConfigMap", "Deployment", "Service"}
    assert documents["ConfigMap"]["data"] == config_files(options)
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "tensorflow/serving:2.21.0-gpu"
    assert container["command"] == ["/usr/bin/tensorflow_model_server"]
    assert container["args"] == SERVER_FLAGS
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"nvidia.com/gpu": "1"}}
    assert {(p["name"], p["containerPort"]) for p in container["ports"]} == {("grpc", 8500), ("http", 8501)}
    assert {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} == {
        "config": "gradcam-serving-config"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"models": "/models", "config": "/config"}
    service = documents["Service"]["spec"]
    assert service["clusterIP"] == "None"
    assert {(p["name"], p["port"]) for p in service["ports"]} == {("grpc", 8500), ("http", 8501)}
    assert service["selector"] == documents["Deployment"]["spec"]["selector"]["matchLabels"]


def test_probes_use_the_grpc_and_rest_ports(options):
    container = _container(options)
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/shapes", "port": "http"}
    assert container["livenessProbe"]["tcpSocket"]["port"] == "grpc"
    assert container["startupProbe"]["tcpSocket"]["port"] == "grpc"


@pytest.mark.parametrize("seconds, tries", [(600, 60), (95, 10), (1, 1)])
def test_the_startup_probe_waits_startup_seconds_for_the_loads(options, seconds, tries):
    probe = _container(dataclasses.replace(options, startup_seconds=seconds))["startupProbe"]
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (STARTUP_PROBE_PERIOD, tries)
    assert probe["periodSeconds"] * probe["failureThreshold"] >= seconds


def test_cpu_and_memory_requests(options):
    changed = dataclasses.replace(options, cpu_request="500m", memory_request="12Gi")
    assert _container(changed)["resources"]["requests"] == {"cpu": "500m", "memory": "12Gi"}
    assert "Each pod requests 500m CPU and 12Gi of memory" in render_files(changed)["README.md"]


def test_kubernetes_comment_tells_clients_how_to_balance_grpc(options):
    text = render_files(dataclasses.replace(options, namespace="vision", app_name="cam"))["kubernetes.yaml"]
    assert "dns:///cam.vision.svc.cluster.local:8500" in text
    assert "round_robin" in text


def test_kserve_inference_service_per_model(options):
    services = list(yaml.safe_load_all(render_files(options)["kserve.yaml"]))
    assert [s["metadata"]["name"] for s in services] == ["shapes", "pets"]
    model = services[0]["spec"]["predictor"]["model"]
    assert services[0]["apiVersion"] == "serving.kserve.io/v1beta1"
    assert services[0]["kind"] == "InferenceService"
    assert model["modelFormat"] == {"name": "tensorflow"}
    assert model["storageUri"] == "pvc://gradcam-models/shapes"
    assert model["runtimeVersion"] == "2.21.0-gpu"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert model["ports"] == [{"containerPort": 9000, "name": "h2c", "protocol": "TCP"}]


def test_storage_uri_prefix_and_tag(options):
    changed = dataclasses.replace(options, storage_uri_prefix="gs://bucket/models/", image_tag="2.18.0")
    model = next(yaml.safe_load_all(render_files(changed)["kserve.yaml"]))["spec"]["predictor"]["model"]
    assert (model["storageUri"], model["runtimeVersion"]) == ("gs://bucket/models/shapes", "2.18.0-gpu")


def test_cpu_only_drops_gpu_image_and_limits(options):
    cpu = dataclasses.replace(options, gpus=0)
    container = _container(cpu)
    assert container["image"] == "tensorflow/serving:2.21.0"
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}}
    assert "--gpus" not in docker_run_argv(cpu)
    model = next(yaml.safe_load_all(render_files(cpu)["kserve.yaml"]))["spec"]["predictor"]["model"]
    assert model["runtimeVersion"] == "2.21.0" and "resources" not in model


@pytest.mark.parametrize("gpus, replicas", [pytest.param(2, 3, id="2-gpus-3-replicas")])
def test_gpu_count_and_replicas(options, gpus, replicas):
    changed = dataclasses.replace(options, gpus=gpus, replicas=replicas)
    assert _container(changed)["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
    assert _kubernetes(changed)["Deployment"]["spec"]["replicas"] == replicas


def test_kserve_can_be_left_out(options):
    assert "kserve.yaml" not in render_files(dataclasses.replace(options, kserve=False))
