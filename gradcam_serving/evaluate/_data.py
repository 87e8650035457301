"""What ``evaluate`` scores: a folder of images, or a CSV / JSONL manifest.

A manifest row names an image (``path``, relative to the manifest), and may
give the class to explain (``label``: a class index or a label text) and the
object's box (``box``: top, left, bottom, right in the image's pixels, or the
four columns ``top,left,bottom,right`` in a CSV). Without a label the
predicted class is explained; without boxes there is no pointing game.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcam_serving.manifests import ManifestRow, manifest_kind, parse_box, read_manifest

__all__ = ["IMAGE_SUFFIXES", "Sample", "load_samples", "samples_from_arrays"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


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
            box=None if boxes is None else parse_box(boxes[i], f"image {i}"),
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
        rows = [
            ManifestRow(p.name, None, None, f"{path.name} row {i + 1}")
            for i, p in enumerate(p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES)
        ]
        base = path
    elif manifest_kind(path.name) is not None:
        rows, base = read_manifest(path), path.parent
    else:
        raise ValueError(f"{os.fspath(source)!r} is neither a folder of images nor a .csv or .jsonl manifest")
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise ValueError(f"no images found in {os.fspath(source)!r} (expected {', '.join(IMAGE_SUFFIXES)} files)")
    return [_sample(row, base) for row in rows]


def _sample(row: ManifestRow, base: Path) -> Sample:
    from PIL import Image, ImageOps

    image_path = Path(row.path)
    if not image_path.is_absolute():
        image_path = base / image_path
    with Image.open(image_path) as opened:
        image = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    box = row.box
    if box is not None and not (box[2] <= image.shape[0] + 1 and box[3] <= image.shape[1] + 1):
        raise ValueError(f"{row.where}: box {box} lies outside the {image.shape[0]}x{image.shape[1]} image {image_path}")
    return Sample(image_path.name, image, row.label, box)
