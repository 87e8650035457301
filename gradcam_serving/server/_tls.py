"""``--ssl_config_file``: TF Serving's ``SSLConfig`` text proto -> gRPC server credentials.

The message is ``tensorflow.serving.SSLConfig`` from TF Serving's
``config/ssl_config.proto`` (``server_key = 1``, ``server_cert = 2``,
``custom_ca = 3``, ``client_verify = 4``; PEM text inline, not file paths).
The ``tensorflow-serving-api`` wheel does not ship its Python module, so the
descriptor is built here, in a private pool, with the same full name and
field numbers: a file written for the real server parses unchanged. As in
``server.cc`` ``BuildServerCredentialsFromSSLConfigFile``, ``client_verify``
requests and requires a client certificate signed by ``custom_ca`` (mTLS).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from gradcam_serving.errors import InvalidArgumentError

__all__ = ["SslConfig", "read_ssl_config", "server_credentials", "ssl_config_message"]

_FIELDS = (("server_key", 1, "string"), ("server_cert", 2, "string"), ("custom_ca", 3, "string"),
           ("client_verify", 4, "bool"))


@dataclasses.dataclass(frozen=True)
class SslConfig:
    """The PEM texts and the client-verification switch of one ``SSLConfig``."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False

    def __repr__(self) -> str:  # never print the private key
        return f"SslConfig(client_verify={self.client_verify}, custom_ca={'set' if self.custom_ca else 'unset'})"


@functools.cache
def ssl_config_message() -> Any:
    """The ``tensorflow.serving.SSLConfig`` message class (built once, in a private descriptor pool)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    types = {"string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
             "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL}
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/ssl_config.proto", package="tensorflow.serving", syntax="proto3")
    message = file_proto.message_type.add(name="SSLConfig")
    for name, number, kind in _FIELDS:
        message.field.add(name=name, number=number, type=types[kind],
                          label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.SSLConfig"))


def read_ssl_config(path: str) -> SslConfig:
    """Parse the text-format file and check that it can build credentials.

    Raises:
        InvalidArgumentError: unreadable file, a parse error, or a missing key/certificate.
    """
    from google.protobuf import text_format

    proto = ssl_config_message()()
    try:
        with open(path, encoding="utf-8") as handle:
            text_format.Parse(handle.read(), proto)
    except (OSError, UnicodeDecodeError, text_format.ParseError) as exc:
        message = f"Error parsing text-format tensorflow.serving.SSLConfig from {path}: {exc}"
        raise InvalidArgumentError(message) from exc
    config = SslConfig(proto.server_key, proto.server_cert, proto.custom_ca, proto.client_verify)
    missing = [name for name in ("server_key", "server_cert") if not getattr(config, name).strip()]
    if missing:
        absent = " and no ".join(missing)
        raise InvalidArgumentError(f"SSLConfig in {path} has no {absent}: both PEM texts are required")
    if config.client_verify and not config.custom_ca.strip():
        raise InvalidArgumentError(
            f"SSLConfig in {path} sets client_verify but no custom_ca: the CA that signs client certificates "
            "is required to verify them")
    return config


def server_credentials(config: SslConfig) -> Any:
    """``grpc.ServerCredentials`` for ``config``; with ``client_verify`` the handshake requires a client cert."""
    import grpc

    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() if config.custom_ca else None,
        require_client_auth=config.client_verify,
    )
