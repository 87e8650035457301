"""Encoded images (file paths, ``bytes``) for the ``predict_bytes``/``explain_bytes`` signatures.

When every image of a call is a path or ``bytes``, the client sends the file
contents as they are: the server decodes JPEG/PNG in-graph, so nothing is
decoded here, the request is a fraction of the size of a uint8 tensor, and
the images may differ in size. Arrays and PIL images keep going to the
uint8 signatures; one call cannot mix the two kinds.

Plain Python (no numpy, no PIL), so the client can decide which signature a
call needs without loading either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gradcam_serving.signatures import EXPLAIN_BYTES, IMAGE_BYTES, OVERLAY_PNG, PREDICT_BYTES

__all__ = [
    "EXPLAIN_BYTES",
    "IMAGE_BYTES",
    "OVERLAY_PNG",
    "PREDICT_BYTES",
    "UINT8_SIGNATURE",
    "is_missing_signature",
    "read_encoded",
]

UINT8_SIGNATURE = {PREDICT_BYTES: "predict", EXPLAIN_BYTES: "explain"}
"""The uint8 signature a ``*_bytes`` call falls back to on exports that predate it."""

_ENCODED_TYPES = (str, bytes, os.PathLike)


def _is_encoded(image: object) -> bool:
    return isinstance(image, _ENCODED_TYPES)


def _describe(image: object) -> str:
    return "bytes" if isinstance(image, bytes) else "path" if _is_encoded(image) else type(image).__name__


def read_encoded(images: Any) -> list[bytes] | None:
    """The raw file contents if every image is a path or ``bytes``; ``None`` if none is.

    Files are read as they are, not decoded.

    Raises:
        ValueError: paths/bytes mixed with arrays or PIL images in one call.
        OSError: a path that cannot be read (e.g. ``FileNotFoundError``).
    """
    if _is_encoded(images):
        return [_read(images)]
    if not isinstance(images, Sequence):  # a numpy batch or a PIL image: pixels
        return None
    kinds = [_is_encoded(image) for image in images]
    if not any(kinds):
        return None
    if not all(kinds):
        first_pixels = kinds.index(False)
        first_encoded = kinds.index(True)
        raise ValueError(
            "images in one call must be either all file paths/bytes (sent encoded to the *_bytes "
            "signatures) or all arrays/PIL images (sent as uint8 pixels); got image "
            f"{first_encoded} as {_describe(images[first_encoded])} and image {first_pixels} as "
            f"{_describe(images[first_pixels])}; decode the files yourself or split the call"
        )
    return [_read(image) for image in images]


def _read(image: str | bytes | os.PathLike[str]) -> bytes:
    if isinstance(image, bytes):
        return image
    with open(image, "rb") as file:
        return file.read()


def is_missing_signature(details: str, signature_name: str) -> bool:
    """Whether a FAILED_PRECONDITION message says the export lacks ``signature_name``.

    TF Serving (and the local server) answer
    ``Serving signature key "explain_bytes" not found.``
    """
    return "signature key" in details and f'"{signature_name}"' in details and "not found" in details
