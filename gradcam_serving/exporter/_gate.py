"""Check an export the way ``tensorflow_model_server`` loads it.

Some exports pass the Python reload and fail on TF Serving's path on every
request (Keras 3's "Could not find variable", tensorflow#72963), so every
export is gated on that path (:class:`gradcam_serving.runtime.ExportSession`),
compared with in-process results.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gradcam_serving.errors import ServingCheckError
from gradcam_serving.runtime import open_export, run_checked, session_config

from ._graph import check_refused_ops

__all__ = ["run_like_tf_serving", "verify_export"]

Arrays = Mapping[str, np.ndarray]


def run_like_tf_serving(export_dir: str | Path, requests: Mapping[str, Arrays]) -> dict[str, dict[str, np.ndarray]]:
    """Load ``export_dir`` once as TF Serving does and run each ``{signature: inputs}``.

    Returns:
        ``{signature: {output alias: array}}``.

    Raises:
        ServingCheckError: loading or running failed; the message carries TF's error.
    """
    # TF Serving's own Session options, one request at a time: the answers are compared with the in-process
    # model to the last PNG byte, and other options or concurrent runs may round a float differently.
    with open_export(export_dir, config=session_config()) as export:
        check_refused_ops(export.meta_graph.graph_def)
        return {name: run_checked(export, name, inputs) for name, inputs in requests.items()}


def verify_export(
    export_dir: str | Path,
    requests: Mapping[str, Arrays],
    expected: Mapping[str, Arrays],
    *,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Fail unless every signature, run TF Serving's way, equals ``expected``."""
    actual = run_like_tf_serving(export_dir, requests)
    for name, outputs in expected.items():
        missing = sorted(set(outputs) - set(actual[name]))
        if missing:
            raise ServingCheckError(f"signature {name!r} lacks outputs {missing} when loaded by TF Serving")
        for alias, want in outputs.items():
            got = actual[name][alias]
            if not _equal(np.asarray(got), np.asarray(want), rtol, atol):
                raise ServingCheckError(
                    f"signature {name!r} output {alias!r} differs between TF Serving's loading path and the "
                    f"in-process model (max difference {_difference(got, want)})"
                )


def _equal(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> bool:
    if got.shape != want.shape:
        return False
    if got.dtype.kind == "f":
        return bool(np.allclose(got, want, rtol=rtol, atol=atol))
    return bool(np.array_equal(got, want))


def _difference(got: np.ndarray, want: np.ndarray) -> str:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape} vs {want.shape}"
    if got.dtype.kind == "f":
        return f"{float(np.max(np.abs(got - want))):.3g}"
    return f"{int(np.sum(got != want))} differing values"
