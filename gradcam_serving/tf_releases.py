"""TensorFlow release numbers, and the releases whose op registries ship with the package (plain Python).

Here rather than in the exporter so that the command line can refuse an unknown
``--serving-version`` before TensorFlow is imported; the registries themselves
(``exporter/_registries/<major.minor>.json.gz``) are read by the exporter.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["REGISTRIES", "SERVING_VERSIONS", "image_tag_for", "release_of", "unknown_release_message"]

REGISTRIES = Path(__file__).resolve().parent / "exporter" / "_registries"
"""The folder of recorded op registries, one ``<major.minor>.json.gz`` per TensorFlow release."""

SERVING_VERSIONS: tuple[str, ...] = tuple(
    sorted((path.name.removesuffix(".json.gz") for path in REGISTRIES.glob("*.json.gz")),
           key=lambda v: tuple(map(int, v.split("."))))
)
"""``major.minor`` of every TensorFlow release whose op registry is recorded, oldest first."""


def release_of(version: str) -> tuple[int, int] | None:
    """``"2.19.1"``, ``"2.19"`` or ``"2.21.0-rc1"`` -> ``(2, 19)``; ``None`` for tags like ``latest``."""
    match = re.match(r"^(\d+)\.(\d+)(?:$|[.\-+])", version.strip())
    return (int(match[1]), int(match[2])) if match else None


def image_tag_for(tensorflow_version: str) -> str:
    """The ``tensorflow/serving`` tag for exports written by ``tensorflow_version``: ``2.21.3`` -> ``2.21.0``.

    TF Serving publishes ``X.Y.0`` for every TensorFlow ``X.Y``, built from it.

    Raises:
        ValueError: not a TensorFlow version.
    """
    release = release_of(tensorflow_version)
    if release is None:
        raise ValueError(f"not a TensorFlow version: {tensorflow_version!r}")
    return f"{release[0]}.{release[1]}.0"


def unknown_release_message(version: str) -> str | None:
    """Why no op registry is recorded for ``version``; ``None`` when one is."""
    release = release_of(version)
    if release is not None and f"{release[0]}.{release[1]}" in SERVING_VERSIONS:
        return None
    return (f"no op registry recorded for TensorFlow {version!r}; recorded: {', '.join(SERVING_VERSIONS)} "
            "(add one with gradcam_serving/exporter/_registries/generate.py)")
