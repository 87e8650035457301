"""Trust: faithfulness metrics for exported explanations, and the randomisation sanity check.

Public API::

    from gradcam_serving.evaluate import evaluate, load_samples, sanity_check, write_report

    report = evaluate("models/flowers/1", load_samples("images/"), steps=20)
    write_report(report, "evaluation")          # curves, overlay grids, results.json, index.html
    print(sanity_check("models/flowers/1").passed)

Needs TensorFlow for in-process exports; against a server (``server=``,
``model=``) only the thin client is used.
"""

from ._backends import PLAIN_EXPLAIN_METHOD, explain_methods
from ._data import Sample, Samples, Skipped, load_samples, samples_from_arrays
from ._metrics import (
    adcc,
    auc,
    average_drop,
    blur,
    coherency,
    complexity,
    increase_in_confidence,
    masked_by_map,
    perturbation_curve_inputs,
    pointing_game_hits,
)
from ._cli import run_evaluate, run_sanity
from ._report import print_sanity, print_table, write_json, write_report
from ._runner import EvaluationReport, ImageScores, MapFunction, MethodScores, evaluate, random_map
from ._sanity import DEFAULT_THRESHOLD, SanityReport, rank_correlation, sanity_check, similarity_per_step, ssim


def __getattr__(name: str) -> object:
    """``evaluate_on_beam`` loads Apache Beam, so it is imported only when used (PEP 562)."""
    if name == "evaluate_on_beam":
        from ._beam import evaluate_on_beam

        return evaluate_on_beam
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_THRESHOLD",
    "evaluate_on_beam",
    "PLAIN_EXPLAIN_METHOD",
    "EvaluationReport",
    "ImageScores",
    "MapFunction",
    "MethodScores",
    "Sample",
    "Samples",
    "Skipped",
    "SanityReport",
    "adcc",
    "auc",
    "average_drop",
    "blur",
    "coherency",
    "complexity",
    "evaluate",
    "explain_methods",
    "increase_in_confidence",
    "load_samples",
    "masked_by_map",
    "perturbation_curve_inputs",
    "pointing_game_hits",
    "print_sanity",
    "print_table",
    "random_map",
    "rank_correlation",
    "run_evaluate",
    "run_sanity",
    "sanity_check",
    "samples_from_arrays",
    "similarity_per_step",
    "ssim",
    "write_json",
    "write_report",
]
