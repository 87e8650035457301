"""Export image classifiers with ``predict`` and in-graph Grad-CAM ``explain`` signatures.

Public API::

    from gradcam_serving.exporter import export_model, inspect_model, Preprocessing

    result = export_model("path/to/hub_module", "models", "flowers", layer="auto")
    print(result.path)  # models/flowers/1
"""

from ._export import ExportResult, Inspection, export_model, inspect_model, read_labels
from ._gate import open_export, run_checked, run_like_tf_serving
from ._graph import REFUSED_OPS, Candidate
from ._signatures import Preprocessing, ScoreMode
from ._validate import Check, ValidationReport, validate_export
from ._warmup import WARMUP_FILE

__all__ = [
    "REFUSED_OPS",
    "WARMUP_FILE",
    "Candidate",
    "Check",
    "ExportResult",
    "Inspection",
    "Preprocessing",
    "ScoreMode",
    "ValidationReport",
    "export_model",
    "inspect_model",
    "open_export",
    "read_labels",
    "run_checked",
    "run_like_tf_serving",
    "validate_export",
]
