"""In-graph JPEG/PNG handling for the ``predict_bytes`` and ``explain_bytes`` signatures.

Callers that hold encoded images send them as they are (a fraction of the
bytes of a uint8 tensor) and get back a finished overlay PNG, so a service
needs no imaging code of its own. The pixel limit is checked from the file
header *before* decoding, so a small file that decodes to a huge image (a
decompression bomb) is refused without allocating it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["DEFAULT_MAX_PIXELS", "colormap_table", "decode_images", "overlay_pngs"]

DEFAULT_MAX_PIXELS = 4096 * 4096
_PNG_MAGIC = b"\x89PNG"
_JPEG_MAGIC = b"\xff\xd8\xff"


def colormap_table(name: str = "jet") -> np.ndarray:
    """A matplotlib colormap as a ``[256, 3]`` float32 table, baked into the graph at export."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"unknown matplotlib colormap {name!r}, e.g. 'jet', 'turbo', 'inferno'") from None
    return cmap(np.linspace(0.0, 1.0, 256))[:, :3].astype(np.float32)


def _png_pixels(data: tf.Tensor) -> tf.Tensor:
    """Width x height from the IHDR chunk (big-endian uint32 at bytes 16 and 20)."""
    padded = tf.strings.join([data, tf.constant(b"\x00" * 24)])
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 16, 8), tf.uint8), tf.int64)
    scale = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
    return tf.reduce_sum(raw[:4] * scale) * tf.reduce_sum(raw[4:] * scale)


def _jpeg_pixels(data: tf.Tensor) -> tf.Tensor:
    shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
    return shape[0] * shape[1]


def _head_hex(data: tf.Tensor, count: int = 8) -> tf.Tensor:
    """The first ``count`` bytes as hex pairs (``ff d8 ff``): an assert must never echo raw input bytes,
    which need not be UTF-8 and would make the error message itself undecodable."""
    pairs = tf.constant([f"{value:02x}" for value in range(256)])
    head = tf.io.decode_raw(tf.strings.substr(data, 0, count), tf.uint8)
    return tf.strings.reduce_join(tf.gather(pairs, tf.cast(head, tf.int32)), separator=" ")


def _checked_decode(data: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """Refuse anything but JPEG/PNG within the pixel limit, then decode to uint8 RGB."""
    is_png = tf.equal(tf.strings.substr(data, 0, 4), _PNG_MAGIC)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 3), _JPEG_MAGIC)
    known = tf.debugging.Assert(
        tf.logical_or(is_png, is_jpeg),
        ["image_bytes must hold JPEG or PNG files; got one that is neither (length", tf.strings.length(data),
         "bytes; first bytes in hex:", _head_hex(data), ")"],
        name="check_image_format",
    )
    with tf.control_dependencies([known]):
        pixels = tf.cond(is_png, lambda: _png_pixels(data), lambda: _jpeg_pixels(data))
    small = tf.debugging.Assert(
        pixels <= max_pixels,
        [f"image too large: the export accepts at most {max_pixels} pixels per image; got", pixels],
        name="check_image_pixels",
    )
    with tf.control_dependencies([small]):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _check_vector(image_bytes: tf.Tensor) -> tf.Tensor:
    check = tf.debugging.Assert(
        tf.equal(tf.rank(image_bytes), 1),
        ["image_bytes must be a string vector [N] of encoded images; got shape", tf.shape(image_bytes)],
        name="check_image_bytes",
    )
    with tf.control_dependencies([check]):
        image_bytes = tf.identity(image_bytes)
    image_bytes.set_shape([None])
    return image_bytes


def decode_images(image_bytes: tf.Tensor, size: tuple[int, int], max_pixels: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Decode ``[N]`` encoded images of any sizes into float pixels ``[N, H, W, 3]`` at ``size``.

    Returns:
        ``(checked image_bytes [N], pixels in [0, 255])``.
    """
    image_bytes = _check_vector(image_bytes)

    def one(data: tf.Tensor) -> tf.Tensor:
        image = tf.cast(_checked_decode(data, max_pixels), tf.float32)
        return tf.image.resize(image, size, method="bilinear")

    pixels = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([*size, 3], tf.float32))
    return image_bytes, pixels


def overlay_pngs(
    image_bytes: tf.Tensor, heatmaps: tf.Tensor, table: np.ndarray, alpha: float, max_pixels: int
) -> tf.Tensor:
    """PNG per image: its heatmap resized to the image's own size, colour-mapped and blended over it."""
    colors = tf.constant(table)

    def one(args: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        data, heatmap = args
        image = tf.cast(_checked_decode(data, max_pixels), tf.float32)
        resized = tf.image.resize(heatmap[..., tf.newaxis], tf.shape(image)[:2], method="bilinear")[..., 0]
        index = tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 1.0) * 255.0), tf.int32)
        blended = (1.0 - alpha) * image + alpha * 255.0 * tf.gather(colors, index)
        # Level 1 compresses ~3x faster than zlib's default for a slightly larger PNG: latency wins here.
        return tf.io.encode_png(tf.cast(tf.round(tf.clip_by_value(blended, 0.0, 255.0)), tf.uint8), compression=1)

    return tf.map_fn(one, (image_bytes, heatmaps), fn_output_signature=tf.TensorSpec([], tf.string))
