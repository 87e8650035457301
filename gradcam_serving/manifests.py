"""CSV / JSONL manifests: which images to read, and the optional class and box of each.

Shared by ``evaluate`` (which scores a few hundred images in-process) and the
Beam batch jobs (which read the same manifests from local disk or ``gs://``),
so it is plain Python: it parses text and leaves reading files to the caller.

A row names an image (``path``, relative to the manifest's folder unless
absolute or a URL), and may give the class (``label``: a class index or a
label text) and the object's box (``box``: top, left, bottom, right in the
image's pixels, or the four columns ``top,left,bottom,right`` in a CSV).
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MANIFEST_SUFFIXES",
    "ManifestRow",
    "manifest_kind",
    "parse_box",
    "parse_label",
    "parse_manifest",
    "read_manifest",
]

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")
_BOX_COLUMNS = ("top", "left", "bottom", "right")


@dataclass(frozen=True)
class ManifestRow:
    """One manifest row: the image's path as written, its optional class and box, and where it was read."""

    path: str
    label: int | str | None
    box: tuple[int, int, int, int] | None
    where: str


def manifest_kind(name: str) -> str | None:
    """``"csv"`` or ``"jsonl"`` from a file name's suffix; ``None`` if it is not a manifest."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return None


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """Parse a local ``.csv`` / ``.jsonl`` manifest (paths as written; join them to its folder yourself).

    Raises:
        ValueError: not a manifest name, a missing ``path`` column, a bad row.
    """
    name = os.fspath(path)
    kind = manifest_kind(name)
    if kind is None:
        raise ValueError(f"{name!r} is not a .csv or .jsonl manifest")
    with open(name, encoding="utf-8-sig", newline="") as handle:
        return parse_manifest(handle.read(), kind, os.path.basename(name))


def parse_manifest(text: str, kind: str, name: str) -> list[ManifestRow]:
    """Rows of a manifest's text; ``kind`` is ``"csv"`` or ``"jsonl"``, ``name`` is used in error messages."""
    raw = _csv_rows(text, name) if kind == "csv" else _jsonl_rows(text, name)
    rows = []
    for number, row in enumerate(raw, start=1):
        where = f"{name} row {number}"
        box = parse_box(row["box"], where) if row.get("box") not in (None, "") else None
        rows.append(ManifestRow(str(row["path"]), parse_label(row.get("label")), box, where))
    return rows


def _csv_rows(text: str, name: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    if not reader.fieldnames or "path" not in reader.fieldnames:
        raise ValueError(f"manifest {name} needs a 'path' column; has {reader.fieldnames}")
    rows = []
    for row in reader:
        if all(row.get(c) not in (None, "") for c in _BOX_COLUMNS):
            row["box"] = [row[c] for c in _BOX_COLUMNS]
        rows.append({k: v for k, v in row.items() if v not in (None, "")})
    return rows


def _jsonl_rows(text: str, name: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"manifest {name} line {number} is not JSON: {exc.msg}") from exc
        if not isinstance(row, dict) or "path" not in row:
            raise ValueError(f"manifest {name} line {number} must be an object with a 'path' key")
        rows.append(row)
    return rows


def parse_label(value: Any) -> int | str | None:
    """A class index (``3``, ``"3"``) as an int, a label text as text, nothing as ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def parse_box(value: str | Sequence[Any], where: str) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` from ``"t l b r"``, ``"t,l,b,r"`` or four numbers.

    Raises:
        ValueError: not four numbers, or not ``0 <= top < bottom`` and ``0 <= left < right``.
    """
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    try:
        top, left, bottom, right = (int(round(float(v))) for v in parts)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: box must be 4 numbers (top, left, bottom, right); got {value!r}") from None
    if not (0 <= top < bottom and 0 <= left < right):
        raise ValueError(f"{where}: box must have 0 <= top < bottom and 0 <= left < right; got {value!r}")
    return top, left, bottom, right
