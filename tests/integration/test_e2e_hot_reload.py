"""Hot reload with real exports under continuous explain traffic: zero failed requests."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from gradcam_e2e import AVAILABLE, END, LABELS, MODEL, join_all, local_server, run_callers, test_images, wait_until

IMAGES = test_images(2)
V2_LABELS = tuple(label.upper() for label in LABELS)
DATA_LOSS = 15


@pytest.fixture(scope="module")
def reloading(export_v1, tmp_path_factory):
    """A private copy of the v1 base, served with a fast version-folder poll."""
    model_dir = tmp_path_factory.mktemp("reload") / MODEL
    shutil.copytree(export_v1.parent, model_dir)
    with local_server(model_dir) as server:
        yield server, model_dir


def _traffic(server, stop):
    client = server.client()
    outcomes, workers = run_callers(4, lambda: client.explain(IMAGES), stop=stop)
    return client, outcomes, workers


def _write_broken_version(model_dir, version):
    """A corrupt saved_model.pb, written in a non-numeric folder and renamed into place atomically."""
    staging = model_dir / f".tmp-{version}"
    (staging / "variables").mkdir(parents=True)
    (staging / "saved_model.pb").write_bytes(b"\x08this is not a SavedModel proto \xff\xfe" * 8)
    os.rename(staging, model_dir / str(version))


def test_new_version_swaps_in_and_broken_version_keeps_it_serving(reloading, tiny_models):
    from gradcam_serving.exporter import export_model

    server, model_dir = reloading
    stop = threading.Event()
    client, outcomes, workers = _traffic(server, stop)
    try:
        wait_until(lambda: outcomes.count() >= 8, what="traffic on version 1")

        export_model(tiny_models.hub_classifier, model_dir.parent, MODEL, version=2, labels=list(V2_LABELS))
        wait_until(lambda: server.official.states().get(2) == AVAILABLE, what="version 2 AVAILABLE")
        wait_until(lambda: 2 in outcomes.versions, what="a response from version 2")
        wait_until(lambda: server.official.states() == {2: AVAILABLE, 1: END}, what="version 1 unloaded")
        swapped_at = outcomes.count()
        assert set(client.explain(IMAGES).label) <= set(V2_LABELS)
        assert outcomes.failures == []

        _write_broken_version(model_dir, 3)
        wait_until(lambda: server.official.states().get(3) == END, what="version 3's failed load")
        (v3,) = [s for s in server.official.status().model_version_status if s.version == 3]
        assert v3.status.error_code == DATA_LOSS
        assert v3.status.error_message == f"Can't parse {model_dir}/3/saved_model.pb as binary proto"
        after_v3 = outcomes.count()
        wait_until(lambda: outcomes.count() >= after_v3 + 20, what="traffic after the broken version")
    finally:
        stop.set()
        join_all(workers)
        client.close()

    assert outcomes.failures == []
    assert set(outcomes.versions) == {1, 2}
    # Once v1 was unloaded only v2 answered (the 4 callers' last v1 answers may be recorded just after).
    assert set(outcomes.versions[swapped_at + 4:]) == {2}
    assert server.official.states() == {3: END, 2: AVAILABLE, 1: END}
    with server.client() as fresh:
        statuses = {s.version: s for s in fresh.status()}
    assert [statuses[v].state.name for v in (3, 2, 1)] == ["END", "AVAILABLE", "END"]
    assert statuses[3].error_code == "DATA_LOSS" and "saved_model.pb" in statuses[3].error_message
