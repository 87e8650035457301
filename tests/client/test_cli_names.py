"""``gradcam-serving explain`` names overlay files after the method that ran, never a placeholder it could avoid."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gradcam_serving.cli import cli
from gradcam_serving.client import _cli as client_cli  # the command's own module: its client is faked here


class _FakeClient:
    """Answers like a server whose export holds ``methods``; ``method`` is the answers' own ``method`` output."""

    def __init__(self, methods: list[str], method: str | None) -> None:
        names = ["predict", "explain", "explain_topk", *(f"explain_{m}" for m in methods)]
        self.signatures = dict.fromkeys(names)
        self.method = None if method is None else (method,)
        self.metadata_calls = 0

    def __enter__(self) -> _FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def metadata(self) -> SimpleNamespace:
        self.metadata_calls += 1
        return SimpleNamespace(signatures=self.signatures)

    def explain(self, image: str, class_index: int = -1, *, method: str | None = None, top_k: int | None = None):
        if top_k is None:
            return SimpleNamespace(class_index=np.array([1]), label=("b",), score=np.array([0.9]),
                                   heatmap=np.zeros((1, 4, 4), np.float32), overlay_png=(b"png",), method=self.method)
        return SimpleNamespace(class_index=np.array([list(range(top_k))]), label=(tuple("ab"[:top_k]),),
                               score=np.full((1, top_k), 0.5), heatmap=np.zeros((1, top_k, 4, 4), np.float32),
                               overlay_png=None, method=self.method)


def _explain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: _FakeClient, *extra: str) -> list[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    image = tmp_path / "cat.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(image)
    monkeypatch.setattr(client_cli, "_client", lambda *args: fake)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["explain", "--server", "h:1", "--model", "m", "--out", str(out), *extra,
                                      str(image)])
    assert result.exit_code == 0, result.output
    return sorted(path.name for path in out.iterdir())


def test_a_single_exported_method_names_the_files_not_default(monkeypatch, tmp_path):
    fake = _FakeClient(["layercam"], method=None)
    assert _explain(monkeypatch, tmp_path, fake, "--top-k", "2") == ["cat_layercam_top1.png", "cat_layercam_top2.png"]
    assert _explain(monkeypatch, tmp_path / "one", fake) == ["cat_layercam.png"]


def test_the_answers_method_output_wins_and_spares_the_metadata_call(monkeypatch, tmp_path):
    fake = _FakeClient(["gradcam", "layercam"], method="layercam")
    assert _explain(monkeypatch, tmp_path, fake, "--top-k", "1") == ["cat_layercam_top1.png"]
    assert fake.metadata_calls == 0


def test_several_methods_and_an_answer_that_does_not_say_give_default(monkeypatch, tmp_path):
    fake = _FakeClient(["gradcam", "layercam"], method=None)
    assert _explain(monkeypatch, tmp_path, fake, "--top-k", "1") == ["cat_default_top1.png"]
    assert _explain(monkeypatch, tmp_path / "asked", fake, "--method", "gradcam") == ["cat_gradcam.png"]


def test_an_answer_names_its_method_when_the_export_says_it_and_none_otherwise() -> None:
    from gradcam_serving import wire as _wire
    from gradcam_serving.client import _codec, _tensors

    response = _wire.PredictResponse()
    outputs = {"probabilities": np.full((2, 3), 1 / 3, np.float32), "class_index": np.array([0, 1], np.int32),
               "score": np.full(2, 1 / 3, np.float32), "heatmap": np.zeros((2, 4, 4), np.float32)}
    for name, array in outputs.items():
        response.outputs[name].CopyFrom(_tensors.array_to_tensor(array))
    response.outputs["label"].CopyFrom(_tensors.strings_to_tensor([b"a", b"b"]))
    assert _codec.decode_explanation(response).method is None
    response.outputs["method"].CopyFrom(_tensors.strings_to_tensor([b"layercam", b"layercam"]))
    assert _codec.decode_explanation(response).method == ("layercam", "layercam")
