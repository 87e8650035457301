"""Render a Grad-CAM heatmap over its image.

matplotlib is used only for its colormaps and Pillow for resizing and PNG
encoding; both are imported inside the functions so ``import
gradcam_serving.client`` stays fast.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_serving.client._images import ImageInput, to_rgb_array

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["overlay_heatmap", "overlay_png", "save_overlay"]


def _check_heatmap(heatmap: np.ndarray) -> np.ndarray:
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim == 3 and heatmap.shape[0] == 1:
        heatmap = heatmap[0]
    if heatmap.ndim != 2:
        raise ValueError(
            f"heatmap must be [H, W] (one image's map, e.g. result.heatmap[0]); got shape {heatmap.shape}"
        )
    if heatmap.size and not (np.isfinite(heatmap).all() and heatmap.min() >= 0.0 and heatmap.max() <= 1.0):
        raise ValueError(f"heatmap values must lie in [0, 1]; got [{heatmap.min():g}, {heatmap.max():g}]")
    return heatmap


def _resized(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize to ``(height, width)``; the signature already matches the request size."""
    if heatmap.shape == size:
        return heatmap
    from PIL import Image

    resized = Image.fromarray(np.ascontiguousarray(heatmap)).resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized), 0.0, 1.0)


def _colorize(heatmap: np.ndarray, colormap: str) -> np.ndarray:
    """[H, W] in [0, 1] → float RGB [H, W, 3] in [0, 1]."""
    from matplotlib import colormaps

    try:
        cmap = colormaps[colormap]
    except KeyError:
        raise ValueError(f"unknown matplotlib colormap {colormap!r}, e.g. 'jet', 'turbo', 'inferno'") from None
    return cmap(heatmap)[..., :3]


def overlay_heatmap(
    image: ImageInput,
    heatmap: np.ndarray,
    *,
    colormap: str = "jet",
    alpha: float = 0.4,
) -> PILImage.Image:
    """Blend a colour-mapped heatmap over its image.

    ``out = (1 - alpha) * image + alpha * colormap(heatmap)``, so ``alpha`` is
    how strongly the explanation covers the photo. A heatmap of another size
    is resized (bilinear) to the image.

    Args:
        image: the explained image (array, PIL image, path or file bytes; as the client accepts).
            Paths and bytes are decoded here, upright (EXIF orientation applied).
        heatmap: ``[H, W]`` float in [0, 1], e.g. ``explanation.heatmap[i]``.
        colormap: a matplotlib colormap name.
        alpha: heatmap weight in [0, 1].

    Returns:
        An RGB ``PIL.Image`` of the image's size.

    Raises:
        ValueError: a heatmap not 2-D or outside [0, 1], alpha outside [0, 1],
            or an unknown colormap.

    Example:
        >>> overlay_heatmap("cat.jpg", result.heatmap[0]).show()  # doctest: +SKIP
    """
    from PIL import Image

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha!r}")
    rgb = to_rgb_array(image).astype(np.float32) / 255.0
    colors = _colorize(_resized(_check_heatmap(heatmap), rgb.shape[:2]), colormap)
    blended = (1.0 - alpha) * rgb + alpha * colors
    return Image.fromarray(np.rint(blended * 255.0).astype(np.uint8))


def overlay_png(
    image: ImageInput,
    heatmap: np.ndarray,
    *,
    colormap: str = "jet",
    alpha: float = 0.4,
) -> bytes:
    """:func:`overlay_heatmap` encoded as PNG bytes (e.g. for an HTTP response)."""
    buffer = io.BytesIO()
    overlay_heatmap(image, heatmap, colormap=colormap, alpha=alpha).save(buffer, format="PNG")
    return buffer.getvalue()


def save_overlay(
    image: ImageInput,
    heatmap: np.ndarray,
    path: str | os.PathLike[str],
    *,
    colormap: str = "jet",
    alpha: float = 0.4,
) -> Path:
    """Write :func:`overlay_heatmap` to ``path`` as PNG (whatever the suffix) and return the path."""
    path = Path(path)
    path.write_bytes(overlay_png(image, heatmap, colormap=colormap, alpha=alpha))
    return path
