"""Regenerate the committed TF Serving files in this folder for the demo model.

The demo (``gradcam-serving demo WORKDIR``) exports the ``shapes`` classifier
to ``WORKDIR/models/shapes/1``; in the container the models folder is mounted
at ``/models``, so the base path is ``/models/shapes``. Run::

    python serving_config/regenerate.py

``tests/deploy/test_committed.py`` fails when the committed files differ from
what this script writes, so edit the generator or this script, never the files.
"""

from __future__ import annotations

from pathlib import Path

from gradcam_serving.deploy import DeployedModel, DeploymentOptions, deployment_options, render_files, write_files
from gradcam_serving.server import ModelConfig

HERE = Path(__file__).resolve().parent

_THIS_FOLDER = """
## This folder

These files serve the demo model `shapes` (`gradcam-serving demo WORKDIR` exports it to
`WORKDIR/models/shapes/1`, so run `MODELS_DIR=WORKDIR/models ./docker-run.sh`). They are generated:
change `serving_config/regenerate.py` (or the generator, `gradcam_serving/deploy`) and run

    python serving_config/regenerate.py

A test fails when the committed files differ from a fresh generation. For your own models use
`gradcam-serving config BASE/NAME --output DIR` instead.
"""


def demo_options() -> DeploymentOptions:
    """The demo model on one GPU with GPU batching, Prometheus metrics and a GPU memory cap.

    0.9 of the GPU leaves room for the CUDA context and a sidecar; without a cap TF Serving
    takes nearly all GPU memory at start.
    """
    shapes = DeployedModel(ModelConfig(name="shapes", base_path="/models/shapes"))
    return deployment_options([shapes], gpu_memory_fraction=0.9)


def demo_files() -> dict[str, str]:
    """Every file this folder should hold (besides this script): name -> contents."""
    files = render_files(demo_options())
    files["README.md"] += _THIS_FOLDER
    return files


def main() -> None:
    for path in write_files(demo_files(), HERE):
        print(path)


if __name__ == "__main__":
    main()
