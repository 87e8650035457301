"""Remote mode: the same pipeline through ``ExplainClient`` against the local server on a loopback port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_data import assert_rows_equal_direct, read_failed, read_rows, write_images


@pytest.fixture(scope="module")
def served(shortcut_export: Path) -> Iterator[Any]:
    from gradcam_e2e import local_server

    with local_server(shortcut_export.parent, model="shortcut") as server:
        yield server


def test_remote_rows_equal_the_export_run_directly(served: Any, shortcut_export: Path, tmp_path: Path) -> None:
    from gradcam_serving.batch import BatchJob, run_batch

    images = write_images(tmp_path / "images", 40, seed=21)
    (tmp_path / "images" / "part1" / "cut.jpg").write_bytes(images.paths[1].read_bytes()[:100])
    job = BatchJob(str(tmp_path / "images"), str(tmp_path / "out"), server=served.target, model="shortcut",
                   methods="all", batch_size=8, overlays=True)
    report = run_batch(job)
    rows = read_rows(tmp_path / "out")
    assert sorted({row["path"] for row in rows}) == sorted(str(p) for p in images.paths)
    assert_rows_equal_direct(rows, shortcut_export, ("gradcam", "layercam"))
    assert all((tmp_path / "out" / row["overlay_file"]).is_file() for row in rows)
    (failure,) = read_failed(tmp_path / "out")
    assert failure["path"].endswith("cut.jpg") and failure["stage"] == "check"
    assert (report.images, report.failed) == (40, 1)


def test_a_server_that_is_gone_loses_nothing(tmp_path: Path) -> None:
    """Nothing listens on the port: every batch ends in the dead-letter output, each image in failed.jsonl."""
    import apache_beam as beam

    from gradcam_serving.batch import ExplainTransform, ReadImages, RemoteExplainModelHandler, WriteExplanations

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    images = write_images(tmp_path / "images", 6, seed=22)
    handler = RemoteExplainModelHandler(f"127.0.0.1:{port}", "shortcut", methods=["gradcam"], timeout=2,
                                        num_retries=0, throttle_delay_secs=0)
    with beam.Pipeline() as pipeline:
        explained = pipeline | ReadImages(str(tmp_path / "images")) | ExplainTransform(handler)
        _ = explained | WriteExplanations(str(tmp_path / "out"))
    assert read_rows(tmp_path / "out") == []
    failed = read_failed(tmp_path / "out")
    assert sorted(line["path"] for line in failed) == sorted(str(p) for p in images.paths)
    assert {line["stage"] for line in failed} == {"server"}
    assert all("Unavailable" in line["error"] for line in failed), failed[0]

