"""Exports checked against the op registries of the TF Serving releases they are deployed on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import tensorflow as tf
from click.testing import CliRunner

from gradcam_serving.cli import cli
from gradcam_serving.exporter import _compat


class _Skewed(tf.Module):
    """Uses what TensorFlow 2.21 has and older releases lack.

    * ``DecodeWebP``: an op added in 2.20;
    * ``Range`` with ``Tidx=uint64``: a value 2.20 added to the allowed list;
    * ``TensorListGetItem`` with ``Tshape=int64``: an attribute added in 2.21.
    """

    @tf.function(input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.uint64)])
    def serve(self, webp: tf.Tensor, count: tf.Tensor) -> dict[str, tf.Tensor]:
        steps = tf.raw_ops.Range(start=tf.constant(0, tf.uint64), limit=count, delta=tf.constant(1, tf.uint64))
        shape = tf.constant([-1], tf.int64)
        handle = tf.raw_ops.TensorListReserve(element_shape=shape, num_elements=2, element_dtype=tf.float32)
        item = tf.raw_ops.TensorListGetItem(input_handle=handle, index=0, element_shape=shape, element_dtype=tf.float32)
        return {"image": tf.io.decode_webp(webp), "steps": steps, "item": item}


class _Plain(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 3], tf.float32)])
    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        pooled = tf.nn.avg_pool2d(tf.image.resize(images, (8, 8)), 2, 2, "SAME")
        return {"scores": tf.nn.softmax(tf.reduce_mean(pooled, axis=[1, 2]))}


def _save(module: tf.Module, path: Path) -> Path:
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save(_Skewed(), tmp_path_factory.mktemp("skewed") / "1")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save(_Plain(), tmp_path_factory.mktemp("plain") / "1")


def test_the_registries_of_2_15_to_2_21_are_recorded() -> None:
    assert _compat.SERVING_VERSIONS == ("2.15", "2.16", "2.17", "2.18", "2.19", "2.20", "2.21")
    for version in _compat.SERVING_VERSIONS:
        registry = _compat.op_registry(version)
        assert registry.tensorflow.startswith(version + ".")
        assert {"Conv2D", "FusedBatchNormV3", "StatefulPartitionedCall", "DecodeJpeg"} <= set(registry.ops)
    assert "DecodeWebP" not in _compat.op_registry("2.19").ops and "DecodeWebP" in _compat.op_registry("2.21").ops


def test_the_recorded_registry_of_the_installed_release_is_tensorflows_own() -> None:
    """Every op the installed TF registers in C++ is recorded with the same attributes (GPU copy ops aside)."""
    from tensorflow.python.framework import op_def_registry

    installed = ".".join(tf.__version__.split(".")[:2])
    recorded = _compat.op_registry(installed).ops
    for name in ("Conv2D", "Range", "TensorListGetItem", "ResizeBilinear", "DecodeWebP"):
        op_def = op_def_registry.get(name)
        assert set(recorded[name]["attrs"]) == {attr.name for attr in op_def.attr}, name
        assert recorded[name]["inputs"] == [arg.name for arg in op_def.input_arg]


def test_an_export_passes_on_the_release_that_wrote_it(skewed: Path) -> None:
    assert _compat.writer_version(skewed) == tf.__version__
    assert _compat.compatibility_problems(skewed, tf.__version__) == []


def test_an_op_an_attribute_and_an_attribute_value_older_releases_lack(skewed: Path) -> None:
    problems = _compat.compatibility_problems(skewed, "2.19")
    assert len(problems) == 3, problems
    assert any(p.startswith("Op type not registered 'DecodeWebP' in TensorFlow 2.19 (node DecodeWebP in ") for p in problems)
    assert any("Value for attr 'Tidx' of DT_UINT64 is not in the list of allowed values of Range" in p for p in problems)
    assert any("NodeDef mentions attr 'Tshape' not in Op<name=TensorListGetItem>" in p for p in problems)
    assert _compat.compatibility_problems(skewed, "2.20") == [
        next(p.replace("2.19", "2.20") for p in problems if "Tshape" in p)
    ]
    assert _compat.oldest_serving_version(skewed) == "2.21"


def test_default_valued_attributes_do_not_count(plain: Path) -> None:
    """A plain CNN-like graph written by 2.21 loads on every recorded release."""
    assert all(_compat.compatibility_problems(plain, version) == [] for version in _compat.SERVING_VERSIONS)
    assert _compat.oldest_serving_version(plain) == "2.15"


def test_an_attribute_an_older_release_requires_without_default_is_reported(plain: Path, tmp_path: Path) -> None:
    """Dropping a required attribute (as a newer writer could, once it gained a default) is caught."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((plain / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    node = next(n for f in graph.library.function for n in f.node_def if n.op == "AvgPool")
    del node.attr["ksize"]
    edited = tmp_path / "1"
    edited.mkdir()
    (edited / "saved_model.pb").write_bytes(saved.SerializeToString())
    problems = _compat.compatibility_problems(edited, "2.15")
    assert len(problems) == 1 and problems[0].startswith(
        "NodeDef missing attr 'ksize' from Op<name=AvgPool>, which has no default in TensorFlow 2.15"
    )


@pytest.mark.parametrize(("version", "tag"), [("2.21.0", "2.21.0"), ("2.19.1", "2.19.0"), ("2.22.0-rc1", "2.22.0")])
def test_the_image_tag_follows_the_writers_release(version: str, tag: str) -> None:
    assert _compat.image_tag_for(version) == tag


def test_an_unrecorded_release_is_refused_naming_the_recorded_ones() -> None:
    with pytest.raises(ValueError, match=r"no op registry recorded for TensorFlow '2.14'; recorded: 2.15, 2.16"):
        _compat.op_registry("2.14")


def test_the_registry_files_are_compact_and_deterministic() -> None:
    folder = Path(_compat.__file__).parent / "_registries"
    sizes = [path.stat().st_size for path in folder.glob("*.json.gz")]
    assert len(sizes) == 7 and max(sizes) < 100_000
    with gzip.open(folder / "2.21.json.gz", "rt") as stream:
        data = json.load(stream)
    assert data["tensorflow"] == "2.21.0" and len(data["ops"]) > 1700


def _validate(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def test_validate_serving_version_fails_on_an_older_release_and_names_the_problems(skewed: Path) -> None:
    older = _validate(str(skewed), "--serving-version", "2.19")
    line = next(line for line in older.output.splitlines() if "TF Serving 2.19" in line)
    assert line.startswith("  [FAIL] ops and attributes known to TF Serving 2.19: written by TensorFlow 2.21")
    assert "Op type not registered 'DecodeWebP'" in line and "'Tshape'" in line
    same = _validate(str(skewed), "--serving-version", "2.21")
    assert "  [PASS] ops and attributes known to TF Serving 2.21" in same.output


def test_validate_without_a_serving_version_names_the_oldest_release_that_loads_it(skewed: Path) -> None:
    result = _validate(str(skewed))
    assert "[PASS] TF Serving versions: written by TensorFlow 2.21.0; loads on TF Serving 2.21 and newer" in result.output


def test_validate_refuses_an_unrecorded_serving_version_before_loading(skewed: Path) -> None:
    result = _validate(str(skewed), "--serving-version", "2.9")
    assert result.exit_code == 2
    assert "no op registry recorded for TensorFlow '2.9'" in result.output
