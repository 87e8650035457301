"""The public surface of ``gradcam_serving.batch`` is pinned, and every lazily loaded name resolves."""

from __future__ import annotations

import gradcam_serving.batch as batch


def test_all_is_pinned_and_every_name_resolves():
    assert batch.__all__ == [
        "BORDER_BAND",
        "BORDER_THRESHOLD",
        "GRID",
        "OUTPUT_NAMES",
        "BatchJob",
        "BatchReport",
        "ClassSummary",
        "ExplainModelHandler",
        "ExplainPlan",
        "ExplainRequest",
        "ExplainTransform",
        "Failure",
        "ImageInput",
        "ModelFacts",
        "ReadImages",
        "RemoteExplainModelHandler",
        "WriteExplanations",
        "border_share",
        "check_job",
        "check_image",
        "class_to_explain",
        "explain_batch_command",
        "explain_handler",
        "grid_of",
        "heatmap_stats",
        "input_kind",
        "input_root",
        "localize_export",
        "model_facts",
        "parquet_schema",
        "prepare_output",
        "relative_name",
        "run_batch",
    ]
    # Each access loads the name's home module: a name listed here but missing there fails.
    assert all(hasattr(batch, name) for name in batch.__all__)
