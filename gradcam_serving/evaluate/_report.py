"""How results are shown: a terminal table, JSON, and a report folder with pictures.

The folder holds one deletion/insertion curve plot per method (mean over
images, with each image's curve faint behind it), one overlay grid per image
(a column per method), ``results.json`` and an ``index.html`` that shows them.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ._data import IMAGE_SUFFIXES
from ._runner import EvaluationReport, MethodScores
from ._sanity import SanityReport

__all__ = ["print_sanity", "print_table", "write_json", "write_report"]


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def table_rows(report: EvaluationReport) -> list[list[str]]:
    """One row per source and method: the numbers the terminal table and README show."""
    rows = []
    for r in report.results:
        pointing = "-" if r.pointing_game is None else f"{r.pointing_game:.1%} of {r.pointing_total}"
        rows.append([
            r.source, r.method, _number(r.deletion_auc), _number(r.insertion_auc),
            _number(r.average_drop, 1), _number(r.increase_in_confidence, 1), _number(r.adcc), pointing,
        ])
    return rows


HEADERS = ["source", "method", "deletion AUC ↓", "insertion AUC ↑", "avg drop % ↓", "increase % ↑", "ADCC ↑",
           "pointing game ↑"]


MAX_NAMED_SKIPS = 10
"""The table's caption names this many unreadable files; the JSON names them all."""


def notes(report: EvaluationReport) -> list[str]:
    """What a reader of the table must know: methods that gave the same maps, and the files left out."""
    lines = [
        f"{_listing(methods)} give the same maps on every image of {source}, so the same rows: expected, not a "
        "bug, when global average pooling follows the target layer (then a dense layer or a softmax): the "
        "gradient is the same at every position, and these methods reduce to the same map"
        for source, methods in report.coinciding
    ]
    if report.skipped:
        named = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:MAX_NAMED_SKIPS])
        more = len(report.skipped) - MAX_NAMED_SKIPS
        lines.append(f"skipped {len(report.skipped)} unreadable image(s), not scored: {named}"
                     + (f"; and {more} more (all in the JSON's \"skipped\")" if more > 0 else ""))
    return lines


def _listing(names: tuple[str, ...]) -> str:
    """``a, b and c``."""
    return ", ".join(names[:-1]) + f" and {names[-1]}"


def print_table(report: EvaluationReport, console: Any = None) -> None:
    """The results as a rich table; :func:`notes` below it."""
    from rich.table import Table

    title = f"{len(report.samples)} images, {report.steps} steps, blurred baseline (sigma {report.blur_sigma})"
    caption = "\n".join(notes(report)) or None
    table = Table(title=title, caption=caption, caption_justify="left")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("source", "method") else "right")
    for row in table_rows(report):
        table.add_row(*row)
    _console(console).print(table)


def _console(console: Any) -> Any:
    """The given console, else stdout's; wide when piped, so no column is cut."""
    from rich.console import Console

    if console is not None:
        return console
    console = Console()
    return console if console.is_terminal else Console(width=160)


def print_sanity(report: SanityReport, console: Any = None) -> None:
    """Per method, each randomisation step's rank correlation and SSIM, and the verdict."""
    from rich.table import Table

    console = _console(console)
    for method in report.methods:
        verdict = "PASS" if method.passed else "FAIL"
        table = Table(title=f"randomisation test, {method.method} ({method.signature}), {report.images} images: {verdict}")
        for header in ("randomised down to", "above target", "rank correlation", "SSIM"):
            table.add_column(header)
        for step in method.steps:
            mark = "yes" if step.above_target else ("?" if not method.target_known else "no")
            judged = " ◀ judged" if step is method.judged_step else ""
            table.add_row(step.layers[-1] + judged, mark, _number(step.mean_rank_correlation), _number(step.mean_ssim))
        console.print(table)


def write_json(report: EvaluationReport, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _curve_plot(result: MethodScores, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for axis, kind in zip(axes, ("deletion", "insertion")):
        curves = np.array([getattr(i, f"{kind}_curve") for i in result.images])
        x = np.linspace(0, 1, curves.shape[1])
        for curve in curves:
            axis.plot(x, curve, color="tab:blue", alpha=0.15, linewidth=0.8)
        mean = curves.mean(axis=0)
        axis.plot(x, mean, color="tab:red", linewidth=2, label="mean")
        axis.fill_between(x, mean, alpha=0.15, color="tab:red")
        auc = getattr(result, f"{kind}_auc")
        axis.set_title(f"{kind} (AUC {auc:.3f})")
        axis.set_xlabel("fraction of pixels " + ("removed" if kind == "deletion" else "inserted"))
    axes[0].set_ylabel("class probability")
    figure.suptitle(f"{result.source} · {result.method}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _overlay_grid(report: EvaluationReport, index: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    sample = report.samples[index]
    columns = len(report.results) + 1
    height, width = sample.image.shape[:2]
    # Constrained layout keeps the two-line titles inside the figure; "tight" trims the margins it leaves.
    figure, axes = plt.subplots(1, columns, figsize=(2.4 * columns, 2.4 * height / width + 0.8), layout="constrained")
    axes = np.atleast_1d(axes)
    axes[0].imshow(sample.image)
    axes[0].set_title(_short(sample.name), fontsize=8)
    several = len({r.source for r in report.results}) > 1
    for axis, result in zip(axes[1:], report.results):
        scores = result.images[index]
        axis.imshow(sample.image)
        axis.imshow(scores.heatmap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        if sample.box is not None:
            top, left, bottom, right = sample.box
            axis.add_patch(plt.Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False,
                                         edgecolor="white", linewidth=1.2))
        name = f"{_short(result.source)}\n{result.method}" if several else result.method
        axis.set_title(f"{name}\ndel {scores.deletion_auc:.2f} ins {scores.insertion_auc:.2f}", fontsize=8)
    for axis in axes:
        axis.axis("off")
    figure.savefig(path, dpi=80, bbox_inches="tight", pad_inches=0.1)
    plt.close(figure)
    return path


def _short(text: str, limit: int = 28) -> str:
    """A title that fits over one column: the end of a long name (its distinctive part) after an ellipsis."""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _stem(name: str) -> str:
    """An image's name without its image suffix (``astronaut.jpg`` -> ``astronaut``), for file names."""
    path = Path(name)
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else path.name


def _unique(path: Path, taken: set[Path]) -> Path:
    """``path``, or ``NAME_2.png``, ``NAME_3.png``... when an earlier file of this report has its name."""
    candidate, number = path, 1
    while candidate in taken:
        number += 1
        candidate = path.with_name(f"{path.stem}_{number}{path.suffix}")
    taken.add(candidate)
    return candidate


def write_report(report: EvaluationReport, folder: str | os.PathLike[str], *, max_grids: int = 50) -> Path:
    """Write curves, overlay grids, ``results.json`` and ``index.html`` into ``folder``; return the HTML path.

    Overlay grids are ``NNNN_<image name without suffix>.png`` (the number keeps ``a.jpg`` and
    ``a.png`` apart); curves are ``<source>__<method>.png``, numbered when two sources share a name.
    """
    folder = Path(folder)
    (folder / "curves").mkdir(parents=True, exist_ok=True)
    (folder / "overlays").mkdir(parents=True, exist_ok=True)
    write_json(report, folder / "results.json")
    taken: set[Path] = set()
    curves = [
        _curve_plot(r, _unique(folder / "curves" / f"{_slug(r.source)}__{_slug(r.method)}.png", taken))
        for r in report.results
    ]
    grids = [
        _overlay_grid(report, i, folder / "overlays" / f"{i:04d}_{_slug(_stem(s.name))}.png")
        for i, s in enumerate(report.samples[:max_grids])
    ]
    index = folder / "index.html"
    index.write_text(_html(report, folder, curves, grids), encoding="utf-8")
    return index


def _html(report: EvaluationReport, folder: Path, curves: list[Path], grids: list[Path]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in table_rows(report)
    )
    remarks = "".join(f'<p class="note">{html.escape(line)}</p>' for line in notes(report))
    images = lambda paths: "".join(  # noqa: E731
        f'<img src="{html.escape(p.relative_to(folder).as_posix())}" loading="lazy">' for p in paths
    )
    # The viewport line and the table's own scrolling box keep the page within a phone's screen:
    # the eight-column table is wider than 390 px, so it scrolls sideways in its box, not the page.
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>gradcam-serving evaluate</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;margin:2em;overflow-wrap:anywhere}}
@media (max-width:600px){{body{{margin:1em}}}}
.scores{{overflow-x:auto;max-width:100%}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right;overflow-wrap:normal}}
img{{max-width:100%;height:auto;display:block;margin:8px 0}}</style>
</head><body>
<h1>Explanation quality</h1>
<p>{len(report.samples)} images; {report.steps} steps per curve; baseline: Gaussian blur, sigma {report.blur_sigma} px.
Deletion AUC: lower is better. Insertion AUC, ADCC, increase in confidence, pointing game: higher is better.
These numbers say how well a map predicts what the <em>model</em> reacts to, not whether the model is right.
Raw numbers: <a href="results.json">results.json</a>.</p>
{remarks}
<div class="scores"><table><tr>{head}</tr>{body}</table></div>
<h2>Deletion and insertion curves</h2>{images(curves)}
<h2>Overlays per image</h2>{images(grids)}
</body></html>
"""
