"""The asyncio client on ``grpc.aio``: :class:`ExplainClient`'s twin.

Requests, decoding, validation and readiness bookkeeping come from
:class:`BaseExplainClient`; only sending, sleeping and closing differ, so the
method docs live on the blocking twin.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import grpc
import grpc.aio

from gradcam_serving.client._base import (
    NO_RETRY,
    WAITABLE_ERRORS,
    BaseExplainClient,
    Call,
    Deadline,
    ReadinessPoll,
    fallback_for,
    map_rpc_errors,
    serialize,
)
from gradcam_serving.client._config import USE_CLIENT_DEFAULT, Retry, TimeoutTypes, UseClientDefault
from gradcam_serving.client._types import VersionStatus
from gradcam_serving.errors import FailedPreconditionError, UnimplementedError

if TYPE_CHECKING:
    from gradcam_serving.client._images import Images
    from gradcam_serving.client._types import Explanation, ModelMetadata, Prediction

__all__ = ["AsyncExplainClient"]

T = TypeVar("T")
_Timeout = TimeoutTypes | UseClientDefault


class AsyncExplainClient(BaseExplainClient):
    """Asyncio client with the same methods as :class:`ExplainClient`, as coroutines.

    Configuration is documented on ``__init__``. The channel is created on the
    first call, inside the running event loop; close with :meth:`aclose` or
    ``async with``.

    Example:
        >>> async with AsyncExplainClient("localhost:8500", "flowers") as client:  # doctest: +SKIP
        ...     await client.wait_until_ready(30)
        ...     result = await client.explain(["a.jpg", "b.jpg"], class_index=[3, 7])
    """

    async def __aenter__(self) -> AsyncExplainClient:
        self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the channel; the client cannot be used (or reopened) afterwards."""
        for channel in self._take_channels_for_close():
            await channel.close()

    async def predict(self, images: Images, *, timeout: _Timeout = USE_CLIENT_DEFAULT) -> Prediction:
        """See :meth:`ExplainClient.predict`."""
        return await self._send(self._predict_call(images), timeout)

    async def explain(
        self,
        images: Images,
        class_index: int | Sequence[int] | None = None,
        *,
        method: str | None = None,
        top_k: int | None = None,
        timeout: _Timeout = USE_CLIENT_DEFAULT,
    ) -> Explanation:
        """See :meth:`ExplainClient.explain`."""
        call = self._explain_call(images, class_index, method, top_k)
        try:
            return await self._send(call, timeout)
        except FailedPreconditionError as exc:
            if not self._asked_for_missing(call, exc, method, top_k):
                raise
            raise self._not_exported(method, top_k, await self.metadata(timeout=timeout)) from exc

    async def metadata(self, *, timeout: _Timeout = USE_CLIENT_DEFAULT) -> ModelMetadata:
        """See :meth:`ExplainClient.metadata`."""
        return await self._send(self._metadata_call(), timeout)

    async def status(self, *, timeout: _Timeout = USE_CLIENT_DEFAULT) -> list[VersionStatus]:
        """See :meth:`ExplainClient.status`."""
        return await self._send(self._status_call(), timeout)

    async def wait_until_ready(self, timeout: float = 30.0, *, poll_interval: float = 0.1) -> list[VersionStatus]:
        """See :meth:`ExplainClient.wait_until_ready`."""
        poll = ReadinessPoll(self, timeout, poll_interval, time.monotonic)
        while (budget := poll.next_budget()) is not None:
            try:
                statuses = await self._probe(budget)
            except WAITABLE_ERRORS as exc:
                poll.record(exc)
            else:
                if poll.ready(statuses):
                    return statuses or []
            await asyncio.sleep(poll.pause())
        raise poll.error() from poll.last_exception

    async def _probe(self, budget: float) -> list[VersionStatus] | None:
        try:
            return await self._send(self._status_call(), budget, NO_RETRY)
        except UnimplementedError:
            await self._send(self._metadata_call(), budget, NO_RETRY)
            return None

    async def _send(self, call: Call[T], timeout: _Timeout, retry: Retry | None = None) -> T:
        """Send one call; a ``*_bytes`` call on an export without it falls back once (``fallback_for``)."""
        deadline = self._deadline(timeout)  # one deadline for the whole call, fallback included
        try:
            return await self._attempt(call, deadline, retry)
        except FailedPreconditionError as exc:
            fallback = fallback_for(call, exc)
            if fallback is None:
                raise
        return await self._attempt(fallback, deadline, retry)

    async def _attempt(self, call: Call[T], deadline: Deadline, retry: Retry | None = None) -> T:
        """Send one call within what is left of ``deadline``; the channel's gRPC retry policy retries UNAVAILABLE."""
        stub = self._live_channel(grpc.aio, retry).unary_unary(
            call.method, request_serializer=serialize, response_deserializer=call.response_type.FromString
        )
        with map_rpc_errors():
            return call.decode(await stub(call.request, timeout=deadline.budget()))
