"""Image inputs become one uint8 [N, H, W, 3] batch; class_index becomes int32 [N]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradcam_serving.client._images import to_batch, to_class_indices, to_rgb_array


def rgb(height: int = 4, width: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_uint8_image_and_batch_pass_unchanged() -> None:
    image = rgb()
    np.testing.assert_array_equal(to_batch(image), image[np.newaxis])
    batch = np.stack([rgb(seed=1), rgb(seed=2)])
    result = to_batch(batch)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, batch)


def test_float_images_in_unit_range_are_scaled_to_uint8() -> None:
    floats = np.array([[[0.0, 0.5, 1.0]]], dtype=np.float64)
    np.testing.assert_array_equal(to_rgb_array(floats), [[[0, 128, 255]]])


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(np.full((2, 2, 3), 255.0, dtype=np.float32), id="0-255-floats"),
        pytest.param(np.full((2, 2, 3), -0.1), id="negative"),
        pytest.param(np.full((2, 2, 3), np.nan), id="nan"),
    ],
)
def test_floats_outside_unit_range_are_refused_naming_the_range(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        to_batch(bad)


def test_integer_arrays_in_byte_range_are_accepted_and_others_refused() -> None:
    np.testing.assert_array_equal(to_rgb_array(np.full((1, 1, 3), 200, dtype=np.int64)), [[[200, 200, 200]]])
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        to_rgb_array(np.full((1, 1, 3), 256, dtype=np.int64))
    with pytest.raises(TypeError, match="dtype bool"):
        to_rgb_array(np.ones((1, 1, 3), dtype=bool))


@pytest.mark.parametrize(
    "gray",
    [
        pytest.param(np.array([[10, 20]], dtype=np.uint8), id="HxW"),
        pytest.param(np.array([[[10], [20]]], dtype=np.uint8), id="HxWx1"),
    ],
)
def test_grayscale_arrays_are_repeated_to_rgb(gray: np.ndarray) -> None:
    np.testing.assert_array_equal(to_rgb_array(gray), [[[10, 10, 10], [20, 20, 20]]])


def test_rgba_arrays_drop_alpha() -> None:
    rgba = np.array([[[1, 2, 3, 4]]], dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_array(rgba), [[[1, 2, 3]]])


def test_other_channel_counts_and_ranks_are_refused() -> None:
    with pytest.raises(ValueError, match="1 \\(gray\\), 3 \\(RGB\\) or 4 \\(RGBA\\)"):
        to_rgb_array(np.zeros((2, 2, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="got shape \\(1, 2, 2, 3\\)"):
        to_rgb_array(np.zeros((1, 2, 2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="got shape \\(4,\\)"):
        to_batch(np.zeros(4, dtype=np.uint8))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("L", [[[90, 90, 90]]], id="L"),
        pytest.param("RGBA", [[[90, 90, 90]]], id="RGBA"),
        pytest.param("RGB", [[[90, 90, 90]]], id="RGB"),
        pytest.param("I;16", [[[90, 90, 90]]], id="I16"),
    ],
)
def test_pil_images_of_any_mode_become_rgb(mode: str, expected: list) -> None:
    fill = {"RGBA": (90, 90, 90, 7), "RGB": (90, 90, 90), "I;16": 90 * 257}.get(mode, 90)  # 16 bits scale down
    image = Image.new(mode, (1, 1), fill)
    result = to_batch(image)
    assert result.shape == (1, 1, 1, 3)
    np.testing.assert_array_equal(result[0], expected)


def test_paths_as_str_and_path_are_opened(tmp_path: Path) -> None:
    image = rgb(3, 7)
    path = tmp_path / "image.png"
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(to_batch(path)[0], image)
    np.testing.assert_array_equal(to_batch([str(path), path]), np.stack([image, image]))


def test_a_palette_png_file_is_converted_to_rgb(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    Image.new("RGB", (2, 2), (255, 0, 0)).convert("P").save(path)
    np.testing.assert_array_equal(to_rgb_array(path), np.tile([255, 0, 0], (2, 2, 1)))


def test_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        to_batch(tmp_path / "nope.png")


def test_mixed_kinds_of_one_size_stack_in_order() -> None:
    first, second = rgb(seed=3), rgb(seed=4)
    batch = to_batch([first, Image.fromarray(second), first.astype(np.float32) / 255.0])
    np.testing.assert_array_equal(batch, np.stack([first, second, first]))


def test_images_of_different_sizes_are_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="one size.*image 0 is 4x5 and image 1 is 6x5.*one request per size"):
        to_batch([rgb(4, 5), rgb(6, 5)])


def test_empty_and_unsupported_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="no images"):
        to_batch([])
    with pytest.raises(TypeError, match="got int"):
        to_batch(3)
    with pytest.raises(TypeError, match="got list"):
        to_batch([[1, 2, 3]])
    with pytest.raises(OSError):
        to_batch(b"\x89PNG")  # bytes are decoded with Pillow, and these are no image


@pytest.mark.parametrize(
    ("class_index", "expected"),
    [
        pytest.param(None, [-1, -1, -1], id="none-is-predicted"),
        pytest.param(2, [2, 2, 2], id="int-for-all"),
        pytest.param(np.int64(0), [0, 0, 0], id="numpy-int"),
        pytest.param([0, -1, 4], [0, -1, 4], id="per-image"),
        pytest.param(np.array([1, 2, 3], dtype=np.uint8), [1, 2, 3], id="array"),
    ],
)
def test_class_index_forms(class_index, expected) -> None:
    result = to_class_indices(class_index, 3)
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, expected)


def test_class_index_errors() -> None:
    with pytest.raises(ValueError, match="class_index has 2 values but 3 images"):
        to_class_indices([1, 2], 3)
    with pytest.raises(ValueError, match=">= 0, or -1"):
        to_class_indices(-2, 3)
    with pytest.raises(TypeError, match="bool"):
        to_class_indices(True, 3)
    with pytest.raises(TypeError, match="sequence of ints"):
        to_class_indices([[1], [2], [3]], 3)
    with pytest.raises(TypeError, match="sequence of ints"):
        to_class_indices([0.5, 1.0, 2.0], 3)


def test_class_indices_beyond_int32_are_refused_not_wrapped() -> None:
    for too_big in (2**32 - 1, 2**31, np.uint32(2**32 - 1)):
        with pytest.raises(ValueError, match=r"\[-1, 2147483647\]"):
            to_class_indices(too_big, 2)
    for too_big in ([0, 2**32 - 1], np.array([0, 2**32 - 1], dtype=np.uint32), np.array([2**63], dtype=np.uint64)):
        with pytest.raises(ValueError, match=r"\[-1, 2147483647\]"):
            to_class_indices(too_big, len(too_big))
    np.testing.assert_array_equal(to_class_indices([2**31 - 1], 1), [2**31 - 1])


def sixteen_bit_gradient() -> np.ndarray:
    return np.linspace(0, 65535, 4 * 257, dtype=np.float64).round().astype(np.uint16).reshape(4, 257)


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_sixteen_bit_pil_images_are_scaled_not_clipped(mode: str) -> None:
    gradient = sixteen_bit_gradient()
    image = Image.fromarray(gradient).convert(mode) if mode == "I" else Image.fromarray(gradient)
    assert image.mode == mode
    result = to_rgb_array(image)
    assert result.dtype == np.uint8 and result.shape == (4, 257, 3)
    np.testing.assert_array_equal(result[..., 0], np.rint(gradient / 257.0).astype(np.uint8))
    np.testing.assert_array_equal(result[..., 0], result[..., 2])


def test_a_sixteen_bit_png_file_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    gradient = sixteen_bit_gradient()
    path = tmp_path / "deep.png"
    Image.fromarray(gradient).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # Pillow opens 16-bit PNGs as I or I;16
    result = to_rgb_array(path)
    assert result[0, 0, 0] == 0 and result[-1, -1, 0] == 255
    assert len(np.unique(result[..., 0])) > 200  # a gradient, not a white image
    np.testing.assert_array_equal(result[..., 1], np.rint(gradient / 257.0).astype(np.uint8))


def jpeg_with_orientation(orientation: int, height: int = 8, width: int = 16) -> bytes:
    """A stored ``height x width`` JPEG whose EXIF says how to display it (6: rotate 90° clockwise)."""
    import io

    stored = np.zeros((height, width, 3), dtype=np.uint8)
    stored[:, : width // 2] = 255  # left half white in the stored orientation
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def test_exif_orientation_is_applied_to_paths_bytes_and_pil_images(tmp_path: Path) -> None:
    import io

    data = jpeg_with_orientation(6)
    path = tmp_path / "portrait.jpg"
    path.write_bytes(data)
    with Image.open(io.BytesIO(data)) as pil:
        pil.load()
        for image in (path, str(path), data, pil):
            upright = to_rgb_array(image)
            assert upright.shape == (16, 8, 3)  # 8x16 stored, rotated to 16x8 upright
            # orientation 6: the stored left half (white) ends up on top
            assert upright[:6].mean() > 200 and upright[-6:].mean() < 50
