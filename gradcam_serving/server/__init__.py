"""Local stand-in for ``tensorflow_model_server`` (gRPC API of TF Serving).

Run it like the real binary::

    python -m gradcam_serving.server --port=8500 --model_name=clf --model_base_path=/models/clf

or embed it::

    from gradcam_serving.server import ServerOptions, ModelConfig, create_server
    server, port = create_server(ServerOptions(models=(ModelConfig("clf", "/models/clf"),), port=0))
    server.start()
    ...
    server.stop(grace=5)

The names that need TensorFlow (``create_server``, ``ModelServer``,
``ServingCore``) are imported on first use, so importing this package and
parsing flags stays fast. So are ``ModelManager`` and ``Servable``, the version
manager and what its loader returns, for code that drives the manager with its
own loader (``benchmarks/hardening.py`` times its retry waits with fakes).

The message classes of TF Serving's config files that tensorflow-serving-api
does not ship (``BatchingParameters``, ``MonitoringConfig``, ``SSLConfig``)
are public too: ``gradcam_serving.deploy`` writes those files with the very
classes this server parses them with, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradcam_serving.errors import ServingError
from gradcam_serving.lazy import lazy_module_attributes
from gradcam_serving.server._cli import serve_command
from gradcam_serving.server._config import batching_parameters_class, monitoring_config_class
from gradcam_serving.server._flags import FlagError, parse_flags
from gradcam_serving.server._main import main
from gradcam_serving.server._options import BatchingOptions, ModelConfig, ServerOptions, VersionPolicy
from gradcam_serving.server._tls import ssl_config_message

if TYPE_CHECKING:
    from gradcam_serving.server._core import ServingCore
    from gradcam_serving.server._manager import ModelManager
    from gradcam_serving.server._servable import Servable
    from gradcam_serving.server._server import ModelServer, create_server

__all__ = [
    "BatchingOptions",
    "FlagError",
    "ModelConfig",
    "ModelManager",
    "ModelServer",
    "Servable",
    "ServerOptions",
    "ServingCore",
    "ServingError",
    "VersionPolicy",
    "batching_parameters_class",
    "create_server",
    "main",
    "monitoring_config_class",
    "parse_flags",
    "serve_command",
    "ssl_config_message",
]

__getattr__, __dir__ = lazy_module_attributes(__name__, {
    "ModelServer": "_server", "create_server": "_server", "ServingCore": "_core", "ModelManager": "_manager",
    "Servable": "_servable",
})
