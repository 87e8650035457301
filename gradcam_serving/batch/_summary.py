"""The dataset-level picture: per explained class, how many images and where the evidence lies.

Each row's heatmap is reduced to a fixed grid; a ``CombineFn`` sums grids and
border shares per (method, class) on the workers, so the driver never holds
the heatmaps. A class whose evidence sits in the image's border band far more
than a map spread evenly would is flagged: that is what a watermark, a ruler
or a hospital tag in the corner looks like when the model has learned it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import numpy as np

__all__ = ["BORDER_BAND", "BORDER_THRESHOLD", "GRID", "ClassSummary", "border_share", "grid_of", "summary_document"]

GRID = 32
"""Mean heatmaps are kept on a GRID x GRID grid, whatever the export's input size."""
BORDER_BAND = 1 / 8
"""The border band's width, as a fraction of each side."""
BORDER_THRESHOLD = 0.5
"""A class is flagged when, on average, this share of its strong evidence lies in the band (44% of the area)."""
HOT = 0.5
"""Strong evidence: the part of a [0, 1] heatmap above this (a diffuse background would hide a corner blob)."""


def grid_of(heatmap: np.ndarray, size: int = GRID) -> np.ndarray:
    """The heatmap resized to ``size x size`` (bilinear), so maps of any export size can be averaged."""
    from PIL import Image

    image = Image.fromarray(np.asarray(heatmap, np.float32), mode="F")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), np.float32)


def _band_mask(size: int, band: float) -> np.ndarray:
    width = max(1, int(round(size * band)))
    mask = np.ones((size, size), bool)
    mask[width:size - width, width:size - width] = False
    return mask


def border_share(grid: np.ndarray, band: float = BORDER_BAND) -> float:
    """The share of the map's strong evidence (its mass above :data:`HOT`) inside the border band; 0 if none."""
    hot = np.maximum(np.asarray(grid, np.float64) - HOT, 0.0)
    total = float(hot.sum())
    return float(hot[_band_mask(hot.shape[0], band)].sum()) / total if total > 0 else 0.0


class ClassSummary(beam.CombineFn):
    """Sum of grids, border shares and scores per key; the mean at the end."""

    def create_accumulator(self) -> tuple[int, np.ndarray, float, float]:
        return 0, np.zeros((GRID, GRID), np.float64), 0.0, 0.0

    def add_input(self, accumulator: Any, value: tuple[np.ndarray, float, float]) -> Any:
        count, grid, share, score = accumulator
        return count + 1, grid + value[0], share + value[1], score + value[2]

    def merge_accumulators(self, accumulators: Iterable[Any]) -> Any:
        count, grid, share, score = self.create_accumulator()
        for c, g, s, sc in accumulators:
            count, grid, share, score = count + c, grid + g, share + s, score + sc
        return count, grid, share, score

    def extract_output(self, accumulator: Any) -> dict[str, Any]:
        count, grid, share, score = accumulator
        scale = 1.0 / max(count, 1)
        return {"count": count, "mean_heatmap": (grid * scale).astype(np.float32),
                "border_share": share * scale, "mean_score": score * scale}


def summary_document(
    classes: Sequence[tuple[tuple[str, int, str], dict[str, Any]]],
    *, images: int, failed: int, rows: int, threshold: float = BORDER_THRESHOLD,
) -> dict[str, Any]:
    """``summary.json``'s content from the combined classes ``((method, class, label), summary)``."""
    entries = []
    for (method, index, label), value in sorted(classes, key=lambda item: item[0]):
        entries.append({
            "method": method, "class_index": index, "label": label, "count": value["count"],
            "mean_score": round(float(value["mean_score"]), 6),
            "border_share": round(float(value["border_share"]), 6),
            "flagged": bool(value["border_share"] >= threshold),
            "mean_heatmap": np.round(value["mean_heatmap"], 5).tolist(),
        })
    band_area = float(_band_mask(GRID, BORDER_BAND).mean())
    return {
        "inputs": images + failed, "images": images, "failed": failed, "rows": rows,
        "grid": GRID, "border_band": BORDER_BAND, "border_area": band_area, "border_threshold": threshold,
        "flagged": [{k: e[k] for k in ("method", "class_index", "label", "border_share")} for e in entries if e["flagged"]],
        "classes": entries,
    }


def summary_png(document: dict[str, Any]) -> bytes:
    """A grid of mean heatmaps: one row per method, one column per explained class, flagged ones marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    entries = document["classes"]
    methods = sorted({e["method"] for e in entries})
    columns = max([sum(e["method"] == m for e in entries) for m in methods] or [1])
    figure = Figure(figsize=(2.2 * columns, 2.4 * max(len(methods), 1) + 0.4), dpi=100)
    figure.suptitle(f"{document['images']} images, {document['failed']} failed: mean heatmap per explained class")
    for r, method in enumerate(methods or [""]):
        row = [e for e in entries if e["method"] == method]
        for c, entry in enumerate(row):
            axes = figure.add_subplot(max(len(methods), 1), columns, r * columns + c + 1)
            axes.imshow(np.asarray(entry["mean_heatmap"]), cmap="jet", vmin=0, vmax=1)
            flag = "  SHORTCUT?" if entry["flagged"] else ""
            axes.set_title(f"{method}: {entry['label']} (n={entry['count']})\nborder {entry['border_share']:.2f}{flag}",
                           fontsize=8, color="red" if entry["flagged"] else "black")
            axes.set_xticks([])
            axes.set_yticks([])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def summary_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1)
