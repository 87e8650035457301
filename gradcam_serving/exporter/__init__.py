"""Export image classifiers with ``predict`` and in-graph Grad-CAM ``explain`` signatures.

Public API::

    from gradcam_serving.exporter import export_model, inspect_model, Preprocessing

    result = export_model("path/to/hub_module", "models", "flowers", layer="auto")
    print(result.path)  # models/flowers/1

``writer_version``, ``compatibility_problems`` and the release helpers tell
which ``tensorflow/serving`` release loads an export; ``gradcam_serving.deploy``
picks and checks its image tag with them.
"""

from ._compat import SERVING_VERSIONS, compatibility_problems, image_tag_for, op_registry, release_of, writer_version
from ._export import ExportResult, Inspection, export_model, inspect_model, read_export_methods, read_labels
from ._gate import run_like_tf_serving
from ._graph import REFUSED_OPS, Candidate
from ._signatures import Preprocessing, ScoreMode
from ._validate import Check, ValidationReport, validate_export
from ._warmup import WARMUP_FILE

__all__ = [
    "REFUSED_OPS",
    "SERVING_VERSIONS",
    "WARMUP_FILE",
    "Candidate",
    "Check",
    "ExportResult",
    "Inspection",
    "Preprocessing",
    "ScoreMode",
    "ValidationReport",
    "compatibility_problems",
    "export_model",
    "image_tag_for",
    "inspect_model",
    "op_registry",
    "read_export_methods",
    "read_labels",
    "release_of",
    "run_like_tf_serving",
    "validate_export",
    "writer_version",
]
