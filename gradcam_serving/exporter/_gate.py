"""Check an export the way ``tensorflow_model_server`` loads it.

TF Serving does not call ``tf.saved_model.load``: it runs the TF1 loader with
the ``serve`` tag in a Session, then feeds and fetches each signature by the
tensor names in its SignatureDef. Some exports pass the Python reload and fail
there on every request (Keras 3's "Could not find variable", tensorflow#72963),
so every export is gated on this exact path, compared with in-process results.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

from gradcam_serving.errors import ServingCheckError
from gradcam_serving.signatures import SERVE_TAG

from ._graph import check_refused_ops

__all__ = ["SERVE_TAG", "run_like_tf_serving", "tf_error_summary", "verify_export"]

Arrays = Mapping[str, np.ndarray]


def run_like_tf_serving(export_dir: str | Path, requests: Mapping[str, Arrays]) -> dict[str, dict[str, np.ndarray]]:
    """Load ``export_dir`` as TF Serving does and run each ``{signature: inputs}``.

    Returns:
        ``{signature: {output alias: array}}``.

    Raises:
        ServingCheckError: loading or running failed; the message carries TF's error.
    """
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(export_dir))
        except Exception as exc:  # TF raises many error types for unloadable models
            raise ServingCheckError(f"TF Serving's loader cannot load {export_dir}: {exc}") from exc
        check_refused_ops(meta_graph.graph_def)
        results = {}
        for name, inputs in requests.items():
            results[name] = _run_signature(session, meta_graph, name, inputs, export_dir)
    return results


def _run_signature(
    session: tf.compat.v1.Session, meta_graph: object, name: str, inputs: Arrays, export_dir: str | Path
) -> dict[str, np.ndarray]:
    signature_defs = meta_graph.signature_def  # type: ignore[attr-defined]
    if name not in signature_defs:
        raise ServingCheckError(f"signature {name!r} is missing from {export_dir} (has {sorted(signature_defs)})")
    signature = signature_defs[name]
    feeds = {signature.inputs[alias].name: value for alias, value in inputs.items()}
    fetches = {alias: info.name for alias, info in signature.outputs.items()}
    try:
        return session.run(fetches, feed_dict=feeds)
    except tf.errors.OpError as exc:
        raise ServingCheckError(
            f"signature {name!r} fails when run the way TF Serving runs it: {tf_error_summary(exc)}"
        ) from exc


def tf_error_summary(exc: tf.errors.OpError) -> str:
    """The informative part of a TF runtime error, without node and stack noise."""
    noise = ("Graph execution error", "Detected at node", "[[", "File ", "Condition x", "x (", "y (")
    lines = [line.strip() for line in exc.message.splitlines()]
    kept = [line for line in lines if line and not line.startswith(noise)]
    return " ".join(kept) or exc.message


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
