"""Heatmap overlays: colour-mapped, alpha-blended, PNG-encoded with Pillow."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradcam_serving.client import overlay_heatmap, overlay_png, save_overlay

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def gray_image(height: int = 6, width: int = 10, value: int = 100) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def test_overlay_is_rgb_at_the_image_size() -> None:
    result = overlay_heatmap(gray_image(), np.zeros((6, 10), dtype=np.float32))
    assert isinstance(result, Image.Image)
    assert result.mode == "RGB"
    assert result.size == (10, 6)  # PIL sizes are (width, height)


def test_alpha_zero_keeps_the_image_and_alpha_one_shows_the_colormap() -> None:
    heatmap = np.ones((6, 10), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(overlay_heatmap(gray_image(), heatmap, alpha=0.0)), gray_image())
    hot = np.asarray(overlay_heatmap(gray_image(), heatmap, alpha=1.0))
    np.testing.assert_array_equal(hot[0, 0], [128, 0, 0])  # jet(1.0) is dark red (0.5, 0, 0)


def test_blending_follows_the_formula() -> None:
    heatmap = np.zeros((6, 10), dtype=np.float32)  # jet(0.0) is dark blue (0, 0, 0.5)
    blended = np.asarray(overlay_heatmap(gray_image(value=200), heatmap, alpha=0.4))
    expected = np.rint(0.6 * 200 + 0.4 * np.array([0.0, 0.0, 0.5]) * 255)
    np.testing.assert_array_equal(blended[3, 3], expected)


def test_another_colormap_changes_the_colours() -> None:
    heatmap = np.ones((6, 10), dtype=np.float32)
    jet = np.asarray(overlay_heatmap(gray_image(), heatmap, alpha=1.0))
    gray = np.asarray(overlay_heatmap(gray_image(), heatmap, colormap="gray", alpha=1.0))
    np.testing.assert_array_equal(gray[0, 0], [255, 255, 255])
    assert not np.array_equal(jet, gray)


def test_a_heatmap_of_another_size_is_resized_to_the_image() -> None:
    small = np.array([[0.0, 1.0]], dtype=np.float32)  # left cold, right hot
    result = np.asarray(overlay_heatmap(gray_image(4, 8), small, alpha=1.0))
    assert result.shape == (4, 8, 3)
    assert result[0, 0, 2] > result[0, 0, 0]  # blue on the left
    assert result[0, -1, 0] > result[0, -1, 2]  # red on the right


def test_a_batch_of_one_heatmap_is_accepted() -> None:
    assert overlay_heatmap(gray_image(), np.zeros((1, 6, 10))).size == (10, 6)


@pytest.mark.parametrize(
    ("heatmap", "kwargs", "message"),
    [
        pytest.param(np.full((6, 10), 1.5), {}, r"\[0, 1\]", id="heatmap-range"),
        pytest.param(np.zeros((2, 6, 10)), {}, "one image's map", id="heatmap-batch"),
        pytest.param(np.zeros((6, 10)), {"alpha": 1.5}, "alpha", id="alpha"),
        pytest.param(np.zeros((6, 10)), {"colormap": "no-such-map"}, "unknown matplotlib colormap", id="colormap"),
    ],
)
def test_bad_arguments_are_refused(heatmap: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        overlay_heatmap(gray_image(), heatmap, **kwargs)


def test_png_bytes_decode_to_the_same_overlay() -> None:
    heatmap = np.linspace(0, 1, 60, dtype=np.float32).reshape(6, 10)
    data = overlay_png(gray_image(), heatmap, alpha=0.5)
    assert data.startswith(PNG_SIGNATURE)
    decoded = Image.open(io.BytesIO(data))
    assert (decoded.format, decoded.mode, decoded.size) == ("PNG", "RGB", (10, 6))
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(overlay_heatmap(gray_image(), heatmap, alpha=0.5)))


def test_save_overlay_writes_a_png_file(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    Image.fromarray(gray_image(12, 9)).save(source)
    written = save_overlay(source, np.zeros((12, 9)), tmp_path / "cam.png")
    assert written == tmp_path / "cam.png"
    with Image.open(written) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (9, 12))


def test_file_bytes_are_accepted_like_the_client_accepts_them(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(gray_image()).save(buffer, format="PNG")
    data = buffer.getvalue()
    heatmap = np.linspace(0, 1, 60, dtype=np.float32).reshape(6, 10)
    expected = np.asarray(overlay_heatmap(gray_image(), heatmap))
    np.testing.assert_array_equal(np.asarray(overlay_heatmap(data, heatmap)), expected)
    assert overlay_png(data, heatmap) == overlay_png(gray_image(), heatmap)
    written = save_overlay(data, heatmap, tmp_path / "cam.png")
    with Image.open(written) as image:
        np.testing.assert_array_equal(np.asarray(image), expected)
