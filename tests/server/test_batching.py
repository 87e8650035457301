"""--enable_batching: requests merged into one Session.run, TF's batching errors, load tests."""

from __future__ import annotations

import concurrent.futures

import grpc
import numpy as np
import pytest

import model_factory as mf
import server_harness
from gradcam_serving import signatures as sig
from gradcam_serving.server import BatchingOptions, ModelConfig

THREADS, PER_THREAD = 8, 50


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("batching"))
    mf.write_model(path, 1)
    return path


@pytest.fixture(scope="module")
def batched(base):
    options = BatchingOptions(max_batch_size=8, batch_timeout_micros=100_000, max_enqueued_batches=100,
                              num_batch_threads=2, allowed_batch_sizes=(4, 8))
    harness = server_harness.start((ModelConfig("clf", base),), batching=options)
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def unbatched(base):
    harness = server_harness.start((ModelConfig("clf", base),))
    yield harness
    harness.close()


def _session_runs(harness) -> int:
    from gradcam_serving.server._manager import ModelRef

    with harness.server.core.manager.servable(ModelRef("clf")) as servable:
        return servable.session_run_count


def _load(harness, signature: str = sig.PREDICT) -> list[BaseException]:
    """8 threads x 50 requests of 1-2 images; every answer is checked against numpy."""
    def worker(seed: int) -> list[BaseException]:
        errors: list[BaseException] = []
        for i in range(PER_THREAD):
            images = mf.images(1 + (i % 2), seed=seed * 1000 + i)
            try:
                response = harness.predict(mf.predict_request(images, signature))
                got = np.asarray(response.outputs[sig.PROBABILITIES].float_val).reshape(-1, 3)
                np.testing.assert_allclose(got, mf.expected(images)[sig.PROBABILITIES], rtol=1e-5)
            except BaseException as exc:  # noqa: BLE001 - returned and asserted
                errors.append(exc)
        return errors

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        return [e for errors in pool.map(worker, range(THREADS)) for e in errors]


def test_load_without_batching_runs_one_session_call_per_request(unbatched):
    before = _session_runs(unbatched)
    assert _load(unbatched) == []
    assert _session_runs(unbatched) - before == THREADS * PER_THREAD
    assert unbatched.server.metrics.batch_sizes("clf") == []


def test_load_with_batching_merges_requests(batched):
    before_runs, before_batches = _session_runs(batched), len(batched.server.metrics.batch_sizes("clf"))
    assert _load(batched) == []
    sizes = batched.server.metrics.batch_sizes("clf")[before_batches:]
    runs = _session_runs(batched) - before_runs
    assert runs == len(sizes) < THREADS * PER_THREAD
    assert sum(sizes) == THREADS * PER_THREAD * 3 // 2  # every image ran exactly once
    assert max(sizes) > 2  # several requests shared a Session.run
    padded = batched.server.metrics.padded_batch_sizes("clf")[before_batches:]
    assert set(padded) <= {4, 8} and all(p >= s for p, s in zip(padded, sizes))


def test_different_image_sizes_run_in_separate_batches(batched):
    small, large = mf.images(1, size=4, seed=3), mf.images(1, size=6, seed=4)
    before = len(batched.server.metrics.batch_sizes("clf"))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batched.predict, mf.predict_request(img)) for img in (small, large, small, large)]
        responses = [f.result() for f in futures]
    for img, response in zip((small, large, small, large), responses):
        np.testing.assert_allclose(response.outputs[sig.SCORE].float_val, mf.expected(img)[sig.SCORE], rtol=1e-5)
    sizes = batched.server.metrics.batch_sizes("clf")[before:]
    assert sum(sizes) == 4 and len(sizes) >= 2


def test_explain_is_batched_too(batched):
    images, classes = mf.images(3, seed=9), np.array([2, -1, 0], np.int32)
    response = batched.predict(mf.predict_request(images, sig.EXPLAIN, class_index=classes))
    heatmap = np.asarray(response.outputs[sig.HEATMAP].float_val).reshape(3, 4, 4)
    np.testing.assert_allclose(heatmap, mf.expected(images, 1.0, classes)[sig.HEATMAP], rtol=1e-5, atol=1e-6)
    assert batched.server.metrics.padded_batch_sizes("clf")[-1] == 4  # 3 rows padded up to 4, then sliced off


def _err(harness, request):
    with pytest.raises(grpc.RpcError) as info:
        harness.predict(request)
    return info.value.code(), info.value.details()


def test_task_larger_than_max_batch_size(batched):
    assert _err(batched, mf.predict_request(mf.images(9))) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Task size 9 is larger than maximum input batch size 8")


def test_inputs_must_share_0th_dimension(batched):
    request = mf.predict_request(mf.images(2), sig.EXPLAIN, class_index=np.array([0, 1, 2], np.int32))
    assert _err(batched, request) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Batching Run() input tensors must have equal 0th-dimension size")


@pytest.fixture(scope="module")
def pairs(base):
    """Batches of exactly two rows: a one-row request waits (for ten minutes) until a second one fills its batch.

    So two concurrent one-row requests share one batch whatever the threads' timing, and a batch that ran
    one alone would leave its request waiting past the RPC deadline, failing the test rather than passing it.
    """
    options = BatchingOptions(max_batch_size=2, batch_timeout_micros=600_000_000, max_enqueued_batches=100,
                              num_batch_threads=1)
    harness = server_harness.start((ModelConfig("clf", base),), batching=options)
    yield harness
    harness.close()


def _together(harness, *requests) -> list[BaseException | None]:
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        return [f.exception() for f in [pool.submit(harness.predict, r) for r in requests]]


def _explain_one(class_index: int):
    return mf.predict_request(mf.images(1), sig.EXPLAIN, class_index=np.array([class_index], np.int32))


def test_two_good_requests_share_one_session_run(pairs):
    before = _session_runs(pairs)
    assert _together(pairs, _explain_one(0), _explain_one(1)) == [None, None]
    assert _session_runs(pairs) - before == 1
    assert pairs.server.metrics.batch_sizes("clf")[-1] == 2


def test_failure_in_a_batch_fails_the_whole_batch(pairs):
    """As in TF Serving: one request tripping the in-graph assert fails its batch mate too."""
    before = _session_runs(pairs)
    good, bad = _together(pairs, _explain_one(0), _explain_one(5))
    assert _session_runs(pairs) - before == 1  # one Session.run for both, and it failed
    assert isinstance(bad, grpc.RpcError)
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "class_index out of range" in bad.details()
    assert isinstance(good, grpc.RpcError) and (good.code(), good.details()) == (bad.code(), bad.details())


def test_full_queue_is_unavailable(base):
    options = BatchingOptions(max_batch_size=1, batch_timeout_micros=0, max_enqueued_batches=1, num_batch_threads=1)
    harness = server_harness.start((ModelConfig("clf", base),), batching=options)
    try:
        big = mf.predict_request(np.zeros((1, 600, 600, 3), np.uint8), sig.EXPLAIN, class_index=np.zeros(1, np.int32))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(harness.predict, big) for _ in range(8)]
            errors = [f.exception() for f in futures]
        unavailable = [e for e in errors if e is not None]
        assert unavailable, "expected some requests to find the queue full"
        assert all(e.code() == grpc.StatusCode.UNAVAILABLE for e in unavailable)
        assert {e.details() for e in unavailable} == {
            "The batch scheduling queue to which this task was submitted is full"}
    finally:
        harness.close()
