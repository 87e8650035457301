"""Thin gRPC client for models served with ``predict`` and ``explain`` signatures.

Talks to TensorFlow Serving (or the project's local server) over its official
gRPC API using wire-compatible copies of the messages, so it needs grpcio,
protobuf, numpy and Pillow/matplotlib (for overlays) but never TensorFlow.

File paths and ``bytes`` are sent undecoded to the ``predict_bytes`` /
``explain_bytes`` signatures (any sizes; the server renders ``overlay_png``);
arrays and PIL images go as uint8 tensors to ``predict`` / ``explain``.

Example:
    >>> from pathlib import Path
    >>> from gradcam_serving.client import ExplainClient, save_overlay
    >>> with ExplainClient("localhost:8500", "flowers") as client:  # doctest: +SKIP
    ...     client.wait_until_ready(timeout=30)
    ...     result = client.explain(["tulip.jpg", "rose.png"])
    ...     print(result.label[0], result.score[0])
    ...     Path("tulip_cam.png").write_bytes(result.overlay_png[0])
    ...     pixels = client.explain(my_array)  # uint8 route: draw the overlay here
    ...     save_overlay(my_array, pixels.heatmap[0], "array_cam.png")

Failed calls raise :class:`gradcam_serving.errors.RpcError` subclasses.
"""

from types import FunctionType as _FunctionType

from gradcam_serving.client._async_client import AsyncExplainClient
from gradcam_serving.client._client import ExplainClient
from gradcam_serving.client._config import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    ClientState,
    Retry,
    Timeout,
)
from gradcam_serving.client._types import (
    Explanation,
    ModelMetadata,
    ModelSpec,
    ModelState,
    Prediction,
    SignatureInfo,
    TensorSpec,
    VersionStatus,
)
from gradcam_serving.lazy import lazy_module_attributes as _lazy_module_attributes

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "USE_CLIENT_DEFAULT",
    "AsyncExplainClient",
    "ClientState",
    "ExplainClient",
    "Explanation",
    "ImageInput",
    "Images",
    "ModelMetadata",
    "ModelSpec",
    "ModelState",
    "Prediction",
    "Retry",
    "SignatureInfo",
    "TensorSpec",
    "Timeout",
    "VersionStatus",
    "explain_command",
    "explanation_from_outputs",
    "overlay_heatmap",
    "overlay_png",
    "predict_command",
    "save_overlay",
]

# numpy-backed names (and the commands) load on first access (PEP 562), so importing the client
# does not import numpy; ``from gradcam_serving.client import overlay_png`` works as usual.
_LAZY = {
    "explain_command": "_cli",
    "explanation_from_outputs": "_codec",
    "predict_command": "_cli",
    "ImageInput": "_images",
    "Images": "_images",
    "overlay_heatmap": "_overlay",
    "overlay_png": "_overlay",
    "save_overlay": "_overlay",
}


def _publish(member: object) -> object:
    """Show public classes and functions as ``gradcam_serving.client.X`` (docs, reprs)."""
    if isinstance(member, (type, _FunctionType)) and member.__module__.startswith(__name__ + "._"):
        member.__module__ = __name__
    return member


__getattr__, __dir__ = _lazy_module_attributes(__name__, _LAZY, publish=_publish)


for _name in __all__:
    if _name not in _LAZY:
        _publish(globals()[_name])
del _name
