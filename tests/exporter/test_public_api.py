"""The public surface of ``gradcam_serving.exporter`` is pinned: a name leaves or arrives only on purpose."""

from __future__ import annotations

import gradcam_serving.exporter as exporter


def test_all_is_pinned_and_every_name_resolves():
    assert exporter.__all__ == [
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
    assert all(hasattr(exporter, name) for name in exporter.__all__)
