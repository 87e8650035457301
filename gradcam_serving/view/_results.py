"""``view --results DIR``: an ``explain-batch`` output folder, read for the page.

The folder's ``results-*.parquet`` rows are held as one pyarrow table: the page gets every row
without its raw ``cam`` (a listing stays small), and asks for one row's ``cam`` or overlay when it
is chosen. Overlay files are sent only from inside the folder, through the gallery's confinement
check, so neither a ``..`` in a row nor a symlink in the folder reaches another file. A row
without an overlay comes with its input image (the file the row names, decoded and re-encoded
as a small PNG, so only pixels of a real image leave the server), for the page to draw the map over it.
pyarrow comes with the ``[beam]`` extra and is imported only here.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ViewError
from ._gallery import confined

__all__ = ["LISTED", "Results", "read_results"]

LISTED = ("path", "label", "predicted_class", "predicted_score", "method", "rank", "explained_class",
          "explained_label", "score", "peak_row", "peak_col", "area_above_half", "height", "width")
"""The parquet columns the page's table shows (``cam`` is sent per row, on demand)."""

IMAGE_SIDE = 640
"""A row's input image is sent at most this many pixels per side (the page draws it at 320, twice for HiDPI)."""


def _number(value: Any) -> Any:
    """JSON has no NaN: a missing or non-finite float becomes null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass
class Results:
    """The rows, failures and summary of one ``explain-batch`` output folder."""

    root: Path
    table: Any  # pyarrow.Table of every results-*.parquet, in file order
    failed: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def listing(self) -> dict[str, Any]:
        """What the page's results section shows: rows without ``cam``, class names, failures, summary."""
        names = [c for c in LISTED if c in self.table.column_names]
        rows = [{k: _number(v) for k, v in row.items()} for row in self.table.select(names).to_pylist()]
        overlays = self.table.column("overlay_file").to_pylist() if "overlay_file" in self.table.column_names \
            else [None] * len(rows)
        for index, (row, overlay) in enumerate(zip(rows, overlays)):
            row["index"], row["overlay"] = index, bool(overlay)
        return {"folder": self.root.name, "rows": rows, "labels": self._labels(rows), "failed": self.failed,
                "summary": self.summary, "problems": self.problems}

    def _labels(self, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Class index -> label, from the explained rows and the summary (predicted classes have no label column)."""
        labels = {str(r["explained_class"]): r["explained_label"] for r in rows
                  if r.get("explained_class") is not None and r.get("explained_label")}
        for entry in (self.summary or {}).get("classes", []):
            labels.setdefault(str(entry["class_index"]), entry["label"])
        return labels

    def _row(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.table.num_rows:
            raise ViewError(404, f"no result row {index} (there are {self.table.num_rows})")
        return self.table.slice(index, 1).to_pylist()[0]

    def cam(self, index: int) -> dict[str, Any]:
        """One row's raw ``cam`` and its shape, and its input image (or why not), for the page to draw the map over it."""
        row = self._row(index)
        shape = row.get("cam_shape") or []
        values = row.get("cam") or []
        if len(shape) != 2 or shape[0] * shape[1] != len(values):
            raise ViewError(404, f"row {index} ({row.get('path')}) holds no 2-D cam (cam_shape {shape})")
        image, problem = _input_image(row)
        return {"shape": shape, "cam": [_number(v) for v in values], "image": image, "image_problem": problem}

    def overlay(self, index: int) -> bytes:
        """The row's overlay PNG, read only from inside the folder."""
        row = self._row(index)
        relative = row.get("overlay_file")
        if not relative:
            raise ViewError(404, f"row {index} ({row.get('path')}) has no overlay: run explain-batch with --overlays")
        path, problem = confined(self.root, relative)
        if path is None:
            raise ViewError(404, f"overlay of row {index}: {problem}")
        return path.read_bytes()


def _input_image(row: dict[str, Any]) -> tuple[str | None, str | None]:
    """The row's input image as a PNG data URL (at most :data:`IMAGE_SIDE` per side), else ``None`` and why.

    The pixels are taken as the export decoded them (no EXIF rotation), so the map lies where it was
    computed; a file whose size is not the row's (changed since the job) is not used.
    """
    from PIL import Image

    path = row.get("path")
    if not path:
        return None, "the row names no input file"
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - any unreadable input (gone, remote, not an image) is one line
        return None, f"its input {path} could not be read ({type(exc).__name__})"
    size = (row.get("width"), row.get("height"))
    if None not in size and image.size != size:
        return None, f"its input {path} is {image.size[0]}×{image.size[1]} now, the row says {size[0]}×{size[1]}"
    image.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
    encoded = io.BytesIO()
    image.save(encoded, format="PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.getvalue()).decode("ascii"), None


def _read_table(files: list[Path]) -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("--results reads Parquet with pyarrow: pip install 'gradcam-serving[beam]'") from None
    tables = []
    for path in files:
        try:
            tables.append(pq.read_table(path))
        except Exception as exc:  # noqa: BLE001 - named with the file, one line
            raise ValueError(f"--results: {path.name} is not a readable Parquet file: {exc}") from None
    if not tables:
        return pa.table({name: pa.array([], pa.string()) for name in ("path",)})
    return pa.concat_tables(tables, promote_options="default")


def _read_failed(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    failed = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"failed.jsonl line {number} is not JSON")
            continue
        failed.append({k: entry.get(k) for k in ("path", "stage", "error")})
    return failed


def read_results(folder: str | Path) -> Results:
    """Read an ``explain-batch`` output folder.

    Raises:
        ValueError: not a folder, or neither ``results-*.parquet`` nor ``summary.json`` inside it,
            or pyarrow missing (which extra to install is said).
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise ValueError(f"--results {folder}: not a folder (expected explain-batch's OUTPUT folder)")
    files = sorted(p for p in root.glob("results-*.parquet") if confined(root, p.name)[0] is not None)
    summary_path = root / "summary.json"
    if not files and not summary_path.is_file():
        raise ValueError(f"--results {folder}: no results-*.parquet or summary.json inside it "
                         "(expected the OUTPUT folder of gradcam-serving explain-batch)")
    problems: list[str] = []
    summary = None
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"summary.json is not JSON ({exc.msg})")
    return Results(root, _read_table(files), _read_failed(root / "failed.jsonl", problems), summary, problems)
