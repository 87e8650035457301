"""A version that failed to load is retried once its folder is replaced (the mid-copy case)."""

from __future__ import annotations

import os
import shutil

import model_factory as mf
import server_harness
from gradcam_serving.server import ModelConfig

AVAILABLE, END = 30, 50


def test_failed_version_loads_after_its_folder_is_replaced(tmp_path):
    base = str(tmp_path / "clf")
    mf.write_model(base, 1, scale=1.0)
    harness = server_harness.start((ModelConfig("clf", base),))
    try:
        server_harness.wait_until(lambda: harness.states("clf") == {1: AVAILABLE}, what="v1")
        os.makedirs(os.path.join(base, "2", "variables"))  # picked up mid-copy: no saved_model.pb yet
        server_harness.wait_until(lambda: harness.states("clf") == {2: END, 1: AVAILABLE}, what="v2 to fail")
        shutil.rmtree(os.path.join(base, "2"))
        server_harness.wait_until(lambda: _folder_gone(harness, 2), what="the poll to see v2's folder gone")
        assert harness.states("clf") == {2: END, 1: AVAILABLE}  # the failure stays visible, as in TF
        mf.write_model(base, 2, scale=2.0)  # written to a temp folder and renamed into place
        server_harness.wait_until(lambda: harness.states("clf").get(2) == AVAILABLE, what="v2 to load")
        response = harness.predict(mf.predict_request(mf.images()))
        assert response.model_spec.version.value == 2
    finally:
        harness.close()


def _folder_gone(harness, version: int) -> bool:
    model = harness.server.core.manager._models["clf"]  # noqa: SLF001 - the poll's own view
    return model.versions[version].folder_gone
