"""What flows through the batch pipeline: inputs, checked requests, failures, result rows.

Plain picklable dataclasses (Beam ships them between worker processes), and
the pre-batching check: RunInference's dead-letter output holds a *whole*
failing batch as one element, so each input is checked on its own first
(empty, not JPEG/PNG, over the export's pixel limit, truncated) and only
inputs the graph can decode are batched.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "STAGE_CHECK",
    "STAGE_EXPLAIN",
    "STAGE_READ",
    "STAGE_SERVER",
    "ExplainRequest",
    "Failure",
    "ImageInput",
    "check_image",
    "class_to_explain",
]

STAGE_READ = "read"
"""The file could not be read (missing, unreadable, a bad TFRecord entry)."""
STAGE_CHECK = "check"
"""The bytes are not an image the export decodes (empty, not JPEG/PNG, too large, truncated), or no label."""
STAGE_EXPLAIN = "explain"
"""The export refused the image when run on its own."""
STAGE_SERVER = "server"
"""The server failed the batch after the retries."""

_FORMATS = ("JPEG", "PNG")
"""What the export's ``*_bytes`` signatures decode (their graph checks the magic bytes)."""


@dataclass(frozen=True)
class ImageInput:
    """One image to explain: where it comes from, its file bytes (``None``: read ``path``), its label if known.

    ``error`` says why a source could not even produce the bytes (a corrupt TFRecord entry).
    """

    path: str
    data: bytes | None = None
    label: int | str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ExplainRequest:
    """A checked image, ready to batch: file bytes the export decodes, and the class to explain (-1: predicted)."""

    path: str
    data: bytes
    class_index: int
    label: str | None
    height: int
    width: int


@dataclass(frozen=True)
class Failure:
    """An input that could not be explained, with the stage that failed and why (a line of ``failed.jsonl``)."""

    path: str
    stage: str
    error: str

    def as_json(self) -> str:
        return json.dumps({"path": self.path, "stage": self.stage, "error": self.error})


def check_image(data: bytes, max_pixels: int | None) -> tuple[int, int]:
    """``(height, width)`` of a JPEG or PNG the export can decode, checked without decoding it at full size.

    JPEGs are decoded at 1/8 scale (Pillow's draft mode still reads every scan, so a cut-off
    file is caught); PNGs are verified chunk by chunk (CRCs) without decompressing pixels.

    Raises:
        ValueError: empty, not JPEG/PNG, more pixels than ``max_pixels``, truncated or corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValueError("empty file (0 bytes); expected a JPEG or PNG image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
    except UnidentifiedImageError:
        raise ValueError(
            f"not an image ({len(data)} bytes starting {data[:8].hex(' ')}); expected a JPEG or PNG file"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large to open safely: {exc}") from None
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise ValueError(f"truncated or corrupt image header: {exc}") from None
    if kind not in _FORMATS:
        raise ValueError(f"a {kind} image; the export decodes JPEG and PNG files only")
    if max_pixels is not None and width * height > max_pixels:
        raise ValueError(
            f"image too large: {width}x{height} = {width * height} pixels; the export accepts at most {max_pixels}"
        )
    _check_complete(data, kind)
    return height, width


def _check_complete(data: bytes, kind: str) -> None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if kind == "JPEG":
                image.draft("RGB", (max(1, image.size[0] // 8), max(1, image.size[1] // 8)))
                image.load()
            else:
                image.verify()
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise ValueError(f"truncated or corrupt {kind} file: {exc}") from None


def class_to_explain(label: Any, labels: tuple[str, ...] | None, num_classes: int | None) -> int:
    """The class index a manifest or TFRecord label names (an index, or a text among the export's labels).

    Raises:
        ValueError: no label, a text the export does not know, or an index out of range.
    """
    if label is None:
        raise ValueError("--class-from-label: this input has no label")
    if isinstance(label, int):
        index = label
    elif labels is not None and label in labels:
        return labels.index(label)
    else:
        known = "the export has no label texts" if labels is None else f"known: {', '.join(labels[:10])}"
        raise ValueError(f"label {label!r} is neither a class index nor one of the export's labels ({known})")
    if index < 0 or (num_classes is not None and index >= num_classes):
        raise ValueError(f"label {index} is not a class of the export (0..{(num_classes or 0) - 1})")
    return index
