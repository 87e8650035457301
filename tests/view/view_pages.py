"""Helpers shared by the view tests and the view benchmark: small test images and what a page test is given."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ViewSetup", "png_bytes", "shapes_image"]


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def shapes_image(seed: int, height: int = 60, width: int = 84) -> np.ndarray:
    """A dark image with one bright rectangle: the maps have something to find."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 30, np.uint8) + rng.integers(0, 20, (height, width, 3), dtype=np.uint8)
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    image[top: top + height // 3, left: left + width // 3] = rng.integers(120, 256, 3, dtype=np.uint8)
    return image


@dataclass
class ViewSetup:
    url: str
    models: list[Any]  # ExportModel per column: [three methods, export_v1]
    images: Path  # the gallery folder: PNGs and a text file named .jpg
    screenshots: Path
