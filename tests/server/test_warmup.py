"""assets.extra/tf_serving_warmup_requests replayed on load; bad warmup data fails the load."""

from __future__ import annotations

import os
import shutil

import pytest

import model_factory as mf
import server_harness
from gradcam_serving import signatures as sig
from gradcam_serving.server import ModelConfig, ServingError, create_server, ServerOptions
from gradcam_serving.server._manager import ModelRef


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("warm_template"))
    return mf.write_model(base, 1)


def _model_with_warmup(template: str, root, name: str, **warmup) -> str:
    base = str(root / name)
    version = os.path.join(base, "1")
    shutil.copytree(template, version)
    mf.write_warmup(version, **warmup)
    return base


def _session_runs(harness, name: str) -> int:
    with harness.server.core.manager.servable(ModelRef(name)) as servable:
        return servable.session_run_count


@pytest.mark.parametrize("enabled, runs", [pytest.param(True, 3, id="enabled"), pytest.param(False, 0, id="disabled")])
def test_warmup_records_are_replayed(template, tmp_path, enabled, runs):
    requests = [mf.predict_request(mf.images(2)), mf.predict_request(mf.images(1), sig.SERVING_DEFAULT),
                mf.predict_request(mf.images(1), sig.EXPLAIN, class_index=mf.np.array([1], mf.np.int32))]
    base = _model_with_warmup(template, tmp_path, "warm", requests=requests)
    harness = server_harness.start((ModelConfig("warm", base),), enable_model_warmup=enabled)
    try:
        assert _session_runs(harness, "warm") == runs
        assert harness.predict(mf.predict_request(mf.images(1), model="warm")).model_spec.version.value == 1
    finally:
        harness.close()


def _start_error(base: str) -> ServingError:
    options = ServerOptions(models=(ModelConfig("warm", base),), port=0, host="127.0.0.1", max_num_load_retries=0)
    with pytest.raises(ServingError) as info:
        create_server(options)
    return info.value


def _expect(base: str, status: str) -> None:
    error = _start_error(base)
    assert error.code.name == "UNKNOWN"
    assert error.message == f"1 servable(s) did not become available: {{{{{{name: warm version: 1}} due to error: {status}}}, }}"


def test_failing_warmup_request_fails_the_load(template, tmp_path):
    base = _model_with_warmup(template, tmp_path, "bad_sig", requests=[mf.predict_request(mf.images(1), "nope")])
    _expect(base, 'FAILED_PRECONDITION: Serving signature key "nope" not found.')


def test_corrupt_warmup_file_fails_the_load(template, tmp_path):
    base = _model_with_warmup(template, tmp_path, "corrupt", raw=b"definitely not a tfrecord file at all")
    error = _start_error(base)
    assert "due to error: DATA_LOSS: " in error.message
    assert error.message.endswith(". Please verify your warmup data is in TFRecord format.}, }")


def test_more_than_1000_records_fail_the_load(template, tmp_path):
    request = mf.predict_request(mf.images(1))
    base = _model_with_warmup(template, tmp_path, "many", requests=[request] * 1001)
    path = os.path.join(base, "1", "assets.extra", "tf_serving_warmup_requests")
    _expect(base, f"INVALID_ARGUMENT: Number of warmup records exceeds the maximum (1000) at {path}")


def test_the_session_config_file_builds_the_sessions_and_thread_flags_override_it(template, tmp_path):
    """As in TF Serving: --tensorflow_session_config_file is every Session's ConfigProto; the thread flags win."""
    from gradcam_serving.server import parse_flags
    from gradcam_serving.server._servable import SessionSettings, load_servable

    config_file = tmp_path / "session_config.pbtxt"
    config_file.write_text("graph_options { place_pruned_graph: true }\nintra_op_parallelism_threads: 3\n"
                           "inter_op_parallelism_threads: 4\n")
    options = parse_flags([f"--model_base_path={tmp_path}", f"--tensorflow_session_config_file={config_file}",
                           "--tensorflow_intra_op_parallelism=1"])
    settings = SessionSettings(intra_op_parallelism=options.intra_op_parallelism,
                               inter_op_parallelism=options.inter_op_parallelism,
                               config_text=options.session_config_text)
    servable = load_servable("clf", 1, template, settings)
    try:
        config = servable.session_config
        assert config.graph_options.place_pruned_graph
        assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, 4)
        default = load_servable("clf", 1, template, SessionSettings())
        assert not default.session_config.graph_options.place_pruned_graph, "TF Serving's default has no pruning"
        default.close()
    finally:
        servable.close()
