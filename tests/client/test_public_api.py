"""The public surface: a pinned ``__all__`` and an import that never loads TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import gradcam_serving.client as client

EXPECTED_ALL = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "USE_CLIENT_DEFAULT",
    "AsyncExplainClient",
    "ClientState",
    "ExplainClient",
    "Explanation",
    "ImageInput",
    "Images",
    "ModelMetadata",
    "ModelSpec",
    "ModelState",
    "Prediction",
    "Retry",
    "SignatureInfo",
    "TensorSpec",
    "Timeout",
    "VersionStatus",
    "explain_command",
    "explanation_from_outputs",
    "overlay_heatmap",
    "overlay_png",
    "predict_command",
    "save_overlay",
]


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert client.__all__ == EXPECTED_ALL
    for name in client.__all__:
        assert getattr(client, name) is not None, name


def test_result_fields_are_pinned_and_results_stay_frozen() -> None:
    import dataclasses

    prediction = ["probabilities", "class_index", "score", "label", "model_spec"]
    assert [field.name for field in dataclasses.fields(client.Prediction)] == prediction
    explanation = [*prediction, "heatmap", "overlay_png", "cam", "top_k", "method", "family", "outputs"]
    assert [field.name for field in dataclasses.fields(client.Explanation)] == explanation
    for optional in ("overlay_png", "cam", "top_k", "method", "family"):
        assert client.Explanation.__dataclass_fields__[optional].default is None
    assert client.Explanation.__dataclass_params__.frozen
    assert client.Prediction.__dataclass_params__.frozen


def test_lazy_names_are_listed_and_unknown_names_raise() -> None:
    assert {"overlay_png", "Images"} <= set(dir(client))
    with pytest.raises(AttributeError, match="no_such_name"):
        client.no_such_name  # noqa: B018


def test_public_classes_and_functions_report_the_public_module() -> None:
    for name in ("ExplainClient", "AsyncExplainClient", "Prediction", "Timeout", "overlay_heatmap"):
        assert getattr(client, name).__module__ == "gradcam_serving.client", name


# numpy is a dependency, but deferring it keeps the import well under 0.5 s.
HEAVY = ("tensorflow", "tensorflow_serving", "PIL", "matplotlib", "keras", "tf_keras", "numpy")

PROBE = f"""
import json, sys
import gradcam_serving.client
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
print(json.dumps({{"heavy": heavy, "client": "gradcam_serving.client" in sys.modules}}))
"""


def test_importing_the_client_loads_no_tensorflow_pil_matplotlib_or_numpy() -> None:
    """A fresh interpreter, because this test process has TensorFlow loaded already."""
    completed = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "client": True}
