"""Export image classifiers with ``predict`` and in-graph Grad-CAM ``explain`` signatures.

Public API::

    from gradcam_serving.exporter import export_model, inspect_model, Preprocessing

    result = export_model("path/to/hub_module", "models", "flowers", layer="auto")
    print(result.path)  # models/flowers/1
"""

from ._export import ExportResult, Inspection, export_model, inspect_model, read_labels
from ._gate import run_like_tf_serving
from ._graph import REFUSED_OPS, Candidate
from ._signatures import Preprocessing, ScoreMode

__all__ = [
    "REFUSED_OPS",
    "Candidate",
    "ExportResult",
    "Inspection",
    "Preprocessing",
    "ScoreMode",
    "export_model",
    "inspect_model",
    "read_labels",
    "run_like_tf_serving",
]
