"""Inputs TF Serving would refuse are refused here first, with words that say what to fix."""

from __future__ import annotations

import dataclasses

import pytest

from gradcam_serving.deploy import DeployedModel, deployment_options, model_from_export
from gradcam_serving.errors import ConfigError
from gradcam_serving.server import BatchingOptions, ModelConfig, VersionPolicy


def test_label_to_a_version_missing_locally(exports):
    with pytest.raises(ConfigError, match=r"label 'stable' of model 'shapes' points to version 5, but .*shapes has "
                                          r"versions 1,2"):
        model_from_export(exports / "shapes", version_policy=VersionPolicy(kind="all"), labels={"stable": 5})


def test_label_to_a_version_the_specific_policy_does_not_serve():
    model = ModelConfig("m", "/models/m", VersionPolicy(kind="specific", versions=(1,)), (("canary", 2),))
    with pytest.raises(ConfigError, match=r"points to version 2, which the version policy specific:1 does not serve"):
        DeployedModel(model)


def test_the_constructor_checks_given_versions_without_reading_the_disk(tmp_path):
    """``DeployedModel`` is a frozen value: the version folders come in, nothing is read (the folder is absent)."""
    absent = tmp_path / "not-there"
    config = ModelConfig("m", "/models/m", VersionPolicy(kind="latest", num_versions=2), (("stable", 2),))
    model = DeployedModel(config, absent, (1, 2, 3))
    assert model.served_folders() == [absent / "2", absent / "3"]
    with pytest.raises(ConfigError, match=r"points to version 2, but .*not-there has versions 3,4"):
        DeployedModel(config, absent, (3, 4))
    with pytest.raises(ValueError, match="give local_path and local_versions together"):
        DeployedModel(config, absent)


def test_label_to_a_version_latest_will_not_load(exports):
    with pytest.raises(ConfigError, match=r"version 1, which the version policy latest:1 does not serve \(it serves 2\)"):
        model_from_export(exports / "shapes", labels={"stable": 1})


def test_label_to_an_existing_version_within_latest_is_fine(exports):
    model = model_from_export(exports / "shapes", version_policy=VersionPolicy(kind="latest", num_versions=2),
                              labels={"stable": 1})
    assert model.config.version_labels == (("stable", 1),)


@pytest.mark.parametrize("folder", [pytest.param("", id="base-not-model"), pytest.param("shapes/1", id="version"),
                                    pytest.param("nothing", id="missing")])
def test_folder_without_version_folders(exports, folder):
    with pytest.raises(ConfigError, match=r"No versions of servable|does not exist"):
        model_from_export(exports / folder)


def test_duplicate_model_name(exports):
    first = model_from_export(exports / "shapes")
    second = model_from_export(exports / "pets", name="shapes")
    with pytest.raises(ConfigError, match="model 'shapes' is listed twice"):
        deployment_options([first, second])


@pytest.mark.parametrize(
    "sizes, message",
    [
        pytest.param((1, 4, 2, 32), "positive and increasing", id="not-increasing"),
        pytest.param((1, 2, 2, 32), "positive and increasing", id="repeated"),
        pytest.param((1, 2, 16), "Last entry in allowed_batch_sizes must match max_batch_size", id="last-not-max"),
    ],
)
def test_bad_allowed_batch_sizes(sizes, message):
    with pytest.raises(ValueError, match=message):
        BatchingOptions(max_batch_size=32, allowed_batch_sizes=sizes)


@pytest.mark.parametrize(
    "change, message",
    [
        pytest.param({"gpu_memory_fraction": 1.5}, "gpu_memory_fraction must be in", id="fraction"),
        pytest.param({"gpu_memory_fraction": 0.5, "allow_growth": True}, "not both", id="fraction-and-growth"),
        pytest.param({"rest_port": 8500}, "must differ", id="same-ports"),
        pytest.param({"gpus": -1}, "gpus >= 0", id="negative-gpus"),
        pytest.param({"namespace": "Bad_NS"}, "namespace must be a DNS label", id="namespace"),
        pytest.param({"image_tag": "2.19.0-gpu"}, "no '-gpu'", id="tag-with-gpu"),
        pytest.param({"host_models_dir": "my models"}, "host_models_dir may hold only", id="shell-unsafe-dir"),
        pytest.param({"config_dir": "config"}, "must be absolute", id="relative-config-dir"),
        pytest.param({"models": ()}, "at least one model", id="no-models"),
        pytest.param({"cpu_request": "two"}, "cpu_request must be a positive Kubernetes quantity", id="cpu-word"),
        pytest.param({"cpu_request": "-1"}, "cpu_request must be a positive Kubernetes quantity", id="cpu-negative"),
        pytest.param({"memory_request": "0Gi"}, "memory_request must be a positive Kubernetes quantity", id="memory-zero"),
        pytest.param({"memory_request": "4GB"}, "memory_request must be a positive Kubernetes quantity", id="memory-unit"),
        pytest.param({"startup_seconds": 0}, "startup_seconds must be >= 1", id="startup"),
    ],
)
def test_bad_options(options, change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(options, **change)


def test_relative_container_base_path():
    with pytest.raises(ValueError, match="must be absolute inside the container or a URI"):
        DeployedModel(ModelConfig("m", "models/m"))


def test_models_on_two_volumes():
    models = (DeployedModel(ModelConfig("a", "/models/a")), DeployedModel(ModelConfig("b", "/data/b")))
    with pytest.raises(ValueError, match="share one parent folder"):
        deployment_options(models)


def test_uri_base_paths_need_no_volume():
    options = deployment_options([DeployedModel(ModelConfig("a", "gs://bucket/a"))])
    assert options.models_mount is None


def test_model_name_kserve_cannot_use(exports):
    model = model_from_export(exports / "shapes", name="my_model")
    with pytest.raises(ConfigError, match=r"'my_model' cannot name a KServe InferenceService.*--no-kserve"):
        deployment_options([model])
    assert deployment_options([model], kserve=False).models[0].name == "my_model"
