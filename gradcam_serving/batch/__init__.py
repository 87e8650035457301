"""Explain a whole dataset on Apache Beam: from a laptop (DirectRunner) to Dataflow, Flink or Spark.

Public API::

    import apache_beam as beam
    from gradcam_serving.batch import ExplainTransform, ReadImages, WriteExplanations

    with beam.Pipeline() as pipeline:
        explained = (pipeline | ReadImages("photos/*.jpg")
                     | ExplainTransform("models/flowers/1", methods="all"))
        explained | WriteExplanations("explanations", overlays=True)

``ExplainTransform`` also takes a model handler: :class:`ExplainModelHandler`
(the export loaded in each worker, TF Serving's way) or
:class:`RemoteExplainModelHandler` (a running server, through the project's
gRPC client, with Beam's retries and client-side throttling). The
``gradcam-serving explain-batch`` command is :func:`run_batch`.

Needs the ``[beam]`` extra; in-process explaining also needs ``[tf]``.
"""

from gradcam_serving.lazy import lazy_module_attributes

_HOMES = {
    "ExplainPlan": "_explain", "heatmap_stats": "_explain",
    "ExplainModelHandler": "_handlers", "RemoteExplainModelHandler": "_handlers", "explain_handler": "_handlers",
    "ModelFacts": "_model", "localize_export": "_model", "model_facts": "_model",
    "ExplainTransform": "_pipeline", "ReadImages": "_pipeline", "WriteExplanations": "_pipeline",
    "input_kind": "_job", "input_root": "_job", "parquet_schema": "_pipeline", "relative_name": "_pipeline",
    "ExplainRequest": "_records", "Failure": "_records", "ImageInput": "_records", "check_image": "_records",
    "class_to_explain": "_records",
    "BatchJob": "_job", "check_job": "_job",
    "OUTPUT_NAMES": "_output", "prepare_output": "_output", "BatchReport": "_run", "run_batch": "_run",
    "BORDER_BAND": "_summary", "BORDER_THRESHOLD": "_summary", "GRID": "_summary", "ClassSummary": "_summary",
    "border_share": "_summary", "grid_of": "_summary",
    "explain_batch_command": "_cli",
}
"""Where each public name lives: loaded on first access (PEP 562), so ``gradcam_serving.cli`` can register
the command without importing Beam or TensorFlow."""


__getattr__, __dir__ = lazy_module_attributes(__name__, _HOMES)

__all__ = [
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
