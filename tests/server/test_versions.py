"""Version folders: polling, hot swap without failed requests, broken versions, deletion."""

from __future__ import annotations

import logging
import os
import shutil
import threading

import numpy as np
import pytest

import model_factory as mf
import server_harness
from gradcam_serving import signatures as sig
from gradcam_serving.server import ModelConfig
from gradcam_serving.server._manager import parse_version

AVAILABLE, END = 30, 50


@pytest.mark.parametrize("name, version", [
    pytest.param("1", 1, id="plain"), pytest.param("00000123", 123, id="zero-padded"),
    pytest.param("1.tmp", None, id="suffix"), pytest.param(".tmp-2", None, id="hidden-temp"),
    pytest.param("abc", None, id="word"), pytest.param("-3", -3, id="negative"),
])
def test_version_folder_names_follow_simple_atoi(name, version):
    assert parse_version(name) == version


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("versions"))
    mf.write_model(base, 1, scale=1.0)
    os.makedirs(os.path.join(base, "7.tmp"))  # ignored silently
    return base


@pytest.fixture(scope="module")
def srv(model_dir):
    harness = server_harness.start((ModelConfig("clf", model_dir),))
    yield harness
    harness.close()


def _served_version(srv) -> int:
    return srv.predict(mf.predict_request(mf.images(1))).model_spec.version.value


def test_hot_swap_under_load_then_broken_version_then_delete(srv, model_dir, tmp_path):
    assert srv.states("clf") == {1: AVAILABLE}
    failures: list[BaseException] = []
    versions_seen: set[int] = set()
    stop = threading.Event()

    def client() -> None:
        images = mf.images(2, seed=1)
        while not stop.is_set():
            try:
                response = srv.predict(mf.predict_request(images, sig.EXPLAIN, class_index=np.array([-1, 0], np.int32)))
                versions_seen.add(response.model_spec.version.value)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        # Build the new version outside the base path, then rename it in atomically.
        staging = str(tmp_path / "staging")
        os.makedirs(staging)
        mf.write_model(staging, 2, scale=2.0)
        mf.copy_version(os.path.join(staging, "2"), model_dir, 2)
        server_harness.wait_until(lambda: srv.states("clf") == {2: AVAILABLE, 1: END}, what="swap to v2")
        server_harness.wait_until(lambda: 2 in versions_seen, what="requests served by v2")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert versions_seen == {1, 2}
    want = mf.expected(mf.images(1), scale=2.0)[sig.PROBABILITIES]
    got = srv.predict(mf.predict_request(mf.images(1))).outputs[sig.PROBABILITIES].float_val
    np.testing.assert_allclose(got, want.ravel(), rtol=1e-5)

    # A broken version 3: reported with its error, version 2 keeps serving.
    mf.write_broken(model_dir, 3)
    server_harness.wait_until(lambda: srv.states("clf").get(3) == END, what="v3 load failure")
    row = {s.version: s for s in srv.status("clf").model_version_status}[3]
    assert row.status.error_code == 15  # DATA_LOSS
    assert row.status.error_message == f"Can't parse {model_dir}/3/saved_model.pb as binary proto"
    assert srv.states("clf")[2] == AVAILABLE
    assert _served_version(srv) == 2

    # Deleting folders: the latest remaining folder (1) is loaded again, then 2 unloaded.
    shutil.rmtree(os.path.join(model_dir, "3"))
    shutil.rmtree(os.path.join(model_dir, "2"))
    server_harness.wait_until(lambda: srv.states("clf") == {3: END, 2: END, 1: AVAILABLE}, what="back to v1")
    assert _served_version(srv) == 1
    # Deleting every version folder unloads the model.
    shutil.rmtree(os.path.join(model_dir, "1"))
    server_harness.wait_until(lambda: srv.states("clf")[1] == END, what="v1 unloaded")
    code, details = _error(srv)
    assert (code.name, details) == ("NOT_FOUND", "Servable not found for request: Latest(clf)")


def _error(srv):
    import grpc

    with pytest.raises(grpc.RpcError) as info:
        srv.predict(mf.predict_request(mf.images(1)))
    return info.value.code(), info.value.details()


def test_no_numeric_folder_logs_tf_serving_warning(tmp_path, caplog):
    base = str(tmp_path / "empty")
    os.makedirs(os.path.join(base, "1.tmp"))
    with caplog.at_level(logging.WARNING, logger="gradcam_serving.server"):
        harness = server_harness.start((ModelConfig("empty", base),), file_system_poll_wait_seconds=0)
        harness.close()
    assert (f"No versions of servable empty found under base path {base}. Did you forget to name your leaf "
            "directory as a number (eg. '/1/')?") in caplog.messages
