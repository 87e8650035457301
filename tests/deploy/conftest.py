"""Fixtures for the deployment generator: fake export folders and one real tiny SavedModel."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradcam_serving.deploy import DeploymentOptions, deployment_options, model_from_export
from gradcam_serving.server import VersionPolicy


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    """``BASE`` with ``shapes/1``, ``shapes/2``, ``pets/3`` (empty folders) and a non-version entry."""
    base = tmp_path / "exports"
    for version_dir in ("shapes/1", "shapes/2", "shapes/.tmp-3", "pets/3"):
        (base / version_dir).mkdir(parents=True)
    return base


@pytest.fixture
def options(exports: Path) -> DeploymentOptions:
    """Two models, one with labels under a specific policy, default GPU settings."""
    shapes = model_from_export(
        exports / "shapes",
        version_policy=VersionPolicy(kind="specific", versions=(1, 2)),
        labels={"stable": 1, "canary": 2},
    )
    return deployment_options([shapes, model_from_export(exports / "pets")])


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real SavedModel ``BASE/tiny/1`` (y = 0.5 x + 2), the smallest thing a server loads."""
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = tf.Variable(0.5)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self.a * x + 2.0}

    module = HalfPlusTwo()
    model_dir = tmp_path_factory.mktemp("served") / "tiny"
    tf.saved_model.save(module, str(model_dir / "1"), signatures={"serving_default": module.serve})
    return model_dir
