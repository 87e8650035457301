"""The serving contract: signature keys and tensor aliases.

Shared by the exporter (which builds the signatures), the server (which only
feeds and fetches by these aliases) and the thin client (which must not import
TensorFlow), so it is plain Python.
"""

from __future__ import annotations

__all__ = [
    "CLASS_INDEX",
    "EXPLAIN",
    "EXPLAIN_BYTES",
    "EXPLAIN_OUTPUTS",
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

IMAGES = "images"
CLASS_INDEX = "class_index"
IMAGE_BYTES = "image_bytes"
"""JPEG or PNG files, string ``[N]``, input of the ``*_bytes`` signatures."""

PROBABILITIES = "probabilities"
SCORE = "score"
LABEL = "label"
HEATMAP = "heatmap"
OVERLAY_PNG = "overlay_png"
"""``explain_bytes`` only: the heatmap blended over each image, PNG-encoded in the graph."""

PREDICTED_CLASS = -1
"""``class_index`` value meaning "explain the predicted class"."""

PREDICT_OUTPUTS = (PROBABILITIES, CLASS_INDEX, SCORE, LABEL)
EXPLAIN_OUTPUTS = PREDICT_OUTPUTS + (HEATMAP,)
