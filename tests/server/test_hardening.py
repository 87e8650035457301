"""Malformed input is refused cheaply and with the caller's error code, never INTERNAL.

Units without a model: TensorProto parsing before allocation, REST body
parsing, gRPC channel arguments, the SSLConfig file, undecodable TF messages,
and load retries that run without the manager's sync lock.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from gradcam_serving.errors import InvalidArgumentError, ServingError, StatusCode, VersionState
from gradcam_serving.server import ModelConfig
from gradcam_serving.server._flags import FlagError, parse_channel_arguments, parse_flags
from gradcam_serving.server._json_tensor import parse_body, predict_inputs
from gradcam_serving.server._manager import ModelManager
from gradcam_serving.server._memory import IdleTrimmer
from gradcam_serving.server._options import DEFAULT_MAX_MESSAGE_LENGTH, ServerOptions
from gradcam_serving.server._servable import Servable
from gradcam_serving.server._status import grpc_status
from gradcam_serving.server._tensors import TensorParseError, to_numpy
from gradcam_serving.server._tf_errors import from_tf_error, from_undecodable
from gradcam_serving.server._tls import read_ssl_config, ssl_config_message

LIMIT = DEFAULT_MAX_MESSAGE_LENGTH


def _proto(dtype: int, dims: list[int], **fields: object) -> tensor_pb2.TensorProto:
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape)
    for name, value in fields.items():
        if name == "tensor_content":
            proto.tensor_content = value  # type: ignore[assignment]
        else:
            getattr(proto, name).extend(value)
    return proto


# -- TensorProto: parse before allocating -------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "dims", "fields"),
    [
        (types_pb2.DT_UINT8, [1, 100_000, 100_000, 3], {}),  # 30 GB declared, no values (issue 10, case 1)
        (types_pb2.DT_INT32, [10**11], {"int_val": [1]}),
        (types_pb2.DT_STRING, [10**10], {"string_val": [b"x"]}),
        (types_pb2.DT_FLOAT, [2**20, 2**20], {}),
    ],
    ids=["images_30GB", "class_index_1e11", "image_bytes_1e10", "float_4TB"],
)
def test_oversized_declared_shapes_are_refused_before_allocating(dtype, dims, fields):
    tracemalloc.start()
    try:
        with pytest.raises(TensorParseError, match="more than the 2147483647-byte limit"):
            to_numpy(_proto(dtype, dims, **fields), max_bytes=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


@pytest.mark.parametrize(
    ("dims", "match"),
    [([2**62, 4], "overflows int64"), ([2**40, 2**40, 0], "overflows int64"), ([3, -1], "negative"),
     ([1] * 255, "exceeds 254"), ([1] * 65, "numpy")],
    ids=["overflow", "overflow_before_zero", "negative", "rank_255", "rank_65"],
)
def test_invalid_shapes_are_parse_errors(dims, match):
    with pytest.raises(TensorParseError, match=match):
        to_numpy(_proto(types_pb2.DT_FLOAT, dims))


def test_tensor_content_of_the_wrong_size_is_a_parse_error():
    with pytest.raises(TensorParseError, match="wrong size"):
        to_numpy(_proto(types_pb2.DT_FLOAT, [2, 2], tensor_content=b"\x00" * 12))


def test_lenient_fill_rules_still_hold_within_the_limit():
    assert to_numpy(_proto(types_pb2.DT_INT32, [2, 3], int_val=[4, 5]), max_bytes=LIMIT).tolist() == [[4, 5, 5], [5, 5, 5]]
    assert to_numpy(_proto(types_pb2.DT_FLOAT, [3]), max_bytes=LIMIT).tolist() == [0.0, 0.0, 0.0]
    assert to_numpy(_proto(types_pb2.DT_INT64, [2], int64_val=[1, 2, 3])).tolist() == [1, 2]
    assert to_numpy(_proto(types_pb2.DT_STRING, [3], string_val=[b"a"])).tolist() == [b"a", b"a", b"a"]
    assert to_numpy(_proto(types_pb2.DT_STRING, [2])).tolist() == [b"", b""]
    # an odd number of floats for a complex tensor: the unpaired one is ignored, as in FromProtoField
    assert to_numpy(_proto(types_pb2.DT_COMPLEX64, [2], scomplex_val=[1, 2, 3])).tolist() == [1 + 2j, 1 + 2j]
    assert to_numpy(_proto(types_pb2.DT_FLOAT, [0, 2**40, 2**20])).shape == (0, 2**40, 2**20)


def test_a_size_exactly_at_the_limit_is_decoded():
    assert to_numpy(_proto(types_pb2.DT_UINT8, [4, 4]), max_bytes=16).shape == (4, 4)
    with pytest.raises(TensorParseError):
        to_numpy(_proto(types_pb2.DT_UINT8, [4, 5]), max_bytes=16)


# -- REST bodies ---------------------------------------------------------------------------------


def _nested(key: str, depth: int) -> bytes:
    return (f'{{"{key}": ' + "[" * depth + "1" + "]" * depth + "}").encode()


@pytest.mark.parametrize("key", ["instances", "inputs"])
@pytest.mark.parametrize("depth", [65, 300, 990, 1000, 5000, 100_000])
def test_deep_nesting_is_an_invalid_argument(key, depth):
    with pytest.raises(InvalidArgumentError, match="nested"):
        predict_inputs(parse_body(_nested(key, depth)), {"x": types_pb2.DT_FLOAT})


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_sixty_four_dimensions_are_still_accepted(key):
    arrays, _ = predict_inputs(parse_body(_nested(key, 64)), {"x": types_pb2.DT_FLOAT})
    assert arrays["x"].shape == (1,) * 64


def test_an_instance_nested_64_deep_is_refused_with_the_reason():
    with pytest.raises(InvalidArgumentError) as caught:
        predict_inputs(parse_body(_nested("instances", 65)), {"x": types_pb2.DT_FLOAT})
    assert caught.value.message == (
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "
        + "[" * 64 + "1" + "]" * 64 + " is nested 64 lists deep; an instance here has at most 63 dimensions "
        "(its tensor gains the batch dimension and has at most 64)")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"inputs": ["\\ud800"]}', "surrogate"),
        (b'{"inputs": [' + b"9" * 5000 + b"]}", "Number too big"),
    ],
    ids=["lone_surrogate", "5000_digit_integer"],
)
def test_unparseable_json_values_are_invalid_arguments(body, match):
    with pytest.raises(InvalidArgumentError, match=match):
        parse_body(body)


def test_an_integer_beyond_a_double_is_an_invalid_argument():
    with pytest.raises(InvalidArgumentError, match="Number too big"):
        predict_inputs(parse_body(b'{"inputs": [' + b"9" * 400 + b"]}"), {"x": types_pb2.DT_FLOAT})


def test_valid_surrogate_pairs_are_accepted():
    doc = parse_body('{"inputs": ["\\ud83d\\ude00"]}'.encode())
    arrays, _ = predict_inputs(doc, {"x": types_pb2.DT_STRING})
    assert arrays["x"].tolist() == ["\N{GRINNING FACE}".encode()]


# -- undecodable TensorFlow messages ---------------------------------------------------------------


def test_undecodable_tf_message_becomes_invalid_argument_with_replacement_characters():
    raw = b"assertion failed: [first bytes:] [\xff\xfe]"
    error = from_undecodable(UnicodeDecodeError("utf-8", raw, 35, 36, "invalid start byte"))
    assert error.code is StatusCode.INVALID_ARGUMENT
    assert error.message == "assertion failed: [first bytes:] [\ufffd\ufffd]"


def test_tf_error_with_surrogates_is_sent_as_valid_utf8():
    class FakeOpError(Exception):
        error_code = 3
        message = "bad \udcff byte"

    error = from_tf_error(FakeOpError())
    code, details = grpc_status(error)
    assert (error.code, code.name) == (StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert details == "bad \ufffd byte"  # the escaped byte 0xff, shown as a replacement character


# -- flags: channel arguments, SSL config, REST body limit ------------------------------------------


def test_channel_arguments_parse_like_tf_serving():
    parsed = parse_channel_arguments("grpc.max_receive_message_length=1024,grpc.lb_policy_name=grpclb, x = -7 ")
    assert parsed == (("grpc.max_receive_message_length", 1024), ("grpc.lb_policy_name", "grpclb"), ("x", -7))
    assert parse_channel_arguments("") == ()
    assert parse_channel_arguments("big=4294967296") == (("big", "4294967296"),)  # not an int32: a string
    with pytest.raises(FlagError, match="expected key=value"):
        parse_channel_arguments("novalue")


def test_channel_arguments_override_tf_serving_message_limit():
    default = ServerOptions(models=())
    assert default.max_receive_message_length == DEFAULT_MAX_MESSAGE_LENGTH
    assert ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_LENGTH) in default.grpc_server_options()
    small = ServerOptions(models=(), grpc_channel_arguments=(("grpc.max_receive_message_length", 4096),))
    assert small.max_receive_message_length == 4096
    assert dict(small.grpc_server_options())["grpc.max_receive_message_length"] == 4096
    unlimited = ServerOptions(models=(), grpc_channel_arguments=(("grpc.max_receive_message_length", -1),))
    assert unlimited.max_receive_message_length is None


def test_flags_carry_the_new_options(tmp_path: Path):
    ssl = tmp_path / "ssl.config"
    ssl.write_text('server_key: "KEY"\nserver_cert: "CERT"\ncustom_ca: "CA"\nclient_verify: true\n')
    options = parse_flags([f"--model_base_path={tmp_path}", "--grpc_channel_arguments=grpc.max_receive_message_length=99",
                           f"--ssl_config_file={ssl}", "--rest_api_max_body_bytes=1000"])
    assert options.grpc_channel_arguments == (("grpc.max_receive_message_length", 99),)
    assert options.ssl_config is not None and options.ssl_config.client_verify
    assert (options.ssl_config.server_key, options.ssl_config.custom_ca) == ("KEY", "CA")
    assert "KEY" not in repr(options.ssl_config)
    assert options.rest_api_max_body_bytes == 1000
    with pytest.raises(FlagError):
        parse_flags([f"--model_base_path={tmp_path}", "--rest_api_max_body_bytes=0"])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('server_key: "K"\nbogus: 1\n', "Error parsing text-format tensorflow.serving.SSLConfig"),
        ('server_key: "K"\n', "no server_cert"),
        ('server_key: "K"\nserver_cert: "C"\nclient_verify: true\n', "client_verify but no custom_ca"),
    ],
    ids=["unknown_field", "no_cert", "verify_without_ca"],
)
def test_bad_ssl_config_files_are_refused_at_startup(tmp_path: Path, text, match):
    path = tmp_path / "ssl.config"
    path.write_text(text)
    with pytest.raises(InvalidArgumentError, match=match):
        read_ssl_config(str(path))


def test_ssl_config_message_is_tf_servings():
    message = ssl_config_message()
    assert message.DESCRIPTOR.full_name == "tensorflow.serving.SSLConfig"
    assert [(f.name, f.number) for f in message.DESCRIPTOR.fields] == [
        ("server_key", 1), ("server_cert", 2), ("custom_ca", 3), ("client_verify", 4)]


# -- load retries run outside the sync lock -----------------------------------------------------------


class _FakeExport:
    """Stands in for runtime.ExportSession: what a Servable needs to be made and closed."""

    signature_defs: dict = {}
    config = None

    def close(self) -> None:
        pass


def _configs(base: Path, *names: str) -> tuple[ModelConfig, ...]:
    return tuple(ModelConfig(name, str(base / name)) for name in names)


def test_reload_of_a_broken_new_model_answers_after_its_retries(tmp_path: Path):
    for name in ("bad", "good"):
        (tmp_path / name / "1").mkdir(parents=True)
    attempts = {"bad": 0}

    def loader(name: str, version: int, path: str) -> Servable:
        if name == "bad":
            attempts["bad"] += 1
            raise ServingError("cannot load", code=StatusCode.DATA_LOSS)
        return Servable(name, version, path, _FakeExport())

    manager = ModelManager(loader, poll_wait_seconds=0, max_num_load_retries=3, load_retry_interval_seconds=0.1)
    manager.start(_configs(tmp_path, "good"))
    try:
        # "bad" is new in this reload, and TF's reload waits for new models, retries included.
        with pytest.raises(ServingError, match="bad"):
            manager.reload(_configs(tmp_path, "good", "bad"))
        # the first load and all 3 retries were over before reload answered (else: LOADING, 1 attempt)
        assert attempts["bad"] == 4
        assert manager.version_statuses("bad", 1)[0].state == VersionState.END
    finally:
        manager.stop()


@pytest.mark.timeout(120)  # retrying under the sync lock would hang poll_once for 50 hours, not fail
def test_an_existing_models_retries_do_not_block_polls_reload_or_stop(tmp_path: Path):
    for name in ("bad", "good", "late"):
        (tmp_path / name / "1").mkdir(parents=True)

    def loader(name: str, version: int, path: str) -> Servable:
        if (name, version) == ("bad", 2):
            raise ServingError("cannot load", code=StatusCode.DATA_LOSS)
        return Servable(name, version, path, _FakeExport())

    manager = ModelManager(loader, poll_wait_seconds=0, max_num_load_retries=50, load_retry_interval_seconds=3600)
    manager.start(_configs(tmp_path, "good", "bad"))
    try:
        (tmp_path / "bad" / "2").mkdir()
        manager.poll_once()  # version 2 fails; its retries wait an hour apart on their own thread
        assert manager.version_statuses("bad", 2)[0].state == VersionState.LOADING
        manager.reload(_configs(tmp_path, "good", "bad", "late"))
        manager.poll_once()
        assert manager.version_statuses("late", 1)[0].state == VersionState.AVAILABLE
        assert manager.version_statuses("bad", 2)[0].state == VersionState.LOADING
    finally:
        manager.stop()  # interrupts the hour-long wait
    assert manager.version_statuses("bad", 2)[0].state == VersionState.END


def test_a_retry_that_succeeds_serves_and_unloads_the_old_version(tmp_path: Path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    failures_left = {2: 2}

    def loader(name: str, version: int, path: str) -> Servable:
        if failures_left.get(version, 0) > 0:
            failures_left[version] -= 1
            raise ServingError("not yet", code=StatusCode.DATA_LOSS)
        return Servable(name, version, path, _FakeExport())

    manager = ModelManager(loader, poll_wait_seconds=0, max_num_load_retries=5, load_retry_interval_seconds=0.05)
    manager.start((ModelConfig("m", str(tmp_path / "m")),))
    try:
        (tmp_path / "m" / "2").mkdir()
        manager.poll_once()
        manager.wait_for_retries(timeout=10)
        states = {row.version: row.state for row in manager.version_statuses("m")}
        assert states == {2: VersionState.AVAILABLE, 1: VersionState.END}
    finally:
        manager.stop()


# -- memory: large buffers go back to the OS -----------------------------------------------------------

_BURST = r"""
import threading, numpy as np
from gradcam_serving.server._memory import release_large_buffers_to_os, return_free_heap_to_os

def rss_mb():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024

fixed = release_large_buffers_to_os()
keep = []
def burst(seed):
    rng = np.random.default_rng(seed)
    for _ in range(30):
        big = np.ones(int(rng.integers(1, 24)) << 20, np.uint8)   # a request-sized buffer
        keep.append(np.ones(int(rng.integers(1, 64)) << 10, np.uint8))  # small long-lived objects in between
        del big
baseline = rss_mb()
threads = [threading.Thread(target=burst, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
return_free_heap_to_os()  # what the server's IdleTrimmer does once the burst is over
print(fixed, round(rss_mb() - baseline))
"""


def test_large_buffers_return_to_the_os_after_a_burst():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _BURST], capture_output=True, text=True, check=True).stdout
    fixed, growth = out.split()
    assert fixed == "True"
    # 8 threads x 30 buffers of 1-24 MiB; only the ~8 MiB of small objects kept may stay
    assert int(growth) < 40, growth


def test_idle_trimmer_trims_once_after_a_burst_and_never_under_load_or_mid_request():
    started, finished, trims = [0], [0], []

    def request(finish: bool = True) -> None:
        started[0] += 1
        finished[0] += finish

    trimmer = IdleTrimmer(lambda: (started[0], finished[0]), trim=lambda: trims.append(finished[0]))
    assert not trimmer.tick()  # idle from the start: nothing to give back
    for _ in range(5):  # steady load: requests come and go between every two ticks
        request(), request(), request()
        assert not trimmer.tick()
    assert trimmer.tick() and trims == [15]  # the first quiet tick trims
    assert not trimmer.tick() and trims == [15]  # and only once
    request(finish=False)  # a slow request: no tick trims while it runs
    assert not trimmer.tick()
    assert not trimmer.tick() and not trimmer.tick() and trims == [15]
    finished[0] += 1
    assert not trimmer.tick()
    assert trimmer.tick() and trims == [15, 16]
