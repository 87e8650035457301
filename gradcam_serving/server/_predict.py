"""TF Serving's ``RunPredict`` without the transport: validate, run, collect.

The checks run in ``predict_util.cc`` order so that a request with several
problems gets the same first error as from the real server: signature key,
input count, input names and parsing (``GetInputValues``), ``output_filter``,
then the dtype check that TF does when the feeds reach the function call.
Inputs arrive undecoded together with a ``decode`` callable, so a parse error
is reported only where TF reports it; the gRPC front end passes TensorProtos,
a REST front end can pass JSON-derived arrays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from gradcam_serving.errors import FailedPreconditionError, InvalidArgumentError, UnknownError
from gradcam_serving.server._servable import Servable
from gradcam_serving.server._tensors import TensorParseError, dtype_enum_of, dtype_name

__all__ = ["DEFAULT_SIGNATURE", "PredictResult", "Runner", "check_dtypes", "direct_runner", "run_predict"]

DEFAULT_SIGNATURE = "serving_default"
T = TypeVar("T")


class Runner(Protocol):
    """Runs feeds/fetches on a servable: directly, or through the batch scheduler."""

    def __call__(
        self, servable: Servable, signature_name: str, feeds: dict[str, np.ndarray],
        fetches: Sequence[str], timeout_ms: int,
    ) -> list[np.ndarray]: ...


@dataclasses.dataclass(frozen=True)
class PredictResult:
    """What a Predict response carries: the resolved spec and the outputs by alias."""

    model_name: str
    version: int
    signature_name: str
    outputs: dict[str, np.ndarray]


def _join(keys: Any) -> str:
    return ",".join(sorted(keys))


def _verify_inputs_size(signature: Any, request_keys: set[str]) -> None:
    sig_keys = set(signature.inputs.keys())
    has_defaults = len(signature.defaults) > 0
    if len(request_keys) > len(sig_keys) or (len(request_keys) < len(sig_keys) and not has_defaults):
        raise InvalidArgumentError(
            f"input size does not match signature: {len(request_keys)}!={len(sig_keys)} "
            f"len({{{_join(request_keys)}}}) != len({{{_join(sig_keys)}}}). "
            f"Sent extra: {{{_join(request_keys - sig_keys)}}}. "
            f"Missing but required: {{{_join(sig_keys - request_keys)}}}."
        )


def _input_values(
    signature: Any, inputs: Mapping[str, T], decode: Callable[[T], np.ndarray]
) -> dict[str, np.ndarray]:
    """``saved_model::GetInputValues``: alias -> feed tensor name, decoded."""
    feeds: dict[str, np.ndarray] = {}
    seen: set[str] = set()
    for alias in sorted(signature.inputs.keys()):
        feed_name = signature.inputs[alias].name
        if alias in inputs:
            raw: Any = inputs[alias]
            seen.add(alias)
        elif alias in signature.defaults:
            raw = signature.defaults[alias]
        else:
            raise InvalidArgumentError(
                f"Signature input alias: {alias}(feed name: {feed_name}) not found in request and no "
                f"default value provided. Inputs expected to be in the request {{{_join(inputs.keys())}}}, "
                f"or default input alias set: {_join(signature.defaults.keys())}"
            )
        try:
            feeds[feed_name] = decode(raw)
        except TensorParseError as exc:
            raise InvalidArgumentError(f"tensor parsing error: {alias}") from exc
    if inputs and len(seen) != len(inputs):
        raise InvalidArgumentError(
            f"Inputs contains invalid name. Used request inputs: {_join(seen)}, "
            f"request input: {_join(inputs.keys())}"
        )
    return feeds


def _outputs(signature: Any, output_filter: Sequence[str]) -> tuple[list[str], list[str]]:
    names: list[str] = []
    aliases: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise InvalidArgumentError(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                f"{{{_join(signature.outputs.keys())}}}."
            )
        if alias in aliases:
            raise InvalidArgumentError(f"duplicate output tensor alias: {alias}")
        names.append(signature.outputs[alias].name)
        aliases.append(alias)
    if not names:
        for alias in sorted(signature.outputs.keys()):
            names.append(signature.outputs[alias].name)
            aliases.append(alias)
    return names, aliases


def check_dtypes(signature: Any, feeds: dict[str, np.ndarray]) -> None:
    """TF's call-frame check: ``Expects arg[i] to be <want> but <got> is provided``.

    The Python Session would silently cast a wrong dtype, so the check is made
    here, with ``i`` counting the feed tensor names in sorted order as TF does.
    """
    expected = {info.name: info.dtype for info in signature.inputs.values()}
    for index, feed_name in enumerate(sorted(feeds)):
        got = dtype_enum_of(feeds[feed_name])
        want = expected.get(feed_name, got)
        if got != want:
            raise InvalidArgumentError(
                f"Expects arg[{index}] to be {dtype_name(want)} but {dtype_name(got)} is provided"
            )


def run_predict(
    servable: Servable,
    *,
    model_name: str,
    signature_name: str,
    inputs: Mapping[str, T],
    decode: Callable[[T], np.ndarray],
    output_filter: Sequence[str],
    timeout_ms: int,
    runner: Runner,
) -> PredictResult:
    """Validate a request against a signature and run it.

    Args:
        servable: the pinned version. model_name: echoed in the result.
        signature_name: empty means ``serving_default``.
        inputs: alias -> undecoded tensor; decode: turns one into numpy or
            raises ``TensorParseError``.
        output_filter: aliases to fetch; empty fetches every output.
        timeout_ms: the remaining deadline (0 = none).
        runner: direct Session run or the batch scheduler.

    Raises:
        ServingError: with TF Serving's code and text.
    """
    signature_name = signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(signature_name)
    if signature is None:
        raise FailedPreconditionError(f'Serving signature key "{signature_name}" not found.')
    _verify_inputs_size(signature, set(inputs.keys()))
    feeds = _input_values(signature, inputs, decode)
    fetch_names, aliases = _outputs(signature, output_filter)
    check_dtypes(signature, feeds)
    values = runner(servable, signature_name, feeds, fetch_names, timeout_ms)
    if len(values) != len(aliases):
        raise UnknownError("Predict internal error")
    return PredictResult(
        model_name=model_name,
        version=servable.version,
        signature_name=signature_name,
        outputs={alias: np.asarray(value) for alias, value in zip(aliases, values)},
    )


def direct_runner(
    servable: Servable, signature_name: str, feeds: dict[str, np.ndarray],
    fetches: Sequence[str], timeout_ms: int,
) -> list[np.ndarray]:
    """The unbatched path: one ``Session.run`` per request."""
    del signature_name
    return servable.run(feeds, fetches, timeout_ms)
