"""Trust: faithfulness metrics for exported explanations, and the randomisation sanity check.

Public API::

    from gradcam_serving.evaluate import evaluate, load_samples, sanity_check, write_report

    report = evaluate("models/flowers/1", load_samples("images/"), steps=20)
    write_report(report, "evaluation")          # curves, overlay grids, results.json, index.html
    print(sanity_check("models/flowers/1").passed)

Needs TensorFlow for in-process exports; against a server (``server=``,
``model=``) only the thin client is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradcam_serving.lazy import lazy_module_attributes

if TYPE_CHECKING:
    from ._backends import explain_methods
    from ._beam import evaluate_on_beam
    from ._cli import evaluate_command, run_evaluate, run_sanity
    from ._data import Sample, Samples, Skipped, load_samples, samples_from_arrays
    from ._metrics import adcc, auc, average_drop, blur, coherency, complexity, increase_in_confidence, masked_by_map, perturbation_curve_inputs, pointing_game_hits
    from ._report import print_sanity, print_table, write_json, write_report
    from ._runner import EvaluationReport, ImageScores, MapFunction, MethodScores, evaluate, random_map
    from ._sanity import DEFAULT_THRESHOLD, SanityReport, rank_correlation, sanity_check, similarity_per_step, ssim

__all__ = [
    "DEFAULT_THRESHOLD",
    "evaluate_on_beam",
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
    "evaluate_command",
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

_HOMES = {
    "explain_methods": "_backends",
    "evaluate_on_beam": "_beam",
    "evaluate_command": "_cli", "run_evaluate": "_cli", "run_sanity": "_cli",
    "Sample": "_data", "Samples": "_data", "Skipped": "_data", "load_samples": "_data", "samples_from_arrays": "_data",
    "adcc": "_metrics", "auc": "_metrics", "average_drop": "_metrics", "blur": "_metrics", "coherency": "_metrics",
    "complexity": "_metrics", "increase_in_confidence": "_metrics", "masked_by_map": "_metrics",
    "perturbation_curve_inputs": "_metrics", "pointing_game_hits": "_metrics",
    "print_sanity": "_report", "print_table": "_report", "write_json": "_report", "write_report": "_report",
    "EvaluationReport": "_runner", "ImageScores": "_runner", "MapFunction": "_runner", "MethodScores": "_runner",
    "evaluate": "_runner", "random_map": "_runner",
    "DEFAULT_THRESHOLD": "_sanity", "SanityReport": "_sanity", "rank_correlation": "_sanity",
    "sanity_check": "_sanity", "similarity_per_step": "_sanity", "ssim": "_sanity",
}
"""Where each public name lives, loaded on first use: numpy, TensorFlow and Beam stay unloaded until needed,
so the command line registers ``evaluate`` cheaply."""

__getattr__, __dir__ = lazy_module_attributes(__name__, _HOMES)
