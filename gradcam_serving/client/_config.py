"""Client configuration as small value objects: deadlines, retries, channel options."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Union

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "USE_CLIENT_DEFAULT",
    "ClientState",
    "Retry",
    "RetryTypes",
    "Timeout",
    "TimeoutTypes",
    "UseClientDefault",
    "channel_options",
    "service_config",
]


@dataclass(frozen=True)
class Timeout:
    """The deadline of each client call, in seconds.

    A value object rather than a bare float so the client default, a per-call
    override and "not passed" (:data:`USE_CLIENT_DEFAULT`) stay distinct.
    There is deliberately no "no deadline": a call without one can hang
    forever on a stuck server, so every RPC gets a finite deadline. The
    deadline covers the whole call: it is the gRPC deadline of the call, and
    gRPC's retries of ``UNAVAILABLE`` run within it (``DeadlineExceededError``
    is raised when it passes, during an attempt or a backoff).

    Example:
        >>> Timeout(30.0).seconds
        30.0
    """

    seconds: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)):
            raise TypeError(f"timeout must be a number of seconds; got {self.seconds!r}")
        if not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ValueError(f"timeout must be a finite number of seconds > 0; got {self.seconds!r}")

    @classmethod
    def of(cls, value: TimeoutTypes) -> Timeout:
        """Accept a :class:`Timeout` or a number of seconds."""
        return value if isinstance(value, Timeout) else cls(value)


class UseClientDefault:
    """Type of :data:`USE_CLIENT_DEFAULT`: "argument not passed, use the client's value"."""

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT = UseClientDefault()
DEFAULT_TIMEOUT = Timeout(10.0)
TimeoutTypes = Union[Timeout, float]


_MAX_RETRIES = 4
"""gRPC caps ``maxAttempts`` at 5; a larger value would be cut silently, so it is refused."""


@dataclass(frozen=True)
class Retry:
    """How often gRPC retries a call that failed with ``UNAVAILABLE``, and how long it waits.

    Only ``UNAVAILABLE`` is retried: it is the one code meaning "the request
    did not reach a working server" (connection refused, replica restarting),
    so repeating it is safe. Every other code is the server's answer and is
    raised at once. The retries are gRPC's own (the channel's service-config
    ``retryPolicy``, see :func:`service_config`), so sync and async clients
    behave alike and all run within the call's one :class:`Timeout`.

    gRPC waits the current backoff with +-20 % random jitter before each
    retry (measured with grpcio 1.85: 0.1, 0.2, 0.4 s come out as e.g.
    0.084, 0.218, 0.346 s), so many clients cut off by one restart do not
    come back in lockstep; :meth:`delays` gives the backoffs without jitter.

    Attributes:
        retries: extra attempts after the first, 0 to 4 (gRPC caps a call
            at 5 attempts).
        backoff: seconds to wait before the first retry (before jitter).
        multiplier: each further wait is this many times longer.
        max_backoff: cap on a single wait (before jitter).
    """

    retries: int = 3
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not 0 <= self.retries <= _MAX_RETRIES:
            raise ValueError(
                f"retries must be an int from 0 to {_MAX_RETRIES} (gRPC makes at most "
                f"{_MAX_RETRIES + 1} attempts per call); got {self.retries!r}"
            )
        if not (self.backoff > 0 and self.max_backoff >= self.backoff):
            raise ValueError(
                f"backoff must be > 0 and max_backoff >= backoff; got {self.backoff!r} and {self.max_backoff!r}"
            )
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be >= 1; got {self.multiplier!r}")

    @classmethod
    def of(cls, value: RetryTypes) -> Retry:
        """Accept a :class:`Retry` or a retry count (with default backoff)."""
        return value if isinstance(value, Retry) else cls(retries=value)

    def delays(self) -> Iterator[float]:
        """The waits before each retry, without gRPC's jitter: backoff, backoff*multiplier, ... capped."""
        for attempt in range(self.retries):
            yield min(self.max_backoff, self.backoff * self.multiplier**attempt)


DEFAULT_RETRY = Retry()
RetryTypes = Union[Retry, int]


_MIN_RECONNECT_MS = 10
"""Floor of the reconnect backoff, so a tiny ``Retry.backoff`` cannot make the channel redial in a busy loop."""

_RETRY_BUFFER_BYTES = 1 << 30
"""Per-call retry buffer. gRPC stops retrying a call whose request exceeds it (default 256 KiB,
less than one 300x300 RGB image), so it is raised to cover any request the client sends."""


class ClientState(enum.Enum):
    """Lifecycle of a client; a closed client is never reused."""

    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


def service_config(retry: Retry = DEFAULT_RETRY) -> dict[str, Any]:
    """The gRPC service config carrying ``retry`` as a ``retryPolicy`` for every method.

    ``retries=0`` gives a config without a retry policy.

    Example:
        >>> service_config(Retry(retries=1))["methodConfig"][0]["retryPolicy"]["maxAttempts"]
        2
    """
    method: dict[str, Any] = {"name": [{}]}  # the empty name: every service and method
    if retry.retries:
        method["retryPolicy"] = {
            "maxAttempts": retry.retries + 1,
            "initialBackoff": _duration(retry.backoff),
            "maxBackoff": _duration(retry.max_backoff),
            "backoffMultiplier": retry.multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return {"methodConfig": [method]}


def _duration(seconds: float) -> str:
    """A protobuf JSON ``Duration``, e.g. ``"0.2s"``."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def channel_options(extra: tuple[tuple[str, Any], ...] = (), retry: Retry = DEFAULT_RETRY) -> list[tuple[str, Any]]:
    """gRPC channel arguments every client channel gets.

    * No message size caps: a batch of 32 float32 224x224 heatmaps is about
      6.4 MB, past gRPC's default 4 MiB receive limit, and TF Serving itself
      allows INT32_MAX.
    * ``round_robin``: with a ``dns:///host:port`` target the client spreads
      calls over every address (replica) the name resolves to, instead of
      pinning one connection as ``pick_first`` does.
    * Retries by gRPC: ``retry`` as the channel's service config
      (:func:`service_config`), with retries enabled, a retry buffer large
      enough for big image batches, and no service config from DNS TXT
      records overriding it.
    * Reconnect backoff on the retry schedule: after a refused connection
      gRPC waits ~1 s (growing to 120 s) before dialling again and fails
      every RPC at once meanwhile, so quick retries would all hit the same
      broken connection and a restarted server would never be reached. The
      channel redials after half of ``retry.backoff`` instead, backing off up
      to half of ``retry.max_backoff``: both schedules are jittered by
      +-20 %, and at half the retry waits a retry never finds the channel
      still waiting to redial.

    ``extra`` options are added and replace defaults of the same name.
    """
    initial_ms = max(_MIN_RECONNECT_MS, round(retry.backoff * 500))
    options: dict[str, Any] = {
        "grpc.max_receive_message_length": -1,
        "grpc.max_send_message_length": -1,
        "grpc.lb_policy_name": "round_robin",
        "grpc.initial_reconnect_backoff_ms": initial_ms,
        "grpc.max_reconnect_backoff_ms": max(initial_ms, round(retry.max_backoff * 500)),
        "grpc.enable_retries": 1,
        "grpc.service_config": json.dumps(service_config(retry)),
        "grpc.service_config_disable_resolution": 1,
        "grpc.per_rpc_retry_buffer_size": _RETRY_BUFFER_BYTES,
    }
    options.update(extra)
    return list(options.items())
