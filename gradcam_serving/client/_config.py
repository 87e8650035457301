"""Client configuration as small value objects: deadlines, retries, channel options."""

from __future__ import annotations

import enum
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
]


@dataclass(frozen=True)
class Timeout:
    """The deadline of each client call, in seconds.

    A value object rather than a bare float so the client default, a per-call
    override and "not passed" (:data:`USE_CLIENT_DEFAULT`) stay distinct.
    There is deliberately no "no deadline": a call without one can hang
    forever on a stuck server, so every RPC gets a finite deadline. The
    deadline covers the whole call: when an ``UNAVAILABLE`` call is retried,
    each attempt gets only the time left, and a retry whose backoff would
    use up that time is not made (``DeadlineExceededError`` is raised).

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


@dataclass(frozen=True)
class Retry:
    """How often to retry a call that failed with ``UNAVAILABLE``, and how long to wait.

    Only ``UNAVAILABLE`` is retried: it is the one code meaning "the request
    did not reach a working server" (connection refused, replica restarting),
    so repeating it is safe. Every other code is the server's answer and is
    raised at once. Retries happen within the call's :class:`Timeout`.

    Attributes:
        retries: extra attempts after the first (0 disables retrying).
        backoff: seconds to wait before the first retry.
        multiplier: each further wait is this many times longer.
        max_backoff: cap on a single wait.
    """

    retries: int = 3
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an int >= 0; got {self.retries!r}")
        if not (self.backoff >= 0 and self.max_backoff >= 0):
            raise ValueError(
                f"backoff and max_backoff must be >= 0; got {self.backoff!r} and {self.max_backoff!r}"
            )
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be >= 1; got {self.multiplier!r}")

    @classmethod
    def of(cls, value: RetryTypes) -> Retry:
        """Accept a :class:`Retry` or a retry count (with default backoff)."""
        return value if isinstance(value, Retry) else cls(retries=value)

    def delays(self) -> Iterator[float]:
        """The waits before each retry: backoff, backoff*multiplier, ... capped."""
        for attempt in range(self.retries):
            yield min(self.max_backoff, self.backoff * self.multiplier**attempt)


DEFAULT_RETRY = Retry()
RetryTypes = Union[Retry, int]


_MIN_RECONNECT_MS = 10
"""Floor of the reconnect backoff, so ``Retry(backoff=0)`` cannot make the channel redial in a busy loop."""


class ClientState(enum.Enum):
    """Lifecycle of a client; a closed client is never reused."""

    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


def channel_options(extra: tuple[tuple[str, Any], ...] = (), retry: Retry = DEFAULT_RETRY) -> list[tuple[str, Any]]:
    """gRPC channel arguments every client channel gets.

    * No message size caps: a batch of 32 float32 224x224 heatmaps is about
      6.4 MB, past gRPC's default 4 MiB receive limit, and TF Serving itself
      allows INT32_MAX.
    * ``round_robin``: with a ``dns:///host:port`` target the client spreads
      calls over every address (replica) the name resolves to, instead of
      pinning one connection as ``pick_first`` does.

    * Reconnect backoff on the ``retry`` schedule: after a refused
      connection gRPC waits ~1 s (growing to 120 s) before dialling again and
      fails every RPC at once meanwhile, so retries spaced 0.1 + 0.2 + 0.4 s
      would all hit the same broken connection and a restarted server would
      never be reached. The channel redials after ``retry.backoff`` instead,
      backing off up to ``retry.max_backoff``.

    ``extra`` options are added and replace defaults of the same name.
    """
    initial_ms = max(_MIN_RECONNECT_MS, round(retry.backoff * 1000))
    options: dict[str, Any] = {
        "grpc.max_receive_message_length": -1,
        "grpc.max_send_message_length": -1,
        "grpc.lb_policy_name": "round_robin",
        "grpc.initial_reconnect_backoff_ms": initial_ms,
        "grpc.max_reconnect_backoff_ms": max(initial_ms, round(retry.max_backoff * 1000)),
    }
    options.update(extra)
    return list(options.items())
