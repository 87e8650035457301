"""The image tag follows the TensorFlow that wrote the exports; older tags are refused or warned about.

Where the options are built (``deployment_options``, the ``config`` command);
the options record itself reads no export.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import tensorflow as tf
from click.testing import CliRunner

from gradcam_serving.cli import cli
import gradcam_serving.exporter
from gradcam_serving.deploy import (
    DEFAULT_IMAGE_TAG,
    DeployedModel,
    DeploymentOptions,
    deployment_options,
    model_from_export,
)
from gradcam_serving.deploy._image import default_image_tag, image_tag_warnings
from gradcam_serving.errors import ConfigError, GradcamServingWarning
from gradcam_serving.server import ModelConfig


class _WebP(tf.Module):
    """``DecodeWebP`` is registered from TensorFlow 2.20 on."""

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def serve(self, webp: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"image": tf.io.decode_webp(webp)}


@pytest.fixture(scope="module")
def webp_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("webp") / "webp"
    module = _WebP()
    tf.saved_model.save(module, str(model_dir / "1"), signatures={"serving_default": module.serve})
    return model_dir


def _tag_of_installed_tensorflow() -> str:
    major, minor = tf.__version__.split(".")[:2]
    return f"{major}.{minor}.0"


def test_the_default_tag_is_the_tensorflow_the_package_exports_with() -> None:
    assert DEFAULT_IMAGE_TAG == _tag_of_installed_tensorflow()
    without_export = DeployedModel(ModelConfig(name="remote", base_path="gs://bucket/remote"))
    assert deployment_options([without_export]).image_tag == DEFAULT_IMAGE_TAG


def test_the_default_tag_follows_the_writer_of_the_served_exports(tiny_export: Path) -> None:
    options = deployment_options([model_from_export(tiny_export)])
    assert options.image_tag == _tag_of_installed_tensorflow()
    assert options.image == f"tensorflow/serving:{_tag_of_installed_tensorflow()}-gpu"


def test_an_older_tag_that_would_refuse_the_export_is_refused(webp_export: Path) -> None:
    model = model_from_export(webp_export)
    with pytest.raises(ConfigError, match=r"tensorflow/serving:2\.19\.0 is older than TensorFlow 2\.21.*would refuse it: "
                       r"Op type not registered 'DecodeWebP' in TensorFlow 2\.19\.0.*Use image tag 2\.21\.0 \(the default\)"):
        deployment_options([model], image_tag="2.19.0")
    with pytest.warns(GradcamServingWarning, match="should load"):
        assert deployment_options([model], image_tag="2.20.0").image_tag == "2.20.0"


def test_an_older_tag_that_would_load_the_export_is_warned_about(tiny_export: Path) -> None:
    model = model_from_export(tiny_export)
    with pytest.warns(GradcamServingWarning, match=r"2\.15\.0 is older than TensorFlow 2\.21.*knows every op and attribute"):
        options = deployment_options([model], image_tag="2.15.0")
    assert options.image_tag == "2.15.0"


def test_an_older_tag_without_a_recorded_registry_is_warned_about(tiny_export: Path) -> None:
    with pytest.warns(GradcamServingWarning, match=r"no op registry is recorded for it .*could not be checked"):
        deployment_options([model_from_export(tiny_export)], image_tag="2.11.0")


def test_newer_and_non_version_tags_are_not_checked(tiny_export: Path) -> None:
    model = model_from_export(tiny_export)
    for tag in ("2.22.0", "latest", "nightly"):
        assert deployment_options([model], image_tag=tag).image_tag == tag


def test_config_command_defaults_to_the_writers_tag_and_refuses_an_incompatible_one(webp_export: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["config", str(webp_export), "--output", str(tmp_path / "ok"), "--no-kserve"])
    assert result.exit_code == 0, result.output
    assert f"tensorflow/serving:{_tag_of_installed_tensorflow()}-gpu" in (tmp_path / "ok" / "docker-run.sh").read_text()
    refused = runner.invoke(cli, ["config", str(webp_export), "--image-tag", "2.18.0", "--output", str(tmp_path / "no")])
    assert refused.exit_code == 1
    assert "error: tensorflow/serving:2.18.0 is older than TensorFlow 2.21" in refused.output
    assert not (tmp_path / "no").exists()


def test_the_tag_is_a_function_of_the_export_folders(tiny_export: Path, tmp_path: Path) -> None:
    written = tiny_export / "1"
    assert default_image_tag([written], "fallback") == _tag_of_installed_tensorflow()
    assert default_image_tag([tmp_path], "fallback") == "fallback"  # no SavedModel (yet) in the folder
    assert image_tag_warnings(_tag_of_installed_tensorflow(), [written]) == []
    [text] = image_tag_warnings("2.15.0", [written])
    assert text.startswith(f"tensorflow/serving:2.15.0 is older than TensorFlow {tf.__version__}, which wrote {written}")


def test_the_options_record_reads_no_export_and_warns_nothing(webp_export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the builder resolves and checks the tag: the frozen record takes it as given, copies included."""
    model = model_from_export(webp_export)

    def no_reading(*_: object) -> str:
        raise AssertionError("the options record read an export")

    monkeypatch.setattr(gradcam_serving.exporter, "writer_version", no_reading)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        options = DeploymentOptions(models=(model,), image_tag="2.19.0", grpc_max_threads=8)
        copy = dataclasses.replace(options, gpus=0)
    assert (options.image_tag, copy.image_tag) == ("2.19.0", "2.19.0")
    with pytest.raises(TypeError, match="image_tag"):
        DeploymentOptions(models=(model,))  # type: ignore[call-arg]
