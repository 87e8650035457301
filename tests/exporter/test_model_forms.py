"""Model forms beyond one RGB input and one softmax output, and the CLI's readable failures.

Tiny models only; the real architectures are in ``test_zoo.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from gradcam_serving.console import error_line
from gradcam_serving.cli import cli
from gradcam_serving.errors import GradcamServingWarning, UnsupportedModelError
from gradcam_serving.exporter import export_model, inspect_model, run_like_tf_serving

SIZE = 32


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def two_headed(tmp_path_factory):
    """A tf_keras .h5 with two outputs: 'species' (3-class softmax) and 'box' (4 numbers)."""
    import tf_keras

    tf_keras.utils.set_random_seed(11)
    inputs = tf_keras.Input((SIZE, SIZE, 3))
    x = tf_keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    species = tf_keras.layers.Dense(3, activation="softmax", name="species")(x)
    box = tf_keras.layers.Dense(4, name="box")(x)
    path = tmp_path_factory.mktemp("forms") / "two_headed.h5"
    tf_keras.Model(inputs, [species, box]).save(str(path))
    return path


@pytest.fixture(scope="module")
def grayscale_front(tmp_path_factory):
    """A hub module whose first layer converts to grayscale: preprocessing no weight feeds."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(12)
    inputs = tf_keras.Input((SIZE, SIZE, 3))
    x = tf_keras.layers.Lambda(lambda t: tf.image.rgb_to_grayscale(t), name="to_gray")(inputs)
    x = tf_keras.layers.Conv2D(6, 3, strides=2, activation="relu", name="conv")(x)
    outputs = tf_keras.layers.Dense(3, activation="softmax")(tf_keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path_factory.mktemp("forms") / "gray_front"
    tf.saved_model.save(tf_keras.Model(inputs, outputs), str(path))
    return path


def test_several_outputs_are_listed_by_name(two_headed, tmp_path):
    with pytest.raises(UnsupportedModelError, match=r"several outputs \(species, box\); pick .* --output NAME"):
        export_model(two_headed, tmp_path, "m")
    result = _run("inspect", two_headed)
    assert result.exit_code == 1 and "species, box" in result.stderr


def test_output_picks_the_class_scores(two_headed, tmp_path):
    report = inspect_model(two_headed, output="species")
    assert report.num_classes == 3 and report.output_is_softmax
    result = _run("export", two_headed, "--output", tmp_path, "--name", "m", "--output-name", "species")
    assert result.exit_code == 0, result.output
    images = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3), np.uint8)
    got = run_like_tf_serving(tmp_path / "m" / "1", {"predict": {"images": images}})["predict"]
    assert got["probabilities"].shape == (2, 3)
    with pytest.raises(UnsupportedModelError, match=r"has no output 'nope'; its outputs are species, box"):
        inspect_model(two_headed, output="nope")


def test_unweighted_layer_is_never_auto_and_warns_when_picked(grayscale_front, tmp_path):
    report = inspect_model(grayscale_front)
    gray = [c for c in report.candidates if "to_gray" in c.path][-1]
    assert not gray.weighted and gray.shape[1:3] == (SIZE, SIZE)
    assert report.auto.name == "conv" and report.auto.weighted
    with pytest.warns(GradcamServingWarning, match=f"'{gray.name}' is not fed by any weight"):
        export_model(grayscale_front, tmp_path, "m", layer=gray.name)
    result = _run("inspect", grayscale_front, "--layer", gray.name)
    assert result.exit_code == 0, result.output
    assert f"warning: layer '{gray.name}' is not fed by any weight" in result.stderr
    assert "preprocessing (no weights)" in result.stdout


def test_other_channel_counts_are_refused(tmp_path):
    import tf_keras

    inputs = tf_keras.Input((SIZE, SIZE, 2))
    x = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.Conv2D(4, 3)(inputs))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(UnsupportedModelError, match=r"takes 2 channels; expected RGB .* or grayscale \[N, H, W, 1\]"):
        export_model(model, tmp_path, "m")


def test_autograph_errors_print_their_message_not_a_frame():
    import tensorflow as tf

    @tf.function
    def trace(x):
        if x.shape.rank == 1:
            raise UnsupportedModelError("layer 'top' has no gradient path to the class score; pick another layer")
        return x

    with pytest.raises(UnsupportedModelError) as info:
        trace(tf.constant([1.0]))
    assert error_line(info.value) == "layer 'top' has no gradient path to the class score; pick another layer"
    framed = ValueError('in user code:\n\n    File "/x/_signatures.py", line 250, in _explain  *\n'
                        "        grads = tf.gradients(y, x)\n\n    ValueError: the real message\n")
    assert error_line(framed) == "the real message"


def test_verbose_shows_the_trace(tmp_path):
    (tmp_path / "empty").mkdir()  # exists, so the loaders (not the option parser) refuse it
    quiet = _run("export", tmp_path / "empty", "--output", tmp_path, "--name", "m")
    lines = quiet.stderr.strip().splitlines()
    assert quiet.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), quiet.stderr
    verbose = _run("export", tmp_path / "empty", "--output", tmp_path, "--name", "m", "--verbose")
    assert verbose.exit_code == 1 and "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == lines[0]


def test_console_script_prints_no_tensorflow_log_lines(grayscale_front):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "gradcam_serving.cli", "inspect", "--json", str(grayscale_front)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["auto"] == "conv"
    assert done.stderr == "", done.stderr
