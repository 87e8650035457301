"""Export image classifiers with ``predict`` and in-graph Grad-CAM ``explain`` signatures.

Public API::

    from gradcam_serving.exporter import export_model, inspect_model, Preprocessing

    result = export_model("path/to/hub_module", "models", "flowers", layer="auto")
    print(result.path)  # models/flowers/1

``writer_version``, ``compatibility_problems`` and the release helpers tell
which ``tensorflow/serving`` release loads an export; ``gradcam_serving.deploy``
picks and checks its image tag with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradcam_serving.lazy import lazy_module_attributes

if TYPE_CHECKING:
    from ._cli import export_command, inspect_command, validate_command
    from ._compat import SERVING_VERSIONS, compatibility_problems, image_tag_for, op_registry, release_of, writer_version
    from ._export import ExportResult, Inspection, export_model, inspect_model, read_labels
    from ._gate import run_like_tf_serving
    from ._graph import Candidate, REFUSED_OPS
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
    "export_command",
    "export_model",
    "image_tag_for",
    "inspect_command",
    "inspect_model",
    "op_registry",
    "read_labels",
    "release_of",
    "run_like_tf_serving",
    "validate_command",
    "validate_export",
    "writer_version",
]

_HOMES = {
    "export_command": "_cli", "inspect_command": "_cli", "validate_command": "_cli",
    "SERVING_VERSIONS": "_compat", "compatibility_problems": "_compat", "image_tag_for": "_compat",
    "op_registry": "_compat", "release_of": "_compat", "writer_version": "_compat",
    "ExportResult": "_export", "Inspection": "_export", "export_model": "_export", "inspect_model": "_export",
    "read_labels": "_export",
    "run_like_tf_serving": "_gate",
    "REFUSED_OPS": "_graph", "Candidate": "_graph",
    "Preprocessing": "_signatures", "ScoreMode": "_signatures",
    "Check": "_validate", "ValidationReport": "_validate", "validate_export": "_validate",
    "WARMUP_FILE": "_warmup",
}
"""Where each public name lives, loaded on first use: TensorFlow is imported only when a name that needs it
is, so the command line registers ``inspect``, ``export`` and ``validate`` without it."""

__getattr__, __dir__ = lazy_module_attributes(__name__, _HOMES)
