"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import grpc

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

__all__ = ["ExplainClient"]

T = TypeVar("T")
_Timeout = TimeoutTypes | UseClientDefault


class ExplainClient(BaseExplainClient):
    """Blocking client for a model served with ``predict`` and ``explain`` signatures.

    Speaks TF Serving's gRPC API (TF Serving itself or the project's local
    server) without importing TensorFlow. Every call gets a deadline, retries
    only ``UNAVAILABLE`` (gRPC's retry policy, jittered backoff), and raises
    :class:`gradcam_serving.errors.RpcError` subclasses on failure.

    Configuration is documented on ``__init__`` (shared with :class:`AsyncExplainClient`).

    Example:
        >>> with ExplainClient("localhost:8500", "flowers") as client:  # doctest: +SKIP
        ...     client.wait_until_ready(30)
        ...     result = client.explain("tulip.jpg")  # sent undecoded to explain_bytes
        ...     Path("tulip_cam.png").write_bytes(result.overlay_png[0])
    """

    def __enter__(self) -> ExplainClient:
        self._enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel. The client cannot be used (or reopened) afterwards."""
        for channel in self._take_channels_for_close():
            channel.close()

    def predict(self, images: Images, *, timeout: _Timeout = USE_CLIENT_DEFAULT) -> Prediction:
        """Classify images with the ``predict`` (or ``predict_bytes``) signature.

        File paths and ``bytes`` are sent undecoded, as the files' JPEG/PNG
        contents, to ``predict_bytes``: the server decodes and resizes them, so
        they may differ in size. Arrays and PIL images are sent as one uint8
        tensor to ``predict``. One call takes one kind, not both.

        Orientation: the server decodes files as stored, since TensorFlow's
        decoders ignore EXIF, so a JPEG whose EXIF orientation says "rotate"
        (most phone portraits) is classified sideways. PIL images, and files
        decoded here (the fallback below), are made upright first
        (``ImageOps.exif_transpose``); to have such a file explained upright,
        open it with Pillow and pass the image.

        An export made before ``predict_bytes`` existed answers
        FAILED_PRECONDITION ``Serving signature key ... not found``; the call
        is then repeated once with the files decoded here (Pillow) and sent to
        ``predict``, which needs them to share one size.

        Args:
            images: one image or a batch: file paths (``str``/``PathLike``) or
                encoded file ``bytes``, of any sizes; or uint8 / [0, 1] float
                arrays (``[H, W]``, ``[H, W, C]``, ``[N, H, W, C]``) or PIL
                images of one size. Gray and RGBA become RGB.
            timeout: this call's deadline instead of the client default.

        Raises:
            ValueError: paths/bytes mixed with arrays/PIL images, arrays of
                different sizes, floats outside [0, 1], bad shapes.
            OSError: a path that cannot be read.
            RpcError: the call failed (a subclass per status code), e.g.
                ``InvalidArgumentError`` for a corrupt or oversized file.
        """
        return self._send(self._predict_call(images), timeout)

    def explain(
        self,
        images: Images,
        class_index: int | Sequence[int] | None = None,
        *,
        method: str | None = None,
        top_k: int | None = None,
        timeout: _Timeout = USE_CLIENT_DEFAULT,
    ) -> Explanation:
        """Classify images and return CAM heatmaps with ``explain`` (or ``explain_bytes``).

        Paths and ``bytes`` go undecoded to ``explain_bytes`` (with the same
        fallback as :meth:`predict`): the heatmaps come back at the model's
        input size and ``overlay_png`` holds, per image, a PNG of its heatmap
        over the image at the image's own size. Arrays and PIL images go to
        ``explain``: heatmaps at the request's image size, ``overlay_png`` is
        ``None`` (also after a fallback). Paths and ``bytes`` are explained in
        their stored orientation, PIL images upright (see :meth:`predict`).

        Args:
            images: as for :meth:`predict`.
            class_index: ``None`` explains each image's predicted class, an int
                the same class for all, a sequence one class per image.
            method: a CAM method the export holds (``"gradcampp"``, ...): sent
                to ``explain_<method>`` (``explain_bytes_<method>``); ``None``
                uses the export's default method.
            top_k: explain the k most probable classes of each image in one
                call (``explain_topk``, default method); results get a class
                axis (see :class:`Explanation`).
            timeout: this call's deadline instead of the client default.

        Raises:
            ValueError: as for :meth:`predict`, ``class_index`` of the wrong length,
                or a method (or top-k) the export does not hold: the message
                lists the export's methods, read from its metadata.
            RpcError: the call failed (e.g. ``InvalidArgumentError`` for a class
                index out of range).
        """
        call = self._explain_call(images, class_index, method, top_k)
        try:
            return self._send(call, timeout)
        except FailedPreconditionError as exc:
            if not self._asked_for_missing(call, exc, method, top_k):
                raise
            raise self._not_exported(method, top_k, self.metadata(timeout=timeout)) from exc

    def metadata(self, *, timeout: _Timeout = USE_CLIENT_DEFAULT) -> ModelMetadata:
        """The model's version and every signature's inputs and outputs."""
        return self._send(self._metadata_call(), timeout)

    def status(self, *, timeout: _Timeout = USE_CLIENT_DEFAULT) -> list[VersionStatus]:
        """The state of each version of the model (the pinned one only, if pinned), newest first."""
        return self._send(self._status_call(), timeout)

    def wait_until_ready(self, timeout: float = 30.0, *, poll_interval: float = 0.1) -> list[VersionStatus]:
        """Block until a version (the pinned one, if pinned) is AVAILABLE.

        Polls ``GetModelStatus`` (``GetModelMetadata`` if the server has no
        ModelService). "No server yet", "model not found yet" and slow answers
        count as not ready; any other error is raised at once.

        Returns:
            The statuses that showed readiness (empty if only metadata answered).

        Raises:
            DeadlineExceededError: not ready within ``timeout`` seconds; the
                message gives the last answer seen.
        """
        poll = ReadinessPoll(self, timeout, poll_interval, time.monotonic)
        while (budget := poll.next_budget()) is not None:
            try:
                statuses = self._probe(budget)
            except WAITABLE_ERRORS as exc:
                poll.record(exc)
            else:
                if poll.ready(statuses):
                    return statuses or []
            time.sleep(poll.pause())
        raise poll.error() from poll.last_exception

    def _probe(self, budget: float) -> list[VersionStatus] | None:
        try:
            return self._send(self._status_call(), budget, NO_RETRY)
        except UnimplementedError:
            self._send(self._metadata_call(), budget, NO_RETRY)
            return None

    def _send(self, call: Call[T], timeout: _Timeout, retry: Retry | None = None) -> T:
        """Send one call; a ``*_bytes`` call on an export without it falls back once (``fallback_for``)."""
        deadline = self._deadline(timeout)  # one deadline for the whole call, fallback included
        try:
            return self._attempt(call, deadline, retry)
        except FailedPreconditionError as exc:
            fallback = fallback_for(call, exc)
            if fallback is None:
                raise
        return self._attempt(fallback, deadline, retry)

    def _attempt(self, call: Call[T], deadline: Deadline, retry: Retry | None = None) -> T:
        """Send one call within what is left of ``deadline``; the channel's gRPC retry policy retries UNAVAILABLE."""
        stub = self._live_channel(grpc, retry).unary_unary(
            call.method, request_serializer=serialize, response_deserializer=call.response_type.FromString
        )
        with map_rpc_errors():
            return call.decode(stub(call.request, timeout=deadline.budget()))
