"""End to end: ``explain(..., method=..., top_k=...)`` against a real export on the real local server.

The session's tiny classifier is exported with ``--methods layercam,gradcam``
(LayerCAM first, so it is the default) and served on a loopback port.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from gradcam_e2e import local_server

from gradcam_serving.client import AsyncExplainClient, ExplainClient

pytestmark = pytest.mark.slow

MODEL = "clf"
LABELS = ["ant", "bee", "cat", "dog"]


@pytest.fixture(scope="module")
def export_path(tiny_models, tmp_path_factory):
    from gradcam_serving.exporter import export_model

    base = tmp_path_factory.mktemp("methods_e2e")
    return export_model(tiny_models.hub_classifier, base, MODEL, version=1, labels=LABELS, methods="layercam,gradcam").path


@pytest.fixture(scope="module")
def served(export_path) -> Iterator[str]:
    with local_server(export_path.parent, model=MODEL) as server:
        yield server.target


@pytest.fixture(scope="module")
def client(served: str) -> Iterator[ExplainClient]:
    with ExplainClient(served, MODEL, timeout=60) as opened:
        opened.wait_until_ready(60)
        yield opened


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)


def test_method_picks_its_signature_and_returns_the_raw_cam(client, images, export_path):
    from gradcam_e2e import InProcess

    result = client.explain(images, [0, 1, -1], method="gradcam")
    assert result.model_spec.signature_name == "explain_gradcam"
    want = InProcess(export_path).run("explain_gradcam", images=images, class_index=np.array([0, 1, -1], np.int32))
    np.testing.assert_allclose(result.heatmap, want["heatmap"], atol=1e-6)
    np.testing.assert_allclose(result.cam, want["cam"], atol=1e-6)
    assert result.cam.shape == (3, 12, 12) and result.top_k is None


def test_the_first_exported_method_is_the_default(client, images):
    default = client.explain(images)
    layercam = client.explain(images, method="layercam")
    gradcam = client.explain(images, method="gradcam")
    np.testing.assert_array_equal(default.cam, layercam.cam)
    assert not np.allclose(default.cam, gradcam.cam)


def test_files_go_to_the_bytes_twin_of_the_method(client, images):
    buffer = io.BytesIO()
    Image.fromarray(images[0]).save(buffer, format="PNG")
    result = client.explain([buffer.getvalue()], method="gradcam")
    assert result.model_spec.signature_name == "explain_bytes_gradcam"
    assert result.overlay_png is not None and result.overlay_png[0].startswith(b"\x89PNG")
    np.testing.assert_allclose(result.cam[0], client.explain(images[:1], method="gradcam").cam[0], atol=1e-5)


def test_top_k_equals_separate_explain_calls(client, images):
    top = client.explain(images, top_k=2)
    assert top.model_spec.signature_name == "explain_topk" and top.top_k == 2
    assert top.class_index.shape == top.score.shape == (3, 2)
    assert top.heatmap.shape == (3, 2, 48, 48) and top.cam.shape == (3, 2, 12, 12)
    assert top.label == tuple(tuple(LABELS[c] for c in row) for row in top.class_index)
    np.testing.assert_array_equal(top.class_index[:, 0], top.probabilities.argmax(axis=1))
    for rank in range(2):
        one = client.explain(images, top.class_index[:, rank].tolist())
        np.testing.assert_allclose(top.heatmap[:, rank], one.heatmap, atol=1e-5)
        np.testing.assert_allclose(top.score[:, rank], one.score, atol=1e-6)


@pytest.mark.parametrize("method", ["eigencam", "grad-cam"])
def test_a_method_the_export_lacks_lists_the_exported_ones(client, images, method):
    with pytest.raises(ValueError, match=rf"^model 'clf': method\(s\) '{method}' not exported; the export holds: "
                                         r"gradcam, layercam \(or 'default' for its default, or 'all'\)$"):
        client.explain(images, method=method)


def test_the_default_method_word_asks_for_the_plain_explain_signature(client, images):
    plain = client.explain(images)
    named = client.explain(images, method="default")
    assert named.model_spec.signature_name == plain.model_spec.signature_name
    np.testing.assert_array_equal(named.heatmap, plain.heatmap)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_k": 0}, r"top_k must be an int >= 1"),
        ({"top_k": 2, "class_index": 1}, r"pass class_index=None"),
        ({"top_k": 2, "method": "gradcam"}, r"pass method=None"),
        ({"method": ""}, r"method must be a non-empty string"),
    ],
)
def test_bad_choices_fail_before_sending(images, kwargs, message):
    with ExplainClient("127.0.0.1:1", MODEL) as offline, pytest.raises(ValueError, match=message):
        offline.explain(images, **kwargs)


def test_async_client_takes_method_and_top_k(served, images):
    async def run():
        async with AsyncExplainClient(served, MODEL, timeout=60) as client:
            by_method = await client.explain(images, method="gradcam")
            top = await client.explain(images, top_k=3)
            with pytest.raises(ValueError, match=r"the export holds: gradcam, layercam"):
                await client.explain(images, method="hirescam")
            return by_method, top

    by_method, top = asyncio.run(run())
    assert by_method.model_spec.signature_name == "explain_gradcam"
    assert top.class_index.shape == (3, 3)
