"""Thin gRPC client for models served with ``predict`` and ``explain`` signatures.

Talks to TensorFlow Serving (or the project's local server) over its official
gRPC API using wire-compatible copies of the messages, so it needs grpcio,
protobuf, numpy and Pillow/matplotlib (for overlays) but never TensorFlow.

Example:
    >>> from gradcam_serving.client import ExplainClient, save_overlay
    >>> with ExplainClient("localhost:8500", "flowers") as client:  # doctest: +SKIP
    ...     client.wait_until_ready(timeout=30)
    ...     result = client.explain("tulip.jpg")
    ...     print(result.label[0], result.score[0])
    ...     save_overlay("tulip.jpg", result.heatmap[0], "tulip_cam.png")

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
from gradcam_serving.client._images import ImageInput, Images
from gradcam_serving.client._overlay import overlay_heatmap, overlay_png, save_overlay
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
    "overlay_heatmap",
    "overlay_png",
    "save_overlay",
]

# Show public classes and functions as ``gradcam_serving.client.X`` (docs, reprs).
for _name in __all__:
    _member = globals()[_name]
    if isinstance(_member, (type, _FunctionType)) and _member.__module__.startswith(__name__ + "._"):
        _member.__module__ = __name__
del _name, _member
