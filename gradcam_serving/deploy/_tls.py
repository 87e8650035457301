"""gRPC TLS for the deployed server: TF Serving's ``--ssl_config_file`` and where its file comes from.

TF Serving reads one text-format ``SSLConfig`` (``config/ssl_config.proto``)
holding the server key and certificate and, for mTLS, the CA that signs client
certificates, all as inline PEM text (not file paths). The file therefore
holds a private key: ``gradcam-serving config`` writes it with mode 0600,
never puts it in the Kubernetes ConfigMap, and mounts it from a Secret
instead. TLS covers the gRPC port only; REST stays plain HTTP, as in TF Serving.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from gradcam_serving.errors import ConfigError

__all__ = ["SSL_CONFIG_FILE", "TlsOptions"]

SSL_CONFIG_FILE = "ssl.config"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TlsOptions:
    """The server's TLS material (PEM text) and how Kubernetes mounts it.

    Attributes:
        server_key: the server's private key, PEM.
        server_cert: the server's certificate (chain), PEM.
        custom_ca: the CA that signs client certificates, PEM; needed for
            ``client_verify``.
        client_verify: require a client certificate signed by ``custom_ca`` (mTLS).
        secret_name: the Kubernetes Secret holding ``ssl.config``; default
            ``<app_name>-tls``.
        mount_dir: container folder the file is mounted at (Docker and Kubernetes).
    """

    server_key: str = dataclasses.field(repr=False)
    server_cert: str = dataclasses.field(repr=False)
    custom_ca: str = dataclasses.field(default="", repr=False)
    client_verify: bool = False
    secret_name: str | None = None
    mount_dir: str = "/ssl"

    def __post_init__(self) -> None:
        _check_pem("server_key", self.server_key, "PRIVATE KEY")
        _check_pem("server_cert", self.server_cert, "CERTIFICATE")
        if self.custom_ca:
            _check_pem("custom_ca", self.custom_ca, "CERTIFICATE")
        if self.client_verify and not self.custom_ca:
            raise ConfigError(
                "client_verify needs custom_ca: TF Serving verifies client certificates against that CA"
            )
        if not self.mount_dir.startswith("/"):
            raise ValueError(f"mount_dir must be absolute, got {self.mount_dir!r}")

    @classmethod
    def from_files(
        cls,
        server_key: str | os.PathLike[str],
        server_cert: str | os.PathLike[str],
        custom_ca: str | os.PathLike[str] | None = None,
        **options: object,
    ) -> TlsOptions:
        """Read the PEM files; ``options`` are the other fields (``client_verify``, ``secret_name`` ...)."""
        return cls(
            server_key=Path(server_key).read_text(encoding="ascii"),
            server_cert=Path(server_cert).read_text(encoding="ascii"),
            custom_ca=Path(custom_ca).read_text(encoding="ascii") if custom_ca else "",
            **options,  # type: ignore[arg-type]
        )

    @property
    def config_path(self) -> str:
        """The ``--ssl_config_file`` path inside the container."""
        return f"{self.mount_dir.rstrip('/')}/{SSL_CONFIG_FILE}"


def _check_pem(name: str, text: str, kind: str) -> None:
    """A PEM block of ``kind`` (``CERTIFICATE``, ``... PRIVATE KEY``), or a ConfigError naming the field."""
    begin = text.find("-----BEGIN ")
    if begin < 0 or kind not in text[begin : text.find("\n", begin)] or "-----END " not in text:
        raise ConfigError(f"{name} must be PEM text holding a {kind} block (-----BEGIN ... {kind}-----)")
