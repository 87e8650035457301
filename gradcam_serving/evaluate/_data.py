"""What ``evaluate`` scores: a folder of images, or a CSV / JSONL manifest.

A manifest row names an image (``path``, relative to the manifest), and may
give the class to explain (``label``: a class index or a label text) and the
object's box (``box``: top, left, bottom, right in the image's pixels, or the
four columns ``top,left,bottom,right`` in a CSV). Without a label the
predicted class is explained; without boxes there is no pointing game.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "MANIFEST_SUFFIXES", "Sample", "load_samples", "read_manifest", "samples_from_arrays"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_BOX_COLUMNS = ("top", "left", "bottom", "right")
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")


@dataclass(frozen=True)
class Sample:
    """One image (uint8 ``[H, W, 3]``), its name, and the optional class and box."""

    name: str
    image: np.ndarray
    label: int | str | None = None
    box: tuple[int, int, int, int] | None = None


def samples_from_arrays(
    images: np.ndarray, labels: Any = None, boxes: Any = None, names: list[str] | None = None
) -> list[Sample]:
    """Samples from in-memory arrays: ``images`` uint8 ``[N, H, W, 3]``, optional ``labels [N]`` and ``boxes [N, 4]``."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, 3]; got {images.dtype} {images.shape}")
    count = len(images)
    for what, values in (("labels", labels), ("boxes", boxes), ("names", names)):
        if values is not None and len(values) != count:
            raise ValueError(f"got {len(values)} {what} for {count} images")
    return [
        Sample(
            name=names[i] if names is not None else f"image_{i:04d}",
            image=images[i],
            label=None if labels is None else int(labels[i]),
            box=None if boxes is None else _box(boxes[i], f"image {i}"),
        )
        for i in range(count)
    ]


def load_samples(source: str | os.PathLike[str], *, limit: int | None = None) -> list[Sample]:
    """Read a folder of images, or a ``.csv`` / ``.jsonl`` manifest.

    Raises:
        ValueError: an unknown source kind, a bad row, or no images at all.
        OSError: an image that cannot be read.
    """
    path = Path(source)
    if path.is_dir():
        # Names relative to the folder, like a manifest's rows: _sample joins them to ``base`` once.
        rows = [{"path": p.name} for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        base = path
    elif path.suffix.lower() in MANIFEST_SUFFIXES:
        rows, base = read_manifest(path), path.parent
    else:
        raise ValueError(f"{os.fspath(source)!r} is neither a folder of images nor a .csv or .jsonl manifest")
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise ValueError(f"no images found in {os.fspath(source)!r} (expected {', '.join(IMAGE_SUFFIXES)} files)")
    return [_sample(row, base, f"{path.name} row {i + 1}") for i, row in enumerate(rows)]


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a ``.csv`` or ``.jsonl`` manifest, each with a ``path`` (relative to the manifest's folder).

    Raises:
        ValueError: another suffix, a CSV without a ``path`` column, or a JSONL line that is not an object with one.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _csv_rows(path)
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return _jsonl_rows(path)
    raise ValueError(f"{os.fspath(path)!r} is not a .csv or .jsonl manifest")


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValueError(f"manifest {path} needs a 'path' column; has {reader.fieldnames}")
        rows = []
        for row in reader:
            if all(row.get(c) not in (None, "") for c in _BOX_COLUMNS):
                row["box"] = [row[c] for c in _BOX_COLUMNS]
            rows.append({k: v for k, v in row.items() if v not in (None, "")})
        return rows


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"manifest {path} line {number} is not JSON: {exc.msg}") from exc
        if not isinstance(row, dict) or "path" not in row:
            raise ValueError(f"manifest {path} line {number} must be an object with a 'path' key")
        rows.append(row)
    return rows


def _sample(row: dict[str, Any], base: Path, where: str) -> Sample:
    from PIL import Image, ImageOps

    image_path = Path(row["path"])
    if not image_path.is_absolute():
        image_path = base / image_path
    with Image.open(image_path) as opened:
        image = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    box = _box(row["box"], where) if row.get("box") is not None else None
    if box is not None and not (box[2] <= image.shape[0] + 1 and box[3] <= image.shape[1] + 1):
        raise ValueError(f"{where}: box {box} lies outside the {image.shape[0]}x{image.shape[1]} image {image_path}")
    return Sample(image_path.name, image, _label(row.get("label"), where), box)


def _label(value: Any, where: str) -> int | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _box(value: Any, where: str) -> tuple[int, int, int, int]:
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    try:
        top, left, bottom, right = (int(round(float(v))) for v in parts)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: box must be 4 numbers (top, left, bottom, right); got {value!r}") from None
    if not (0 <= top < bottom and 0 <= left < right):
        raise ValueError(f"{where}: box must have 0 <= top < bottom and 0 <= left < right; got {value!r}")
    return top, left, bottom, right
