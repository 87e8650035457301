"""What ``evaluate`` scores: a folder of images, or a CSV / JSONL manifest.

A manifest row names an image (``path``, relative to the manifest), and may
give the class to explain (``label``: a class index or a label text) and the
object's box (``box``: top, left, bottom, right in the image's pixels, or the
four columns ``top,left,bottom,right`` in a CSV). Without a label the
predicted class is explained; without boxes there is no pointing game.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcam_serving.manifests import ManifestRow, manifest_kind, parse_box, read_manifest

__all__ = ["IMAGE_SUFFIXES", "Sample", "Samples", "Skipped", "load_samples", "samples_from_arrays", "skipped_of"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass(frozen=True)
class Sample:
    """One image (uint8 ``[H, W, 3]``), its name, and the optional class and box."""

    name: str
    image: np.ndarray
    label: int | str | None = None
    box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Skipped:
    """A file :func:`load_samples` could not read as an image (``path`` as the user named it), and why."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class Samples(list[Sample]):
    """The images :func:`load_samples` read, and the files it left out (``skipped``).

    A list, so code written for ``list[Sample]`` keeps working; :func:`evaluate` reads
    ``skipped`` to name the left-out files in its report.
    """

    def __init__(self, samples: Iterable[Sample] = (), skipped: Iterable[Skipped] = ()) -> None:
        super().__init__(samples)
        self.skipped: tuple[Skipped, ...] = tuple(skipped)


def skipped_of(samples: Sequence[Sample]) -> tuple[Skipped, ...]:
    """The files left out while reading ``samples`` (none for in-memory samples)."""
    return samples.skipped if isinstance(samples, Samples) else ()


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


def load_samples(source: str | os.PathLike[str], *, limit: int | None = None, strict: bool = False) -> Samples:
    """Read a folder of images, or a ``.csv`` / ``.jsonl`` manifest.

    A file that cannot be read as an image (not an image, truncated, missing) is left out and
    named in the result's ``skipped``, as ``explain-batch`` lists and passes a bad file: one
    broken photo should not hide the scores of the rest. ``strict=True`` refuses instead.

    Raises:
        ValueError: an unknown source kind, a bad row, no images at all, no image readable,
            or (``strict``) any unreadable image, every one named.
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
    read = [_sample(row, base) for row in rows]
    samples = Samples([r for r in read if isinstance(r, Sample)], [r for r in read if isinstance(r, Skipped)])
    if samples.skipped and (strict or not samples):
        which = f"{len(samples.skipped)} of the {len(rows)}" if samples else f"none of the {len(rows)}"
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in samples.skipped)
        raise ValueError(f"{which} images in {os.fspath(source)!r} could {'not ' if samples else ''}be read: {reasons}")
    return samples


def _sample(row: ManifestRow, base: Path) -> Sample | Skipped:
    from PIL import Image, ImageOps

    image_path = Path(row.path)
    if not image_path.is_absolute():
        image_path = base / image_path
    try:
        with Image.open(image_path) as opened:
            image = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    except (OSError, SyntaxError, ValueError, struct.error, Image.DecompressionBombError) as exc:
        return Skipped(os.fspath(image_path), _reason(exc))
    box = row.box
    if box is not None and not (box[2] <= image.shape[0] + 1 and box[3] <= image.shape[1] + 1):
        raise ValueError(f"{row.where}: box {box} lies outside the {image.shape[0]}x{image.shape[1]} image {image_path}")
    return Sample(image_path.name, image, row.label, box)


def _reason(exc: BaseException) -> str:
    """Why a file is not an image, in words that do not repeat its path."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read (unknown or corrupt format)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"too large to open safely: {exc}"
    if isinstance(exc, OSError) and exc.strerror:  # missing, a folder, no permission
        return exc.strerror
    return f"truncated or corrupt image: {exc}"
