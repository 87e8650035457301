"""``--ssl_config_file``: TLS and mutual TLS on the gRPC port, with throwaway certificates.

The same TF Serving ``SSLConfig`` text file the real server reads is parsed by
the flag parser, and both our ``ExplainClient`` and the official stub connect
with ``grpc.ssl_channel_credentials``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from gradcam_e2e import MODEL, RPC_TIMEOUT, InProcess, assert_same_outputs, client_outputs, predict_request, \
    response_outputs, test_images
from gradcam_serving.errors import RpcError
from gradcam_serving.server import create_server, parse_flags
from tls_certs import Pem, make_ca, make_leaf, ssl_config_text

IMAGES = test_images(2)
CLASS_INDEX = np.array([-1, 2], np.int32)
SERVER_NAME_OVERRIDE = (("grpc.ssl_target_name_override", "localhost"),)


class Pki:
    """One CA signing the server and a client; a second, unrelated CA signing an impostor client."""

    def __init__(self) -> None:
        self.ca = make_ca("gradcam test CA")
        self.server = make_leaf(self.ca, "localhost", server=True)
        self.client = make_leaf(self.ca, "client", server=False)
        self.other_ca = make_ca("someone else's CA")
        self.impostor = make_leaf(self.other_ca, "client", server=False)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def _serve(export_v1: Path, tmp_path: Path, config_text: str) -> Iterator[int]:
    config = tmp_path / "ssl.config"
    config.write_text(config_text)
    options = parse_flags(["--port=0", "--host=127.0.0.1", f"--model_name={MODEL}",
                           f"--model_base_path={export_v1.parent}", f"--ssl_config_file={config}",
                           "--max_num_load_retries=0", "--file_system_poll_wait_seconds=0"])
    server, port = create_server(options)
    server.start()
    try:
        yield port
    finally:
        server.stop(1)


@pytest.fixture(scope="module")
def tls_port(export_v1: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from _serve(export_v1, tmp_path_factory.mktemp("tls"), ssl_config_text(pki.server))


@pytest.fixture(scope="module")
def mtls_port(export_v1: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    text = ssl_config_text(pki.server, custom_ca=pki.ca.cert, client_verify=True)
    yield from _serve(export_v1, tmp_path_factory.mktemp("mtls"), text)


def _credentials(pki: Pki, client: Pem | None = None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    return grpc.ssl_channel_credentials(root_certificates=pki.ca.cert, private_key=client.key,
                                        certificate_chain=client.cert)


def _official_explain(port: int, credentials: grpc.ChannelCredentials) -> dict[str, np.ndarray]:
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_request("explain", images=IMAGES, class_index=CLASS_INDEX)
        return response_outputs(stub.Predict(request, RPC_TIMEOUT))


def test_tls_serves_the_official_stub_and_our_client(tls_port, pki, in_process: InProcess):
    want = in_process.run("explain", images=IMAGES, class_index=CLASS_INDEX)
    assert_same_outputs(_official_explain(tls_port, _credentials(pki)), want)
    from gradcam_serving.client import ExplainClient

    with ExplainClient(f"localhost:{tls_port}", MODEL, timeout=RPC_TIMEOUT, credentials=_credentials(pki)) as client:
        assert_same_outputs(client_outputs(client.explain(IMAGES, CLASS_INDEX)), want)


def test_tls_port_refuses_plaintext(tls_port):
    channel = grpc.insecure_channel(f"localhost:{tls_port}")
    with channel, pytest.raises(grpc.FutureTimeoutError):
        grpc.channel_ready_future(channel).result(timeout=3)


def test_mtls_accepts_a_client_certificate_from_the_ca(mtls_port, pki, in_process: InProcess):
    want = in_process.run("explain", images=IMAGES, class_index=CLASS_INDEX)
    assert_same_outputs(_official_explain(mtls_port, _credentials(pki, pki.client)), want)
    from gradcam_serving.client import ExplainClient

    with ExplainClient(f"localhost:{mtls_port}", MODEL, timeout=RPC_TIMEOUT,
                       credentials=_credentials(pki, pki.client)) as client:
        assert_same_outputs(client_outputs(client.explain(IMAGES, CLASS_INDEX)), want)


@pytest.mark.parametrize("who", ["no_certificate", "wrong_ca"])
def test_mtls_refuses_clients_without_a_valid_certificate(mtls_port, pki, who):
    credentials = _credentials(pki) if who == "no_certificate" else _credentials(pki, pki.impostor)
    with pytest.raises(grpc.RpcError) as raised:
        _official_explain(mtls_port, credentials)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    from gradcam_serving.client import ExplainClient

    with ExplainClient(f"localhost:{mtls_port}", MODEL, timeout=5.0, credentials=credentials) as client, \
            pytest.raises(RpcError) as ours:
        client.explain(IMAGES, CLASS_INDEX)
    assert ours.value.code_name == "UNAVAILABLE"
