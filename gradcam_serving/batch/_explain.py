"""One batch of checked images through an export (in-process or remote): rows, or a failure per image.

Both model handlers call :func:`explain_batch` with a backend that runs one
signature on a list of files. A batch the export refuses is split and each
image retried alone, so one bad file costs its own row only and its failure
names it (RunInference's dead-letter output would hold the whole batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gradcam_serving import signatures as sig

from ._records import ExplainRequest, Failure

__all__ = ["Backend", "ExplainPlan", "Outcome", "explain_batch", "heatmap_stats"]

Outcome = list[dict[str, Any]] | Failure
"""Per image: its rows (one per method and explained class), or why it failed."""


class Backend(Protocol):
    """Runs the export's ``*_bytes`` signatures on encoded files."""

    refusals: tuple[type[BaseException], ...]
    """Errors meaning "the export refused these inputs" (split the batch); anything else propagates."""
    failure_stage: str

    def explain(self, method: str, data: Sequence[bytes], classes: Sequence[int]) -> Answers:
        """``explain_bytes_<method>``'s answers, read by the method's family (the signature table)."""
        ...

    def predict(self, data: Sequence[bytes]) -> np.ndarray:
        """``predict_bytes`` probabilities ``[N, C]``."""
        ...


@dataclass(frozen=True)
class Answers:
    """One explain call's outputs for N images, named by what they are rather than by a family's aliases.

    Attributes:
        predict: ``probabilities``, ``class_index``, ``score``, ``label``.
        map: the family's map (:attr:`gradcam_serving.signatures.Family.map`), ``[N, H, W]`` in [0, 1].
        raw: the family's map before normalisation (``cam`` for CAMs), or ``None``.
        overlay: the family's overlay PNGs, when asked for and the family draws one.
        method: per image, the method the answer says computed it (``None`` from exports of contract 1).
    """

    predict: Mapping[str, np.ndarray]
    map: np.ndarray
    raw: np.ndarray | None = None
    overlay: Sequence[bytes] | None = None
    method: Sequence[str] | None = None

    @classmethod
    def of(cls, result: Any) -> Answers:
        """From a :class:`gradcam_serving.client.Explanation` (a server's answer or an export's, decoded alike)."""
        raw = sig.FAMILIES[result.family].raw
        return cls(
            predict={alias: np.asarray(getattr(result, alias)) for alias in sig.PREDICT_OUTPUTS},
            map=np.asarray(result.heatmap), raw=np.asarray(result.outputs[raw]) if raw in result.outputs else None,
            overlay=result.overlay_png, method=result.method,
        )


@dataclass(frozen=True)
class ExplainPlan:
    """What to compute per image: the methods, how many of the most probable classes, whether to keep overlays.

    ``methods`` are already resolved (:func:`gradcam_serving.signatures.resolve_methods`): names the export holds,
    or :data:`~gradcam_serving.signatures.DEFAULT_METHOD` for its plain ``explain_bytes``.
    """

    methods: tuple[str, ...]
    top_k: int = 1
    overlays: bool = False


def explain_batch(backend: Backend, requests: Sequence[ExplainRequest], plan: ExplainPlan) -> list[Outcome]:
    """Rows for every request; a batch the export refuses is retried one image at a time."""
    try:
        return _explain_all(backend, requests, plan)
    except backend.refusals as exc:
        if len(requests) == 1:
            return [Failure(requests[0].path, backend.failure_stage, _message(exc))]
    return [explain_batch(backend, [request], plan)[0] for request in requests]


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {' '.join(str(text).split())}"


def _explain_all(backend: Backend, requests: Sequence[ExplainRequest], plan: ExplainPlan) -> list[Outcome]:
    data = [r.data for r in requests]
    k = plan.top_k
    if k > 1:
        probabilities = np.asarray(backend.predict(data))
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        data = [d for d in data for _ in range(k)]
        classes = [int(c) for c in top.ravel()]
    else:
        classes = [r.class_index for r in requests]
    rows: list[list[dict[str, Any]]] = [[] for _ in requests]
    for method in plan.methods:
        outputs = backend.explain(method, data, classes)
        for j in range(len(data)):
            rows[j // k].append(_row(requests[j // k], method, outputs, j, rank=j % k + 1, plan=plan))
    return list(rows)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _row(request: ExplainRequest, method: str, outputs: Answers, j: int, *, rank: int,
         plan: ExplainPlan) -> dict[str, Any]:
    predict = outputs.predict
    probabilities = np.asarray(predict[sig.PROBABILITIES][j], np.float32)
    top = np.argsort(-probabilities, kind="stable")[: max(plan.top_k, 1)]
    heatmap = np.asarray(outputs.map[j], np.float32)
    cam = np.asarray(outputs.raw[j], np.float32) if outputs.raw is not None else np.zeros((0, 0), np.float32)
    overlay = outputs.overlay if plan.overlays else None
    return {
        "path": request.path,
        "height": request.height,
        "width": request.width,
        "label": request.label,
        "predicted_class": int(top[0]),
        "predicted_score": float(probabilities[top[0]]),
        "top_classes": [int(c) for c in top],
        "top_scores": [float(probabilities[c]) for c in top],
        "method": outputs.method[j] if outputs.method and outputs.method[j] else method,
        "rank": rank,
        "explained_class": int(np.asarray(predict[sig.CLASS_INDEX])[j]),
        "explained_label": _text(np.asarray(predict[sig.LABEL])[j]),
        "score": float(np.asarray(predict[sig.SCORE])[j]),
        "cam": cam.ravel().tolist(),
        "cam_shape": list(cam.shape),
        **heatmap_stats(heatmap),
        "heatmap": heatmap,
        "overlay_png": None if overlay is None else bytes(overlay[j]),
    }


def heatmap_stats(heatmap: np.ndarray) -> dict[str, float]:
    """Where the map peaks (row, column as fractions of the image, cell centres) and its share above 0.5."""
    height, width = heatmap.shape
    row, column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return {
        "peak_row": (row + 0.5) / height,
        "peak_col": (column + 0.5) / width,
        "area_above_half": float(np.mean(heatmap > 0.5)),
    }
