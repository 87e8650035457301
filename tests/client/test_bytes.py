"""File paths and ``bytes`` go undecoded to ``predict_bytes``/``explain_bytes`` (fake server, real gRPC)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from client_fakes import FAST_RETRY, MODEL, MODEL_SIZE, PROBABILITIES, Serving, request_array, rgb_images
from PIL import Image

from gradcam_serving.client import AsyncExplainClient, Explanation, ExplainClient, Prediction
from gradcam_serving.errors import FailedPreconditionError, GradcamServingError, InvalidArgumentError


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    """A PNG and a JPEG of different sizes, neither at the fake model size."""
    png, jpeg = tmp_path / "a.png", tmp_path / "b.jpg"
    png.write_bytes(encode(rgb_images(1, 6, 9, seed=1)[0]))
    jpeg.write_bytes(encode(rgb_images(1, 10, 7, seed=2)[0], "JPEG"))
    return [png, jpeg]


def sent_files(request) -> list[bytes]:
    assert "images" not in request.inputs
    tensor = request.inputs["image_bytes"]
    assert [dim.size for dim in tensor.tensor_shape.dim] == [len(tensor.string_val)]
    return list(tensor.string_val)


def test_paths_go_to_predict_bytes_with_the_exact_file_bytes(
    client: ExplainClient, fake: Serving, files: list[Path]
) -> None:
    result = client.predict([files[0], str(files[1])])
    [(method, request)] = fake.backend.calls
    assert method == "Predict"
    assert request.model_spec.signature_name == "predict_bytes"
    assert list(request.inputs) == ["image_bytes"]
    assert sent_files(request) == [path.read_bytes() for path in files]
    assert isinstance(result, Prediction) and not isinstance(result, Explanation)
    np.testing.assert_array_equal(result.probabilities, [PROBABILITIES] * 2)
    assert result.label == ("rosé", "rosé")
    assert result.model_spec.signature_name == "predict_bytes"


def test_one_path_and_one_bytes_object_are_a_batch_of_one(
    client: ExplainClient, fake: Serving, files: list[Path]
) -> None:
    client.predict(files[1])
    client.predict(files[0].read_bytes())
    requests = [request for _, request in fake.backend.calls]
    assert [sent_files(request) for request in requests] == [[files[1].read_bytes()], [files[0].read_bytes()]]


def test_bytes_go_to_explain_bytes_and_overlay_png_is_surfaced(
    client: ExplainClient, fake: Serving, files: list[Path]
) -> None:
    data = [path.read_bytes() for path in files]
    result = client.explain(data, class_index=[2, -1])
    [(_, request)] = fake.backend.calls
    assert request.model_spec.signature_name == "explain_bytes"
    assert sorted(request.inputs) == ["class_index", "image_bytes"]
    assert sent_files(request) == data
    np.testing.assert_array_equal(request_array(request.inputs["class_index"], np.int32), [2, -1])

    assert isinstance(result, Explanation)
    assert result.model_spec.signature_name == "explain_bytes"
    np.testing.assert_array_equal(result.class_index, [2, 1])
    assert result.label == ("tulip", "rosé")
    assert result.heatmap.shape == (2, *MODEL_SIZE)  # the model's size, although the files differ
    assert isinstance(result.overlay_png, tuple) and all(isinstance(png, bytes) for png in result.overlay_png)
    sizes = [Image.open(io.BytesIO(png)).size for png in result.overlay_png]
    assert sizes == [Image.open(path).size for path in files]  # each at its own image's size


def test_explanations_stay_frozen_with_overlay_png(client: ExplainClient, files: list[Path]) -> None:
    result = client.explain(files)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.overlay_png = None  # type: ignore[misc]
    assert not result.heatmap.flags.writeable


def test_arrays_and_pil_images_keep_the_uint8_signatures(client: ExplainClient, fake: Serving) -> None:
    images = rgb_images(2, 5, 4)
    explanation = client.explain(images)
    client.predict([Image.fromarray(image) for image in images])
    (_, explain_request), (_, predict_request) = fake.backend.calls
    assert explain_request.model_spec.signature_name == "explain"
    assert predict_request.model_spec.signature_name == "predict"
    np.testing.assert_array_equal(request_array(predict_request.inputs["images"], np.uint8), images)
    assert explanation.overlay_png is None
    assert explanation.heatmap.shape == (2, 5, 4)


@pytest.mark.parametrize("other", [rgb_images(1)[0], Image.fromarray(rgb_images(1)[0])], ids=["array", "pil"])
def test_paths_mixed_with_pixels_are_refused_before_sending(
    client: ExplainClient, fake: Serving, files: list[Path], other: object
) -> None:
    with pytest.raises(ValueError, match=r"all file paths/bytes .* or all arrays/PIL images.*image 0 as path"):
        client.explain([files[0], other])
    with pytest.raises(ValueError, match="image 1 as bytes"):
        client.predict([other, b"\x89PNG"])
    assert fake.backend.calls == []


def test_a_missing_path_raises_file_not_found(client: ExplainClient, fake: Serving, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        client.predict([tmp_path / "missing.png"])
    assert fake.backend.calls == []


def test_a_corrupt_file_is_the_servers_invalid_argument(client: ExplainClient, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(InvalidArgumentError, match="image 0 is not a JPEG or PNG file"):
        client.explain(broken)


def test_old_exports_fall_back_once_to_local_decoding(client: ExplainClient, fake: Serving, tmp_path: Path) -> None:
    images = rgb_images(2, 6, 8, seed=3)
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"{index}.png")
        paths[-1].write_bytes(encode(image))
    fake.backend.old_export = True

    explanation = client.explain(paths, class_index=2)
    prediction = client.predict(paths[0].read_bytes())

    assert [request.model_spec.signature_name for _, request in fake.backend.calls] == [
        "explain_bytes", "explain", "predict_bytes", "predict",
    ]  # fmt: skip
    explain_request = fake.backend.calls[1][1]
    np.testing.assert_array_equal(request_array(explain_request.inputs["images"], np.uint8), images)
    np.testing.assert_array_equal(request_array(explain_request.inputs["class_index"], np.int32), [2, 2])
    assert explanation.model_spec.signature_name == "explain"
    assert explanation.overlay_png is None
    np.testing.assert_allclose(explanation.heatmap, images[..., 0] / 255.0, rtol=1e-6)
    assert prediction.model_spec.signature_name == "predict"
    assert prediction.label == ("rosé",)


def test_the_fallback_needs_one_size_and_says_why(client: ExplainClient, fake: Serving, files: list[Path]) -> None:
    fake.backend.old_export = True
    with pytest.raises(ValueError, match=r"no \*_bytes signatures .* one size per request.*re-export"):
        client.explain(files)
    assert [request.model_spec.signature_name for _, request in fake.backend.calls] == ["explain_bytes"]


def test_other_failed_preconditions_do_not_fall_back(client: ExplainClient, fake: Serving, files: list[Path]) -> None:
    fake.backend.failures = [(grpc.StatusCode.FAILED_PRECONDITION, "model is being unloaded")]
    with pytest.raises(FailedPreconditionError, match="being unloaded"):
        client.explain(files)
    assert len(fake.backend.calls) == 1


def test_a_missing_uint8_signature_is_not_retried(client: ExplainClient, fake: Serving) -> None:
    fake.backend.failures = [(grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "explain" not found.')]
    with pytest.raises(FailedPreconditionError, match='"explain" not found'):
        client.explain(rgb_images(1))
    assert len(fake.backend.calls) == 1


def test_the_fallback_is_tried_once(client: ExplainClient, fake: Serving, files: list[Path]) -> None:
    fake.backend.failures = [
        (grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "predict_bytes" not found.'),
        (grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "predict" not found.'),
    ]
    with pytest.raises(FailedPreconditionError, match='"predict" not found'):
        client.predict(files[0])
    assert len(fake.backend.calls) == 2


def test_unavailable_is_retried_on_the_bytes_signature(client: ExplainClient, fake: Serving, files: list[Path]) -> None:
    fake.backend.failures = [(grpc.StatusCode.UNAVAILABLE, "restarting")]
    result = client.explain(files)
    assert [request.model_spec.signature_name for _, request in fake.backend.calls] == ["explain_bytes"] * 2
    assert result.overlay_png is not None


# -- async -----------------------------------------------------------------------------------------


def open_async(fake: Serving) -> AsyncExplainClient:
    return AsyncExplainClient(fake.target, MODEL, timeout=5.0, retries=FAST_RETRY)


def test_async_paths_and_bytes_use_the_bytes_signatures(fake: Serving, files: list[Path]) -> None:
    async def main() -> tuple[Prediction, Explanation]:
        async with open_async(fake) as client:
            return await client.predict(files), await client.explain([path.read_bytes() for path in files], 0)

    prediction, explanation = asyncio.run(main())
    assert [request.model_spec.signature_name for _, request in fake.backend.calls] == [
        "predict_bytes", "explain_bytes",
    ]  # fmt: skip
    assert all(sent_files(request) == [path.read_bytes() for path in files] for _, request in fake.backend.calls)
    assert prediction.model_spec.signature_name == "predict_bytes"
    np.testing.assert_array_equal(explanation.class_index, [0, 0])
    assert explanation.heatmap.shape == (2, *MODEL_SIZE)
    assert [Image.open(io.BytesIO(png)).size for png in explanation.overlay_png] == [
        Image.open(path).size for path in files
    ]


def test_async_arrays_keep_uint8_and_mixed_kinds_are_refused(fake: Serving, files: list[Path]) -> None:
    async def main() -> Explanation:
        async with open_async(fake) as client:
            with pytest.raises(ValueError, match="all file paths/bytes"):
                await client.explain([rgb_images(1)[0], files[0]])
            return await client.explain(rgb_images(1))

    explanation = asyncio.run(main())
    assert [request.model_spec.signature_name for _, request in fake.backend.calls] == ["explain"]
    assert explanation.overlay_png is None


def test_async_old_exports_fall_back_once(fake: Serving, tmp_path: Path) -> None:
    image = rgb_images(1, 6, 8, seed=4)[0]
    path = tmp_path / "one.png"
    path.write_bytes(encode(image))
    fake.backend.old_export = True

    async def main() -> Explanation:
        async with open_async(fake) as client:
            return await client.explain(path)

    explanation = asyncio.run(main())
    assert [request.model_spec.signature_name for _, request in fake.backend.calls] == ["explain_bytes", "explain"]
    assert explanation.overlay_png is None
    np.testing.assert_allclose(explanation.heatmap[0], image[..., 0] / 255.0, rtol=1e-6)


def test_choosing_the_signature_loads_neither_numpy_nor_pil(tmp_path: Path) -> None:
    """Reading paths/bytes is plain Python; a fresh interpreter shows nothing heavy is imported for it."""
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG not really")
    probe = (
        "import sys; from gradcam_serving.client import _encoded; "
        f"assert _encoded.read_encoded([{str(path)!r}, b'x']) == [b'\\x89PNG not really', b'x']; "
        "print(sorted(m for m in ('numpy', 'PIL') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


@pytest.mark.parametrize("alias", ["overlay_png_bytes", "overlay_png"])
def test_the_overlay_is_read_under_its_name_and_under_the_name_older_exports_gave_it(
    client: ExplainClient, fake: Serving, files: list[Path], alias: str
) -> None:
    fake.backend.overlay_alias = alias
    result = client.explain(files)
    assert result.overlay_png is not None and len(result.overlay_png) == len(files)
    assert all(png.startswith(b"\x89PNG") for png in result.overlay_png)
    assert alias in result.outputs


def test_an_encoded_answer_without_any_overlay_is_refused_by_name(
    client: ExplainClient, fake: Serving, files: list[Path]
) -> None:
    fake.backend.overlay_alias = "something_else_bytes"
    with pytest.raises(GradcamServingError, match="lacks output 'overlay_png_bytes'"):
        client.explain(files)


def test_an_empty_batch_decodes_to_empty_fields() -> None:
    from gradcam_serving.client import ModelSpec, explanation_from_outputs

    empty = {"probabilities": np.zeros((0, 3), np.float32), "class_index": np.zeros(0, np.int32),
             "score": np.zeros(0, np.float32), "label": np.zeros(0, object), "method": np.zeros(0, object),
             "heatmap": np.zeros((0, 4, 4), np.float32)}
    result = explanation_from_outputs(empty, ModelSpec("m", "explain", 1))
    assert result.method == () and result.label == () and result.heatmap.shape == (0, 4, 4)
    top = explanation_from_outputs({**empty, "class_index": np.zeros((0, 2), np.int32), "label": np.zeros((0, 2), object),
                                    "method": np.zeros((0, 2), object), "heatmap": np.zeros((0, 2, 4, 4), np.float32),
                                    "score": np.zeros((0, 2), np.float32)}, ModelSpec("m", "explain_topk", 1), topk=True)
    assert top.method == () and top.label == () and top.top_k == 2
