"""Deadlines, retry policy and channel options as value objects."""

from __future__ import annotations

import json
import math

import pytest

from gradcam_serving.client import DEFAULT_RETRY, DEFAULT_TIMEOUT, Retry, Timeout
from gradcam_serving.client._config import channel_options, service_config


def test_timeout_is_a_value_object() -> None:
    assert Timeout.of(2) == Timeout(2.0)
    assert Timeout.of(Timeout(3.0)) == Timeout(3.0)
    assert repr(Timeout(1.5)) == "Timeout(seconds=1.5)"
    assert DEFAULT_TIMEOUT.seconds == 10.0


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param(0, ValueError, id="zero"),
        pytest.param(-1.0, ValueError, id="negative"),
        pytest.param(math.inf, ValueError, id="infinite"),
        pytest.param(None, TypeError, id="none-no-deadline"),
        pytest.param(True, TypeError, id="bool"),
        pytest.param("5", TypeError, id="string"),
    ],
)
def test_every_rpc_needs_a_finite_positive_deadline(value, error) -> None:
    with pytest.raises(error, match="timeout"):
        Timeout(value)


def test_retry_delay_bounds_grow_exponentially_up_to_the_cap() -> None:
    assert list(Retry(retries=4, backoff=0.1, multiplier=3.0, max_backoff=1.0).delays()) == pytest.approx(
        [0.1, 0.3, 0.9, 1.0]
    )
    assert list(Retry(retries=0).delays()) == []
    assert Retry.of(4) == Retry(retries=4)
    assert list(DEFAULT_RETRY.delays()) == pytest.approx([0.1, 0.2, 0.4])


def test_the_retry_policy_is_a_grpc_service_config_retrying_only_unavailable() -> None:
    config = service_config(Retry(retries=3, backoff=0.2, multiplier=2.0, max_backoff=1.5))
    assert config == {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "1.5s",
                    "backoffMultiplier": 2.0,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    assert service_config(Retry(retries=0)) == {"methodConfig": [{"name": [{}]}]}
    assert service_config(Retry(retries=1, backoff=0.0125))["methodConfig"][0]["retryPolicy"]["initialBackoff"] == "0.0125s"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"retries": -1}, "retries", id="negative-retries"),
        pytest.param({"retries": 1.5}, "retries", id="float-retries"),
        pytest.param({"retries": 5}, "at most 5 attempts", id="beyond-grpc-cap"),
        pytest.param({"backoff": -0.1}, "backoff", id="negative-backoff"),
        pytest.param({"backoff": 0.0}, "backoff must be > 0", id="zero-backoff"),
        pytest.param({"backoff": 1.0, "max_backoff": 0.5}, "max_backoff >= backoff", id="cap-below-backoff"),
        pytest.param({"multiplier": 0.5}, "multiplier", id="shrinking"),
    ],
)
def test_retry_validation_names_the_argument(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        Retry(**kwargs)


def test_channel_options_lift_size_caps_balance_round_robin_retry_and_reconnect_on_the_retry_schedule() -> None:
    options = dict(channel_options())
    assert json.loads(options.pop("grpc.service_config")) == service_config(DEFAULT_RETRY)
    assert options == {
        "grpc.max_receive_message_length": -1,
        "grpc.max_send_message_length": -1,
        "grpc.lb_policy_name": "round_robin",
        "grpc.initial_reconnect_backoff_ms": 50,
        "grpc.max_reconnect_backoff_ms": 1000,
        "grpc.enable_retries": 1,
        "grpc.service_config_disable_resolution": 1,
        "grpc.per_rpc_retry_buffer_size": 1 << 30,
    }


def test_reconnect_backoff_is_half_the_retry_bounds_with_a_floor() -> None:
    options = dict(channel_options(retry=Retry(backoff=0.5, max_backoff=5.0)))
    assert (options["grpc.initial_reconnect_backoff_ms"], options["grpc.max_reconnect_backoff_ms"]) == (250, 2500)
    options = dict(channel_options(retry=Retry(backoff=0.001, max_backoff=0.001)))
    assert (options["grpc.initial_reconnect_backoff_ms"], options["grpc.max_reconnect_backoff_ms"]) == (10, 10)


def test_extra_channel_options_replace_defaults_of_the_same_name() -> None:
    options = channel_options((("grpc.lb_policy_name", "pick_first"), ("grpc.primary_user_agent", "x")))
    assert len(options) == 10
    assert dict(options)["grpc.lb_policy_name"] == "pick_first"
    assert dict(options)["grpc.primary_user_agent"] == "x"
