"""validate: TF Serving's view of an export, as a pass/fail report and exit code."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from gradcam_serving.cli import cli
from gradcam_serving.exporter import WARMUP_FILE, export_model, validate_export


@pytest.fixture(scope="module")
def export(tiny_models, tmp_path_factory):
    return export_model(
        tiny_models.hub_classifier, tmp_path_factory.mktemp("validate"), "clf", methods="gradcam,eigencam"
    ).path


def _by_name(report):
    return {check.name: check for check in report.checks}


def test_export_writes_one_small_warmup_record_per_signature(export):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    records = [prediction_log_pb2.PredictionLog.FromString(r) for r in tf.data.TFRecordDataset(str(export / WARMUP_FILE)).as_numpy_iterator()]
    names = sorted(r.predict_log.request.model_spec.signature_name for r in records)
    assert names == [
        "explain", "explain_bytes", "explain_bytes_eigencam", "explain_bytes_gradcam", "explain_eigencam",
        "explain_gradcam", "explain_topk", "explain_topk_bytes", "predict", "predict_bytes", "serving_default",
    ]
    for record in records:
        inputs = record.predict_log.request.inputs
        if "images" in inputs:
            images = tf.make_ndarray(inputs["images"])
            assert images.shape == (1, 48, 48, 3) and images.dtype == np.uint8
        else:
            assert tf.make_ndarray(inputs["image_bytes"]).shape == (1,)


def test_good_export_passes(export):
    report = validate_export(export)
    assert report.passed, report.checks
    checks = _by_name(report)
    assert checks["warmup records"].ok is True and "11 records" in checks["warmup records"].detail
    assert checks["heatmaps of every method"].ok is True
    assert "8 explain signatures" in checks["heatmaps of every method"].detail
    assert checks["no refused ops (PyFunc, file system)"].ok is True
    assert checks["signature contract"].ok is True and "all 10 signatures" in checks["signature contract"].detail
    assert checks["answers of every signature"].ok is True, checks["answers of every signature"].detail
    assert "heatmap: float32[-1,-1,-1]" in report.signatures["explain"]["outputs"]
    assert "class_index: int32[?]" in report.signatures["explain"]["inputs"]


@pytest.mark.parametrize(
    ("outputs", "problem"),
    [
        ({"heatmap": np.full((2, 8, 8), 1.5, np.float32)}, r"values in \[1\.5, 1\.5\], expected \[0, 1\]"),
        ({"heatmap": np.full((2, 8, 8), np.nan, np.float32)}, r"non-finite"),
        ({"heatmap": np.zeros((2, 8, 9), np.float32)}, r"heatmap size \(8, 9\) differs"),
        ({"heatmap": np.zeros((3, 8, 8), np.float32)}, r"heatmap shape \(3, 8, 8\) for 2 images"),
        ({"heatmap": np.zeros((2, 8, 8), np.float32), "cam": -np.ones((2, 2, 2), np.float32)}, r"minimum -1"),
    ],
)
def test_bad_heatmaps_fail_the_method_check(outputs, problem):
    from gradcam_serving import signatures as sig
    from gradcam_serving.exporter._validate import ValidationReport, _check_heatmaps

    report = ValidationReport(export_dir=None)
    inputs = {"images": np.zeros((2, 8, 8, 3), np.uint8), "class_index": np.zeros(2, np.int32)}
    _check_heatmaps(report, sig.signature_table(("layercam",)), [("predict", inputs, {}), ("explain_layercam", inputs, outputs)])
    (check,) = report.checks
    assert check.ok is False
    assert check.detail.startswith("explain_layercam: ") and re.search(problem, check.detail), check.detail


def _warmup_names(version):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    return [
        prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request.model_spec.signature_name
        for raw in tf.data.TFRecordDataset(str(version / WARMUP_FILE)).as_numpy_iterator()
    ]


@pytest.mark.parametrize(
    ("warmup", "recorded"),
    [
        pytest.param("default", ["predict", "predict_bytes", "explain", "explain_bytes", "explain_topk",
                                 "explain_topk_bytes", "serving_default"], id="default"),
        pytest.param("explain_eigencam, predict", ["predict", "explain_eigencam"], id="names"),
        pytest.param("none", None, id="none"),
    ],
)
def test_export_warmup_chooses_the_records_and_validate_still_runs_every_signature(
    tiny_models, tmp_path, warmup, recorded
):
    version = export_model(tiny_models.hub_classifier, tmp_path, "clf", methods="gradcam,eigencam", warmup=warmup).path
    if recorded is None:
        assert not (version / WARMUP_FILE).exists()
    else:
        assert _warmup_names(version) == recorded
    report = validate_export(version)
    assert report.passed, report.checks
    checks = _by_name(report)
    skipped = 11 - len(recorded or [])
    assert checks["signatures without warmup"].ok is None  # a warning: the choice costs first-request latency
    assert checks["signatures without warmup"].detail.startswith(f"{skipped} run here with sample images")
    assert "11 signatures answered" in checks["answers of every signature"].detail
    assert "8 explain signatures" in checks["heatmaps of every method"].detail


def test_unknown_warmup_name_fails_before_loading(tmp_path):
    with pytest.raises(ValueError, match=r"'explain_layercam' is not a signature of this export.*explain_eigencam"):
        export_model("does-not-exist", tmp_path, "m", methods="gradcam,eigencam", warmup="predict,explain_layercam")


def test_corrupt_warmup_fails(export, tmp_path):
    copy = tmp_path / "1"
    shutil.copytree(export, copy)
    (copy / WARMUP_FILE).write_bytes(b"not a tfrecord at all")
    report = validate_export(copy)
    assert not report.passed
    assert _by_name(report)["warmup records"].ok is False


def test_model_without_the_contract_fails(tmp_path):
    import tensorflow as tf

    class Plain(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return {"y": x * 2.0}

    module = Plain()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serve})
    report = validate_export(tmp_path / "1")
    check = _by_name(report)["signature contract"]
    assert check.ok is False and "missing signature 'predict'" in check.detail


def test_cli_exit_codes(export, tmp_path):
    good = CliRunner().invoke(cli, ["validate", str(export)])
    assert good.exit_code == 0 and good.stdout.strip().endswith("PASS")
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"garbage")
    bad = CliRunner().invoke(cli, ["validate", str(tmp_path / "1")])
    assert bad.exit_code == 1
    assert "[FAIL] loads with the TF1 loader" in bad.stdout and bad.stdout.strip().endswith("FAIL")


def test_garbage_warmup_record_is_a_fail_line_not_a_crash(export, tmp_path):
    import tensorflow as tf

    copy = tmp_path / "1"
    shutil.copytree(export, copy)
    with tf.io.TFRecordWriter(str(copy / WARMUP_FILE)) as writer:
        writer.write(b"\xff\xff garbage, not a PredictionLog")
    check = _by_name(validate_export(copy))["warmup records"]
    assert check.ok is False and "not a tensorflow.serving.PredictionLog" in check.detail


def test_model_folder_instead_of_version_folder_gets_a_hint(export):
    check = _by_name(validate_export(export.parent))["loads with the TF1 loader and the 'serve' tag"]
    assert check.ok is False and "pass a version folder" in check.detail


def test_the_gate_runs_each_saved_function_once():
    """Aliases (serving_default of predict, explain of explain_<default>) are not checked twice."""
    import tf_keras

    from gradcam_serving.exporter._export import GradcamModule, _analyse, _one_request_per_function
    from gradcam_serving.exporter._warmup import sample_requests

    model = tf_keras.Sequential([
        tf_keras.Input((32, 32, 3)), tf_keras.layers.Conv2D(4, 3, activation="relu"),
        tf_keras.layers.GlobalAveragePooling2D(), tf_keras.layers.Dense(3),
    ])
    _, graph = _analyse(model, None, None, None, lambda *_: None)
    methods = ("layercam", "gradcam")
    module = GradcamModule(graph, graph.resolve_layer("auto"), methods=methods)
    requests = sample_requests(graph.input_size, graph.num_classes, methods)
    checked = _one_request_per_function(module, requests)
    assert set(requests) - set(checked) == {"serving_default", "explain_layercam", "explain_bytes_layercam"}
    assert {"predict", "explain", "explain_gradcam", "explain_bytes_gradcam", "explain_topk"} <= set(checked)


def test_validate_loads_the_export_once(export):
    """Every check and every warmup record runs in one loaded Session, as TF Serving has one."""
    from gradcam_serving import runtime

    before = runtime.load_count()
    assert validate_export(export).passed
    assert runtime.load_count() - before == 1


def _write_fake_export(folder, *, wrong: str | None = None):
    """A gradcam-serving export written by hand from the signature table, ``wrong``'s map 3 x 3 pixels."""
    from fake_exports import write_fake_export

    return write_fake_export(folder, wrong=wrong)


@pytest.mark.parametrize("wrong", ["explain_bytes", "explain_topk_bytes", "explain_bytes_gradcam"])
def test_a_bytes_signature_answering_the_wrong_shape_fails(tmp_path, wrong):
    good = _by_name(validate_export(_write_fake_export(tmp_path / "good" / "1")))
    assert good["signature contract"].ok is True and good["answers of every signature"].ok is True, good
    checks = _by_name(validate_export(_write_fake_export(tmp_path / "bad" / "1", wrong=wrong)))
    check = checks["answers of every signature"]
    assert check.ok is False and check.detail.startswith(f"{wrong}: heatmap has shape"), check.detail
    assert "expected (1, 8, 8)" in check.detail or "expected (1, 1, 8, 8)" in check.detail, check.detail


def test_gpu_check_leaves_out_image_decoding_and_png_encoding(export):
    """TF Serving runs decoding and PNG encoding on the host by design; only compute-path ops are named."""
    from gradcam_serving.exporter._validate import ValidationReport, _check_ops, _compute_ops, _op_types
    from gradcam_serving.runtime import ExportSession

    with ExportSession(export) as session:
        ops, compute = _op_types(session.meta_graph), _compute_ops(session)
    assert {"DecodeImage", "EncodePng"} <= ops - compute or {"DecodePng", "EncodePng"} <= ops - compute, ops - compute
    assert {"Conv2D", "Softmax"} <= compute
    report = ValidationReport(export)
    no_gpu = {"EncodePng", "DecodeImage", "DecodePng", "DecodeJpeg", "Conv2D"}
    _check_ops(report, ops, compute, has_gpu_kernel=lambda op: op not in no_gpu, built_with_gpu=True)
    check = _by_name(report)["GPU kernels"]
    assert check.ok is None and check.detail.endswith("the host CPU): Conv2D"), check.detail


def test_gpu_check_leaves_out_the_exports_own_label_text(export):
    """Without ``labels`` the export writes class indices as text (AsString, host-only): its own design, no warning."""
    from gradcam_serving.exporter._validate import ValidationReport, _check_ops, _compute_ops, _op_types
    from gradcam_serving.runtime import ExportSession

    with ExportSession(export) as session:
        assert session.metadata.labels is None
        ops, compute = _op_types(session.meta_graph), _compute_ops(session)
    assert "AsString" in ops and "AsString" not in compute, sorted(compute)
    report = ValidationReport(export)
    _check_ops(report, ops, compute, has_gpu_kernel=lambda op: op != "AsString", built_with_gpu=True)
    check = _by_name(report)["GPU kernels"]
    assert check.ok is True and "label text" in check.detail, check.detail
