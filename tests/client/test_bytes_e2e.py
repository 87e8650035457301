"""End to end: the client sends JPEG/PNG files to a real export on the real local server.

The session's tiny classifier (48x48, 4 classes) is exported once with
``export_model`` and served by ``create_server`` on a loopback port; the
client reads files, the graph decodes them (``predict_bytes``/``explain_bytes``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradcam_e2e import local_server

from gradcam_serving.client import ExplainClient
from gradcam_serving.errors import InvalidArgumentError, StatusCode

pytestmark = pytest.mark.slow

MODEL = "clf"
SIZE = 48
LABELS = ["ant", "bee", "cat", "dog"]


@pytest.fixture(scope="module")
def served(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from gradcam_serving.exporter import export_model

    base = tmp_path_factory.mktemp("bytes_e2e")
    export_model(tiny_models.hub_classifier, base, MODEL, version=1, labels=LABELS)
    with local_server(base / MODEL, model=MODEL) as server:
        yield server.target


@pytest.fixture
def client(served: str) -> Iterator[ExplainClient]:
    with ExplainClient(served, MODEL, timeout=60) as opened:
        opened.wait_until_ready(60)
        yield opened


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """Photo-like: low-frequency noise upsampled, so JPEG stays close to the pixels."""
    small = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC))


def write(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))
    return path


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    """Different sizes and formats, none but the last at the model's 48x48."""
    return [
        write(tmp_path / "wide.png", smooth_image(40, 56, 1)),
        write(tmp_path / "tall.jpg", smooth_image(70, 30, 2)),
        write(tmp_path / "model_size.png", smooth_image(SIZE, SIZE, 3)),
    ]


def decoded(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_explain_paths_of_different_sizes(client: ExplainClient, files: list[Path]) -> None:
    result = client.explain(files)
    assert result.model_spec.signature_name == "explain_bytes"
    assert result.heatmap.shape == (3, SIZE, SIZE)
    assert result.heatmap.dtype == np.float32
    assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0
    assert result.probabilities.shape == (3, 4)
    assert set(result.label) <= set(LABELS)
    assert len(result.overlay_png) == 3
    for png, path in zip(result.overlay_png, files):
        with Image.open(io.BytesIO(png)) as overlay:
            assert overlay.format == "PNG"
            assert overlay.mode == "RGB"
            assert overlay.size == Image.open(path).size
            assert not np.array_equal(np.asarray(overlay), decoded(path))  # the heatmap is blended in


def graph_decoded(path: Path) -> np.ndarray:
    """The pixels the export's ``tf.io.decode_image`` sees (JPEG decoders differ by a few levels)."""
    import tensorflow as tf

    return tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False).numpy()


@pytest.mark.parametrize("index", [0, 1, 2], ids=["png", "jpeg", "png-48"])
def test_files_classify_like_their_decoded_pixels(client: ExplainClient, files: list[Path], index: int) -> None:
    """Both routes resize bilinearly in-graph from the same pixels, so they agree to float precision."""
    path = files[index]
    via_bytes = client.explain(path)
    via_pixels = client.explain(graph_decoded(path))
    assert via_pixels.model_spec.signature_name == "explain"
    np.testing.assert_array_equal(via_bytes.class_index, via_pixels.class_index)
    np.testing.assert_allclose(via_bytes.probabilities, via_pixels.probabilities, atol=1e-6)
    assert via_bytes.label == via_pixels.label
    # Pillow decodes PNG identically; its JPEG decoding differs by a few levels from TensorFlow's.
    via_pillow = client.predict(decoded(path))
    np.testing.assert_allclose(via_bytes.probabilities, via_pillow.probabilities, atol=1e-6 if index != 1 else 5e-3)


def test_at_model_size_bytes_and_uint8_agree_exactly(client: ExplainClient, files: list[Path]) -> None:
    path = files[2]
    pixels = decoded(path)
    assert pixels.shape == (SIZE, SIZE, 3)
    by_bytes, by_array = client.predict(path.read_bytes()), client.predict(pixels)
    assert (by_bytes.model_spec.signature_name, by_array.model_spec.signature_name) == ("predict_bytes", "predict")
    np.testing.assert_allclose(by_bytes.probabilities, by_array.probabilities, atol=1e-6)
    np.testing.assert_array_equal(by_bytes.class_index, by_array.class_index)
    explained_bytes, explained_array = client.explain(path, class_index=2), client.explain(pixels, class_index=2)
    np.testing.assert_allclose(explained_bytes.heatmap, explained_array.heatmap, atol=1e-6)
    np.testing.assert_array_equal(explained_bytes.class_index, [2])


def test_class_index_per_file(client: ExplainClient, files: list[Path]) -> None:
    result = client.explain([path.read_bytes() for path in files], class_index=[0, 3, -1])
    predicted = client.predict(files[2]).class_index[0]
    np.testing.assert_array_equal(result.class_index, [0, 3, predicted])
    assert result.label[:2] == ("ant", "dog")


def test_a_corrupt_file_is_invalid_argument_with_the_servers_message(client: ExplainClient, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"GIF89a this is not a JPEG")
    with pytest.raises(InvalidArgumentError, match="image_bytes must hold JPEG or PNG files") as caught:
        client.explain(broken)
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    with pytest.raises(InvalidArgumentError):
        client.predict(truncated)
