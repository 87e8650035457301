"""runtime.ExportSession: the one way exports are loaded and run, with TF Serving's rules."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
_LOADER_CALL = re.compile(r"saved_model\.loader\.load\(|saved_model\.load_v1_in_v2|loader_impl\.load\(")


def test_one_tf1_loader_call_site_in_the_package_and_none_in_the_benchmarks():
    sites = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("gradcam_serving", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if _LOADER_CALL.search(line)
    ]
    assert len(sites) == 1 and sites[0].startswith("gradcam_serving/runtime.py:"), sites


@pytest.fixture(scope="module")
def plain_saved_model(tmp_path_factory):
    """A SavedModel with one signature, saved under the tag set {serve, gpu} and {serve}."""
    import tensorflow as tf

    class Double(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x * 2.0}

    folder = tmp_path_factory.mktemp("plain")
    module = Double()
    tf.saved_model.save(module, str(folder / "1"), signatures={"serving_default": module.serve})
    builder = tf.compat.v1.saved_model.Builder(str(folder / "2"))
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        y = tf.identity(x * 3.0, name="y")
        signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
        builder.add_meta_graph_and_variables(session, ["serve", "gpu"], signature_def_map={"serving_default": signature})
    builder.save()
    return folder


def test_runs_a_signature_by_aliases_and_counts_the_load(plain_saved_model):
    from gradcam_serving import runtime

    before = runtime.load_count()
    with runtime.ExportSession(plain_saved_model / "1") as export:
        out = export.run("serving_default", {"x": np.array([1.0, 2.5], np.float32)})
        assert sorted(export.signature_defs) == ["__saved_model_init_op", "serving_default"]
    np.testing.assert_allclose(out["y"], [2.0, 5.0])
    assert runtime.load_count() == before + 1


def test_tag_set_must_equal_the_requested_one_as_in_tf_serving(plain_saved_model):
    """{serve, gpu} is not {serve}: TF Serving's FindMetaGraphDef compares whole sets."""
    import tensorflow as tf

    from gradcam_serving import runtime

    with pytest.raises(tf.errors.NotFoundError, match=r"Could not find meta graph def matching supplied tags: \{ serve \}"):
        runtime.ExportSession(plain_saved_model / "2")
    with runtime.ExportSession(plain_saved_model / "2", tags=("gpu", "serve")) as export:
        np.testing.assert_allclose(export.run("serving_default", {"x": np.ones(1, np.float32)})["y"], [3.0])
    assert runtime.matches_tags(["serve"], ("serve",)) and not runtime.matches_tags(["serve", "gpu"], ("serve",))


def test_missing_and_corrupt_exports_fail_with_tf_codes(tmp_path):
    import tensorflow as tf

    from gradcam_serving import runtime

    with pytest.raises(tf.errors.NotFoundError, match="Could not find SavedModel .pb or .pbtxt"):
        runtime.ExportSession(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"\x00garbage")
    with pytest.raises(tf.errors.DataLossError, match="as binary proto"):
        runtime.ExportSession(tmp_path)


def test_unknown_aliases_name_what_the_signature_has(plain_saved_model):
    from gradcam_serving import runtime

    with runtime.ExportSession(plain_saved_model / "1") as export:
        with pytest.raises(KeyError, match=r"has no inputs \['z'\] \(has \['x'\]\)"):
            export.run("serving_default", {"z": np.ones(1, np.float32)})
        with pytest.raises(KeyError, match=r"has no outputs \['w'\]"):
            export.run("serving_default", {"x": np.ones(1, np.float32)}, ["w"])
        with pytest.raises(KeyError, match=r"signature 'explain' is not in"):
            export.run("explain", {})


def test_metadata_of_a_model_that_is_not_an_export(plain_saved_model):
    from gradcam_serving import runtime

    with runtime.ExportSession(plain_saved_model / "1") as export:
        assert export.metadata.methods == () and export.metadata.default_method is None
        assert list(export.warmup_requests()) == []


def test_metadata_round_trips_and_names_the_table():
    from gradcam_serving import signatures as sig
    from gradcam_serving.exports import ExportMetadata

    metadata = ExportMetadata(methods=("layercam", "gradcam"), default_method="layercam", labels=("a", "b"),
                              input_size=(32, 48), max_pixels=4096, num_classes=2, topk=False)
    assert ExportMetadata.from_json(metadata.as_json()) == metadata
    table = metadata.signature_table()
    assert sig.EXPLAIN_TOPK not in table and table[sig.EXPLAIN].method == "layercam"
    assert table[sig.EXPLAIN_BYTES].inputs == (sig.IMAGE_BYTES, sig.CLASS_INDEX)
    assert sig.OVERLAY_PNG in table[sig.explain_signature("gradcam", encoded=True)].outputs


def test_session_config_applies_thread_flags_over_the_file_as_tf_serving_does():
    from google.protobuf import text_format
    from tensorflow.core.protobuf import config_pb2

    from gradcam_serving import runtime

    base = text_format.Parse("intra_op_parallelism_threads: 3 inter_op_parallelism_threads: 5 "
                             "gpu_options { allow_growth: true }", config_pb2.ConfigProto())
    kept = runtime.session_config(base=base)
    assert (kept.intra_op_parallelism_threads, kept.inter_op_parallelism_threads) == (3, 5)
    overridden = runtime.session_config(2, 0, base=base)
    assert (overridden.intra_op_parallelism_threads, overridden.inter_op_parallelism_threads) == (2, 5)
    assert overridden.gpu_options.allow_growth and not overridden.graph_options.place_pruned_graph
    assert base.intra_op_parallelism_threads == 3, "the caller's ConfigProto must not change"
    assert runtime.session_config() == config_pb2.ConfigProto(), "TF Serving's default is the empty ConfigProto"
    assert runtime.tool_session_config().graph_options.place_pruned_graph


def test_run_each_answers_in_request_order_and_raises_the_first_error(plain_saved_model):
    import tensorflow as tf

    from gradcam_serving import runtime

    requests = [("serving_default", {"x": np.full(n, float(n), np.float32)}) for n in range(1, 7)]
    with runtime.ExportSession(plain_saved_model / "1") as export:
        answers = export.run_each(requests, threads=3)
        assert [a["y"].tolist() for a in answers] == [[2.0 * n] * n for n in range(1, 7)]
        seen = []
        export.run_each(requests[:2], run=lambda name, inputs: seen.append(len(inputs["x"])) or {}, threads=1)
        assert seen == [1, 2]
        bad = [requests[0], ("serving_default", {"x": np.zeros((2, 2), np.float32)}), requests[1]]
        with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
            export.run_each(bad, threads=2)


def test_metadata_names_the_layer_and_overlay_drawing():
    from gradcam_serving.exports import ExportMetadata

    metadata = ExportMetadata(methods=("gradcam",), default_method="gradcam", layer="block_16_project",
                              colormap="viridis", overlay_alpha=0.25)
    assert ExportMetadata.from_json(metadata.as_json()) == metadata
    old = ExportMetadata.from_json('{"methods": ["gradcam"], "default_method": "gradcam"}')
    assert (old.layer, old.colormap, old.overlay_alpha) == (None, None, None), "older exports lack these keys"
