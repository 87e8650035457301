"""8 threads x 50 explain requests on a real export: zero errors, with and without batching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradcam_e2e import join_all, local_server, run_callers, test_images
from gradcam_serving.server import BatchingOptions

THREADS, REQUESTS = 8, 50
IMAGE = test_images(1)
BATCHING = BatchingOptions(max_batch_size=8, batch_timeout_micros=20_000, max_enqueued_batches=100,
                           num_batch_threads=2)


@pytest.mark.parametrize("batching", [None, BATCHING], ids=["unbatched", "batched"])
def test_concurrent_explain_has_zero_errors(export_v1, in_process, batching):
    want = in_process.run("explain", images=IMAGE, class_index=np.array([-1], np.int32))
    heatmaps = []
    with local_server(export_v1.parent, batching=batching) as server, server.client() as client:
        before = len(server.server.metrics.batch_sizes("clf"))  # warmup replay may have run batches

        def call():
            result = client.explain(IMAGE)
            heatmaps.append(result.heatmap)
            return result

        outcomes, workers = run_callers(THREADS, call, requests=REQUESTS)
        join_all(workers)
        sizes = server.server.metrics.batch_sizes("clf")[before:]

    assert outcomes.failures == []
    assert len(outcomes.versions) == THREADS * REQUESTS
    assert set(outcomes.versions) == {1}
    # Batched or not, every answer is the single-image answer.
    assert max(float(np.abs(h - want["heatmap"]).max()) for h in heatmaps) <= 1e-5
    if batching is None:
        assert sizes == []
    else:
        assert sum(sizes) == THREADS * REQUESTS  # every request went through the batcher
        assert max(sizes) > 1, f"no request was merged: {sizes[:20]}"
        assert max(sizes) <= BATCHING.max_batch_size


def test_batched_top_k_requests_with_different_k_keep_their_own_rows(export_v1, in_process):
    """TF Serving's batching merges requests with different k; each answer must still be its own."""
    want = {k: in_process.run("explain_topk", images=IMAGE, k=np.array([k], np.int32)) for k in (1, 2)}
    answers: list[tuple[int, object]] = []
    with local_server(export_v1.parent, batching=BATCHING) as server, server.client() as client:
        before = len(server.server.metrics.batch_sizes("clf"))

        ks = itertools.cycle((1, 2))

        def call():
            k = next(ks)
            answers.append((k, result := client.explain(IMAGE, top_k=k)))
            return result

        outcomes, workers = run_callers(THREADS, call, requests=REQUESTS)
        join_all(workers)
        sizes = server.server.metrics.batch_sizes("clf")[before:]

    assert outcomes.failures == []
    assert max(sizes) > 1, f"no request was merged: {sizes[:20]}"
    for k, result in answers:
        assert result.top_k == k and result.class_index.shape == (1, k) and result.heatmap.shape[:2] == (1, k)
        np.testing.assert_array_equal(result.class_index, want[k]["class_index"])
        np.testing.assert_allclose(result.heatmap, want[k]["heatmap"], atol=1e-5)
