"""Turn what users hold (arrays, PIL images, file paths) into one uint8 batch.

The ``images`` input of both signatures is uint8 ``[N, H, W, 3]``. The graph
resizes, so any ``H, W`` works, but one tensor needs one size: a batch of
differently sized images is refused with a ``ValueError`` rather than split
into several requests, because the heatmaps come back at the request's image
size and could not be returned as one array either.

PIL is imported only when a path must be opened; a PIL image is recognised
without importing PIL (if PIL was never imported, no object can be one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Union

import numpy as np

from gradcam_serving.signatures import PREDICTED_CLASS

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["ImageInput", "Images", "decode_encoded", "to_batch", "to_class_indices", "to_rgb_array"]

ImageInput = Union[np.ndarray, "PILImage.Image", str, "os.PathLike[str]", bytes]
"""One image: uint8/float array, PIL image, a path to an image file, or a file's bytes.

Paths and ``bytes`` go to the server undecoded (the ``*_bytes`` signatures);
see :mod:`gradcam_serving.client._encoded`.
"""

Images = Union[ImageInput, Sequence[ImageInput]]
"""One image, a sequence of images, or a ``[N, H, W, C]`` array."""

_CHANNELS = (1, 3, 4)
_INT32_MAX = np.iinfo(np.int32).max


def _is_pil_image(obj: object) -> bool:
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image)


def _open_path(path: str | os.PathLike[str] | BinaryIO) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return _pil_to_rgb(image)


def _pil_to_rgb(image: PILImage.Image) -> np.ndarray:
    """Any PIL mode (L, LA, P, RGBA, I;16, I, ...) → upright RGB; alpha is dropped, not composited.

    The EXIF orientation is applied (a portrait photo stored sideways comes
    out upright), and 16-bit gray (``I;16*``, or ``I`` as Pillow opens
    16-bit PNGs) is scaled to 8 bits rather than clipped to white.
    """
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I"):
        return _sixteen_bit_to_rgb(np.asarray(image))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _sixteen_bit_to_rgb(gray: np.ndarray) -> np.ndarray:
    """16-bit gray ``[H, W]`` (0..65535) → uint8 RGB, 65535 / 257 = 255."""
    scaled = np.rint(np.clip(gray.astype(np.float64), 0, 65535) / 257.0).astype(np.uint8)
    return np.repeat(scaled[..., np.newaxis], 3, axis=-1)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 passes; floats must lie in [0, 1]; integers must lie in [0, 255]."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        return _scaled_floats(array)
    if array.dtype.kind in "iu":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(
                f"integer images must have values in [0, 255]; got [{array.min()}, {array.max()}]"
            )
        return array.astype(np.uint8)
    raise TypeError(f"images must be uint8, integer or float arrays; got dtype {array.dtype}")


def _scaled_floats(array: np.ndarray) -> np.ndarray:
    if array.size and not np.isfinite(array).all():
        raise ValueError("float images must have values in [0, 1]; got NaN or infinity")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(
            "float images must have values in [0, 1] (divide 0-255 data by 255 or pass uint8); "
            f"got [{float(array.min()):g}, {float(array.max()):g}]"
        )
    return np.rint(array * 255.0).astype(np.uint8)


def _to_three_channels(array: np.ndarray) -> np.ndarray:
    """``[..., H, W, C]`` with C in (1, 3, 4) → ``[..., H, W, 3]``: gray is repeated, alpha dropped."""
    channels = array.shape[-1]
    if channels not in _CHANNELS:
        raise ValueError(
            f"images need 1 (gray), 3 (RGB) or 4 (RGBA) channels in the last axis; "
            f"got shape {array.shape}"
        )
    if channels == 1:
        return np.repeat(array, 3, axis=-1)
    return array[..., :3]


def _array_image(array: np.ndarray, *, batch: bool) -> np.ndarray:
    """Normalise an ``[H, W]``, ``[H, W, C]`` or (when ``batch``) ``[N, H, W, C]`` array."""
    ranks = (2, 3, 4) if batch else (2, 3)
    if array.ndim not in ranks:
        raise ValueError(
            f"an image array must be [H, W], [H, W, C] or a batch [N, H, W, C]; got shape {array.shape}"
        )
    if array.ndim == 2:
        array = array[..., np.newaxis]
    return np.ascontiguousarray(_to_three_channels(_to_uint8(array)))


def to_rgb_array(image: ImageInput) -> np.ndarray:
    """One image of any accepted kind → uint8 ``[H, W, 3]``.

    Paths and ``bytes`` are decoded here with Pillow; files and PIL images
    come out upright (their EXIF orientation applied).

    Raises:
        TypeError: not an array, PIL image, path or bytes.
        ValueError: wrong rank, channel count or value range.
        OSError: a path or bytes that cannot be opened as an image.
    """
    if isinstance(image, (str, os.PathLike)):
        return _open_path(image)
    if isinstance(image, bytes):
        import io

        return _open_path(io.BytesIO(image))
    if _is_pil_image(image):
        return _pil_to_rgb(image)
    if isinstance(image, np.ndarray):
        return _array_image(image, batch=False)
    raise TypeError(
        f"an image must be a numpy array, a PIL image, a file path or a file's bytes; got {type(image).__name__}"
    )


def to_batch(images: Images) -> np.ndarray:
    """Everything :data:`Images` allows → uint8 ``[N, H, W, 3]`` with one shared size.

    Raises:
        ValueError: no images, or images of different sizes (send one request
            per size), plus everything :func:`to_rgb_array` raises.
    """
    if isinstance(images, np.ndarray):
        array = _array_image(images, batch=True)
        return array if array.ndim == 4 else array[np.newaxis]
    if isinstance(images, (str, bytes, os.PathLike)) or _is_pil_image(images):
        return to_rgb_array(images)[np.newaxis]  # type: ignore[arg-type]
    if not isinstance(images, Sequence):
        raise TypeError(f"images must be an image or a sequence of images; got {type(images).__name__}")
    arrays = [to_rgb_array(image) for image in images]
    if not arrays:
        raise ValueError("no images given; pass at least one image")
    _check_same_size(arrays)
    return np.stack(arrays)


def decode_encoded(encoded: list[bytes]) -> np.ndarray:
    """Encoded files → uint8 ``[N, H, W, 3]``, for exports without the ``*_bytes`` signatures.

    Raises:
        ValueError: the images differ in size (one uint8 tensor needs one size).
        OSError: bytes Pillow cannot decode (``PIL.UnidentifiedImageError``).
    """
    import io

    arrays = [_open_path(io.BytesIO(data)) for data in encoded]
    try:
        _check_same_size(arrays)
    except ValueError as exc:
        raise ValueError(
            "the served export has no *_bytes signatures (it predates them), so the files were "
            f"decoded locally for the uint8 signature, which needs one size per request: {exc}; "
            "re-export the model to send files of different sizes"
        ) from None
    return np.stack(arrays)


def _check_same_size(arrays: list[np.ndarray]) -> None:
    first = arrays[0].shape[:2]
    for index, array in enumerate(arrays):
        if array.shape[:2] != first:
            raise ValueError(
                "images in one request must share one size, but image 0 is "
                f"{first[0]}x{first[1]} and image {index} is {array.shape[0]}x{array.shape[1]} "
                "(H x W); resize them or send one request per size"
            )


def to_class_indices(class_index: Any, count: int) -> np.ndarray:
    """The ``explain`` ``class_index`` input for ``count`` images, as int32 ``[N]``.

    ``None`` explains the predicted class of every image (-1), an ``int`` the
    same class for all, a sequence one class per image.

    Raises:
        TypeError: not None, an int or a sequence of ints.
        ValueError: a length other than ``count``, or a value outside [-1, 2**31 - 1]
            (the int32 the signature takes).
    """
    if class_index is None:
        return np.full(count, PREDICTED_CLASS, dtype=np.int32)
    if isinstance(class_index, bool):
        raise TypeError("class_index must be None, an int or a sequence of ints; got a bool")
    if isinstance(class_index, (int, np.integer)):
        _check_index_range(int(class_index), int(class_index))
        return np.full(count, int(class_index), dtype=np.int32)
    indices = _index_sequence(class_index, count)
    if indices.size:
        _check_index_range(int(indices.min()), int(indices.max()))
    return indices.astype(np.int32)


def _check_index_range(low: int, high: int) -> None:
    """Checked on the values as given, before the int32 cast could wrap them (2**32 - 1 → -1)."""
    if low < PREDICTED_CLASS:
        raise ValueError(f"class_index values must be >= 0, or -1 for the predicted class; got {low}")
    if high > _INT32_MAX:
        raise ValueError(f"class_index values must lie in [-1, {_INT32_MAX}] (the signature takes int32); got {high}")


def _index_sequence(class_index: Any, count: int) -> np.ndarray:
    indices = np.asarray(class_index)
    if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
        raise TypeError(f"class_index must be None, an int or a sequence of ints; got {class_index!r}")
    if indices.size != count:
        raise ValueError(
            f"class_index has {indices.size} values but {count} images were given; "
            "pass one per image, a single int, or None"
        )
    return indices
