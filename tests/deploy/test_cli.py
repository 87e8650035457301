"""``gradcam-serving config``: arguments to files, one-line errors, nothing written on failure."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from gradcam_serving.deploy import config_command, parse_version_policy, powers_of_two_up_to
from gradcam_serving.server import VersionPolicy, batching_parameters_class


def _run(*args):
    return CliRunner().invoke(config_command, [str(a) for a in args])


def _models_config(folder) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse((folder / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())


def test_writes_every_file_and_lists_them(exports, tmp_path):
    out = tmp_path / "out"
    result = _run(exports / "shapes", "--versions", "specific:1,2", "--label", "stable=1", "--output", out)
    assert result.exit_code == 0, result.output
    names = {"models.config", "batching_parameters.txt", "monitoring.config", "docker-run.sh", "kubernetes.yaml",
             "kserve.yaml", "README.md"}
    assert {p.name for p in out.iterdir()} == names
    assert result.stdout.splitlines() == [str(out / n) for n in
                                          ["models.config", "batching_parameters.txt", "monitoring.config",
                                           "docker-run.sh", "kubernetes.yaml", "kserve.yaml", "README.md"]]
    entry = _models_config(out).model_config_list.config[0]
    assert (entry.name, entry.base_path, dict(entry.version_labels)) == ("shapes", "/models/shapes", {"stable": 1})
    assert f'MODELS_DIR:-{exports}' in (out / "docker-run.sh").read_text()


def test_name_container_base_and_batching_options(exports, tmp_path):
    result = _run(exports / "shapes", "--name", "cam", "--container-base", "/mnt/models", "--max-batch-size", "48",
                  "--gpus", "2", "--gpu-memory-fraction", "0.5", "--output", tmp_path)
    assert result.exit_code == 0, result.output
    assert _models_config(tmp_path).model_config_list.config[0].base_path == "/mnt/models/cam"
    batching = text_format.Parse((tmp_path / "batching_parameters.txt").read_text(), batching_parameters_class()())
    assert list(batching.allowed_batch_sizes) == [1, 2, 4, 8, 16, 32, 48]
    deployment = list(yaml.safe_load_all((tmp_path / "kubernetes.yaml").read_text()))[1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert "--per_process_gpu_memory_fraction=0.5" in container["args"]
    assert "--grpc_max_threads=240" in container["args"]  # (4 batch threads + 1) x 48


def test_resources_and_startup_probe_options(exports, tmp_path):
    result = _run(exports / "shapes", "--cpu", "4", "--memory", "16Gi", "--startup-seconds", "1200", "--output", tmp_path)
    assert result.exit_code == 0, result.output
    deployment = list(yaml.safe_load_all((tmp_path / "kubernetes.yaml").read_text()))[1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}
    assert container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"] == 1200
    bad = _run(exports / "shapes", "--memory", "16GB", "--output", tmp_path / "bad")
    assert bad.exit_code == 1 and "error: memory_request must be a positive Kubernetes quantity" in bad.output
    assert not (tmp_path / "bad").exists()


def test_grpc_threads_below_the_batch_size_are_warned_about(exports, tmp_path):
    result = _run(exports / "shapes", "--grpc-max-threads", "16", "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "warning: grpc_max_threads 16 is below max_batch_size 32" in result.output
    assert "--grpc_max_threads=16" in (tmp_path / "out" / "kubernetes.yaml").read_text()
    ok = _run(exports / "shapes", "--grpc-max-threads", "64", "--output", tmp_path / "ok")
    assert ok.exit_code == 0, ok.output
    assert "--grpc_max_threads=64" in (tmp_path / "ok" / "kubernetes.yaml").read_text()


def test_name_path_pairs_and_per_model_labels(exports, tmp_path):
    result = _run(f"a={exports / 'shapes'}", f"b={exports / 'pets'}", "--versions", "all",
                  "--label", "a:stable=2", "--label", "b:stable=3", "--output", tmp_path)
    assert result.exit_code == 0, result.output
    configs = _models_config(tmp_path).model_config_list.config
    assert [(c.name, dict(c.version_labels)) for c in configs] == [("a", {"stable": 2}), ("b", {"stable": 3})]


def test_print_without_output_writes_nothing(exports, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(exports / "shapes", "--print", "--no-batching", "--no-kserve")
    assert result.exit_code == 0, result.output
    assert "# ==> models.config <==" in result.stdout and "kind: Deployment" in result.stdout
    assert "batching_parameters" not in result.stdout and "InferenceService" not in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["exports"]


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(["--label", "stable=7"], "points to version 7", id="label-missing-version"),
        pytest.param(["--versions", "newest"], "--versions must be latest, latest:N, all or specific", id="versions"),
        pytest.param(["--label", "stable"], "--label must look like [MODEL:]LABEL=VERSION", id="label-syntax"),
        pytest.param(["--allowed-batch-sizes", "1,8,4,32"], "positive and increasing", id="sizes-order"),
        pytest.param(["--allowed-batch-sizes", "1,2,16"], "must match max_batch_size", id="sizes-last"),
        pytest.param(["--allowed-batch-sizes", "1,x"], "comma-separated integers", id="sizes-syntax"),
        pytest.param(["--gpu-memory-fraction", "0.5", "--allow-growth"], "not both", id="gpu-memory"),
    ],
)
def test_errors_are_one_line_and_write_nothing(exports, tmp_path, args, message):
    out = tmp_path / "out"
    result = _run(exports / "shapes", "--output", out, *args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not out.exists()


def test_duplicate_names_are_refused(exports, tmp_path):
    result = _run(f"x={exports / 'shapes'}", f"x={exports / 'pets'}", "--output", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: model 'x' is listed twice; model names must be unique"
    assert not (tmp_path / "out").exists()


def test_label_without_model_is_ambiguous_with_several(exports, tmp_path):
    result = _run(exports / "shapes", exports / "pets", "--label", "stable=1", "--print")
    assert result.exit_code == 1 and "name the model (MODEL:LABEL=VERSION)" in result.stderr


def test_needs_output_or_print(exports):
    result = _run(exports / "shapes")
    assert result.exit_code == 1 and "give --output DIR, --print, or both" in result.stderr


@pytest.mark.parametrize(
    "text, policy",
    [
        pytest.param("latest", VersionPolicy(), id="latest"),
        pytest.param("latest:3", VersionPolicy(kind="latest", num_versions=3), id="latest-3"),
        pytest.param("all", VersionPolicy(kind="all"), id="all"),
        pytest.param("specific:2,1,2", VersionPolicy(kind="specific", versions=(1, 2)), id="specific"),
    ],
)
def test_version_policy_forms(text, policy):
    assert parse_version_policy(text) == policy


@pytest.mark.parametrize("text", ["latest:0", "all:2", "specific:", "specific:a"])
def test_bad_version_policy_forms(text):
    with pytest.raises(ValueError):
        parse_version_policy(text)


def test_powers_of_two_end_at_the_limit():
    assert powers_of_two_up_to(32) == (1, 2, 4, 8, 16, 32)
    assert powers_of_two_up_to(20) == (1, 2, 4, 8, 16, 20)
    assert powers_of_two_up_to(1) == (1,)
