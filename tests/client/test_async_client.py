"""AsyncExplainClient: the same behaviour as the blocking twin, on grpc.aio.

No async test plugin is installed, so each test runs its coroutine with
``asyncio.run`` (a fresh event loop per test, which the client must cope with).
"""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest
from client_fakes import AVAILABLE, FAST_RETRY, LOADING, MODEL, PROBABILITIES, VERSION, Serving, rgb_images

from gradcam_serving.client import AsyncExplainClient, Explanation, ModelState, Prediction, Retry
from gradcam_serving.errors import DeadlineExceededError, InvalidArgumentError, UnavailableError

UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, "connection refused")


def open_client(fake: Serving, **kwargs) -> AsyncExplainClient:
    kwargs.setdefault("retries", FAST_RETRY)
    return AsyncExplainClient(fake.target, MODEL, **kwargs)


def test_predict_and_explain_decode_like_the_blocking_client(fake: Serving) -> None:
    images = rgb_images(2, 5, 7)

    async def main() -> tuple[Prediction, Explanation]:
        async with open_client(fake) as client:
            return await client.predict(images), await client.explain(images, [2, -1])

    prediction, explanation = asyncio.run(main())
    np.testing.assert_array_equal(prediction.probabilities, [PROBABILITIES] * 2)
    assert prediction.label == ("rosé", "rosé")
    assert prediction.model_spec.signature_name == "predict"
    np.testing.assert_array_equal(explanation.class_index, [2, 1])
    assert explanation.label == ("tulip", "rosé")
    np.testing.assert_allclose(explanation.heatmap, images[..., 0] / 255.0, rtol=1e-6)
    assert explanation.model_spec.version == VERSION


def test_unavailable_is_retried_and_invalid_argument_is_not(fake: Serving) -> None:
    fake.backend.failures = [UNAVAILABLE, UNAVAILABLE]

    async def main() -> None:
        async with open_client(fake) as client:
            assert (await client.predict(rgb_images(1))).label == ("rosé",)
            fake.backend.failures = [(grpc.StatusCode.INVALID_ARGUMENT, "bad class")]
            with pytest.raises(InvalidArgumentError, match="bad class") as caught:
                await client.predict(rgb_images(1))
            assert caught.value.details == "bad class"

    asyncio.run(main())
    assert fake.backend.methods() == ["Predict"] * 4  # 2 failures + success, then 1 refused


def test_unavailable_after_the_last_retry_is_raised(fake: Serving) -> None:
    fake.backend.failures = [UNAVAILABLE] * 5

    async def main() -> None:
        async with open_client(fake, retries=Retry(retries=1, backoff=0.01)) as client:
            with pytest.raises(UnavailableError, match="connection refused"):
                await client.status()

    asyncio.run(main())
    assert fake.backend.methods() == ["GetModelStatus"] * 2


def test_a_slow_answer_raises_deadline_exceeded(fake: Serving) -> None:
    fake.backend.delay = 0.5

    async def main() -> None:
        async with open_client(fake, timeout=0.1) as client:
            with pytest.raises(DeadlineExceededError):
                await client.explain(rgb_images(1))

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 0.45


def test_responses_over_four_megabytes_are_received(fake: Serving) -> None:
    fake.backend.tensor_content = True

    async def main() -> Explanation:
        async with open_client(fake) as client:
            return await client.explain(rgb_images(32, 224, 224))

    assert asyncio.run(main()).heatmap.shape == (32, 224, 224)


def test_metadata_status_and_wait_until_ready(fake: Serving) -> None:
    fake.backend.status_answers = [[(VERSION, LOADING)], [(VERSION, AVAILABLE)]]

    async def main():
        async with open_client(fake) as client:
            ready = await client.wait_until_ready(5.0, poll_interval=0.01)
            return ready, await client.status(), await client.metadata()

    ready, statuses, metadata = asyncio.run(main())
    assert [s.state for s in ready] == [ModelState.AVAILABLE]
    assert statuses == ready
    assert metadata.signatures["explain"].inputs["class_index"].dtype == "int32"
    assert fake.backend.methods() == ["GetModelStatus"] * 3 + ["GetModelMetadata"]


def test_wait_until_ready_times_out(fake: Serving) -> None:
    fake.backend.status_answers = [[(VERSION, LOADING)]]

    async def main() -> None:
        async with open_client(fake) as client:
            with pytest.raises(DeadlineExceededError, match="within 0.2 s.*LOADING"):
                await client.wait_until_ready(0.2, poll_interval=0.05)

    asyncio.run(main())


def test_a_closed_client_refuses_reuse(fake: Serving) -> None:
    async def main() -> None:
        client = open_client(fake)
        async with client:
            await client.predict(rgb_images(1))
        assert client.is_closed
        await client.aclose()  # idempotent
        with pytest.raises(RuntimeError, match="client has been closed"):
            await client.predict(rgb_images(1))
        with pytest.raises(RuntimeError, match="Cannot reopen a client instance, once it has been closed."):
            async with client:
                pass

    asyncio.run(main())


def test_input_errors_are_raised_before_any_rpc(fake: Serving) -> None:
    async def main() -> None:
        async with open_client(fake) as client:
            with pytest.raises(ValueError, match="class_index has 1 values but 2 images"):
                await client.explain(rgb_images(2), [3])

    asyncio.run(main())
    assert fake.backend.calls == []


def test_the_timeout_bounds_the_whole_call_including_retries(fake: Serving) -> None:
    fake.backend.failures = [UNAVAILABLE] * 10

    async def main() -> None:
        retry = Retry(retries=4, backoff=0.2, multiplier=1.0, max_backoff=0.2)
        async with open_client(fake, timeout=0.3, retries=retry) as client:
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError) as caught:
                await client.predict(rgb_images(1))
            assert time.monotonic() - started < 0.3 + 0.1
            assert isinstance(caught.value.__cause__, grpc.RpcError)
            assert fake.backend.arrivals[-1] - started < 0.3

    asyncio.run(main())
    assert 2 <= len(fake.backend.methods()) <= 5


def test_a_retry_gets_only_the_time_left(fake: Serving) -> None:
    fake.backend.failures = [UNAVAILABLE]
    fake.backend.delay = 1.0

    async def main() -> None:
        async with open_client(fake, timeout=0.4, retries=Retry(retries=1, backoff=0.2)) as client:
            with pytest.raises(DeadlineExceededError):
                await client.predict(rgb_images(1))

    started = time.monotonic()
    asyncio.run(main())
    assert 0.35 < time.monotonic() - started < 0.55
