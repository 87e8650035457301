"""The serving contract: signature keys and tensor aliases.

Shared by the exporter (which builds the signatures), the server (which only
feeds and fetches by these aliases) and the thin client (which must not import
TensorFlow), so it is plain Python.
"""

from __future__ import annotations

__all__ = [
    "CAM",
    "CLASS_INDEX",
    "DEFAULT_METHOD",
    "EXPLAIN",
    "EXPLAIN_BYTES",
    "EXPLAIN_OUTPUTS",
    "EXPLAIN_TOPK",
    "EXPLAIN_TOPK_BYTES",
    "K",
    "METHODS",
    "SERVE_TAG",
    "SIGNATURE_DEF",
    "TOPK_OUTPUTS",
    "WARMUP_FILE",
    "explain_signature",
    "exported_methods",
    "HEATMAP",
    "IMAGES",
    "IMAGE_BYTES",
    "LABEL",
    "OVERLAY_PNG",
    "PREDICT",
    "PREDICT_BYTES",
    "PREDICT_OUTPUTS",
    "PREDICTED_CLASS",
    "PROBABILITIES",
    "SCORE",
    "SERVING_DEFAULT",
]

PREDICT = "predict"
EXPLAIN = "explain"
SERVING_DEFAULT = "serving_default"
PREDICT_BYTES = "predict_bytes"
EXPLAIN_BYTES = "explain_bytes"
EXPLAIN_TOPK = "explain_topk"
"""The ``k`` most probable classes per image, each explained with the default method."""
EXPLAIN_TOPK_BYTES = "explain_topk_bytes"

METHODS = ("gradcam", "gradcampp", "hirescam", "xgradcam", "layercam", "eigencam", "reciprocam")
"""Every CAM method an export can hold, each as ``explain_<method>`` and ``explain_bytes_<method>``."""
DEFAULT_METHOD = "gradcam"

IMAGES = "images"
CLASS_INDEX = "class_index"
IMAGE_BYTES = "image_bytes"
"""JPEG or PNG files, string ``[N]``, input of the ``*_bytes`` signatures."""
K = "k"
"""``explain_topk*`` only: how many classes to explain (1..C), an int32 scalar or ``[N]``, one per image.

Send ``[N]`` to a server with batching: TF Serving's batching session refuses scalar inputs.
Outputs have ``max(k)`` rows per image; rows past an image's own k are padding (class -1).
"""

PROBABILITIES = "probabilities"
SCORE = "score"
LABEL = "label"
HEATMAP = "heatmap"
CAM = "cam"
"""The raw map at feature-map resolution ``[N, h, w]`` (after ReLU, before resize and normalisation)."""
OVERLAY_PNG = "overlay_png"
"""``explain_bytes`` only: the heatmap blended over each image, PNG-encoded in the graph."""

PREDICTED_CLASS = -1
"""``class_index`` value meaning "explain the predicted class"."""

PREDICT_OUTPUTS = (PROBABILITIES, CLASS_INDEX, SCORE, LABEL)
EXPLAIN_OUTPUTS = PREDICT_OUTPUTS + (HEATMAP,)
"""What every ``explain`` answer holds; exports made since ``explain_<method>`` exist add :data:`CAM`."""
TOPK_OUTPUTS = (PROBABILITIES, CLASS_INDEX, SCORE, LABEL, HEATMAP, CAM)
"""``explain_topk*``: ``[N, C]`` probabilities; ``[N, k]`` classes, scores and labels; ``[N, k, H, W]`` heatmaps; ``[N, k, h, w]`` maps."""

SERVE_TAG = "serve"
"""The MetaGraph tag TF Serving loads."""
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
"""Warmup records inside a version folder, relative to it (TF Serving's fixed location)."""
SIGNATURE_DEF = "signature_def"
"""The only ``GetModelMetadata`` field TF Serving supports."""


def explain_signature(method: str, *, encoded: bool = False) -> str:
    """``explain_<method>`` or, for encoded images, ``explain_bytes_<method>``."""
    return f"{EXPLAIN_BYTES if encoded else EXPLAIN}_{method}"


def exported_methods(signature_names: object) -> list[str]:
    """The methods an export holds, in :data:`METHODS` order, from its signature names."""
    names = set(signature_names)  # type: ignore[call-overload]
    return [method for method in METHODS if explain_signature(method) in names]
