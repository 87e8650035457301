"""Wrong input fails before TensorFlow is imported, in one ``error:`` line; graph asserts read as sentences.

Each failing command runs in a fresh process (about half a second each, as it
never imports TensorFlow), and a hook in that process reports whether
TensorFlow was imported: the proof that the check came first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_subprocess import run_cli
from gradcam_serving.errors import InvalidArgumentError, readable_error


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fast_errors")
    (root / "a_file").write_text("not a folder")
    (root / "model").mkdir()
    return {"root": str(root), "file": str(root / "a_file"), "model": str(root / "model"), "missing": str(root / "nope")}


CASES = {
    "export: missing model": (
        ["export", "{missing}", "--output", "{root}/out", "--name", "m"],
        "Invalid value for 'MODEL': model path '{missing}' does not exist; expected a SavedModel folder, "
        "a .h5 or .keras file, or a TF Hub handle (http://, https://, gs://)",
    ),
    "inspect: missing model": (["inspect", "{missing}"], "model path '{missing}' does not exist"),
    "export: unknown method": (
        ["export", "{model}", "--output", "{root}/out", "--name", "m", "--methods", "gradcam,gradcan"],
        "unknown method(s) 'gradcan'; valid methods: gradcam, gradcampp",
    ),
    "export: unknown colormap": (
        ["export", "{model}", "--output", "{root}/out", "--name", "m", "--colormap", "jett"],
        "unknown matplotlib colormap 'jett'",
    ),
    "export: missing labels file": (
        ["export", "{model}", "--output", "{root}/out", "--name", "m", "--labels", "{missing}"],
        "Invalid value for '--labels': File '{missing}' does not exist.",
    ),
    "export: --mean without --std": (
        ["export", "{model}", "--output", "{root}/out", "--name", "m", "--mean", "1,2,3"],
        "--mean and --std go together",
    ),
    "export: unknown --scores": (
        ["export", "{model}", "--output", "{root}/out", "--name", "m", "--scores", "probs"],
        "Invalid value for '--scores': 'probs' is not one of",
    ),
    "export: output base is a file": (
        ["export", "{model}", "--output", "{file}", "--name", "m"], "is a file",
    ),
    "validate: missing export": (["validate", "{missing}"], "Directory '{missing}' does not exist."),
    "validate: unknown serving version": (
        ["validate", "{model}", "--serving-version", "9.9"],
        "Invalid value for '--serving-version': no op registry recorded for TensorFlow '9.9'; recorded: 2.15,",
    ),
    "evaluate: missing images": (["evaluate", "{model}", "--images", "{missing}"], "Path '{missing}' does not exist."),
    "predict: missing image": (
        ["predict", "--server", "127.0.0.1:1", "--model", "m", "{missing}"], "File '{missing}' does not exist.",
    ),
    "demo: workdir is a file": (["demo", "--workdir", "{file}"], "is a file"),
    "config: missing export folder": (["config", "{missing}", "--print"], "model folder {missing} does not exist"),
    "explain-batch: missing source": (
        ["explain-batch", "{missing}", "--export", "{model}", "--output", "{root}/batch"],
        "Invalid value for 'SOURCE': '{missing}' does not exist; expected a folder, a file pattern",
    ),
    "view: missing export": (["view", "{missing}"], "Directory '{missing}' does not exist."),
}


@pytest.mark.parametrize("case", CASES)
def test_wrong_input_fails_in_one_line_before_tensorflow(case: str, files: dict[str, str], tmp_path: Path) -> None:
    args, message = CASES[case]
    result = run_cli(*(arg.format(**files) for arg in args), marker=tmp_path / "marker")
    assert result.code in (1, 2), result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message.format(**files) in lines[0]
    assert not result.imported_tensorflow, f"{case}: TensorFlow was imported before the input was refused"


def test_serve_flag_errors_keep_tensorflow_model_server_words_and_no_tensorflow(tmp_path: Path) -> None:
    result = run_cli("serve", "--port=8500", "--no_such_flag=1", marker=tmp_path / "marker")
    assert result.code == 2
    assert result.stderr.startswith("tensorflow_model_server: error: unrecognized arguments: --no_such_flag=1")
    assert not result.imported_tensorflow


# -- graph asserts as sentences -------------------------------------------------------------------

# As TF 2.21 words them: a tf.function's assert (eager caller), and the gRPC status of TF Serving.
EAGER_ASSERT = (
    "Graph execution error:\n\nDetected at node check_images/Assert defined at (most recent call last):\n"
    '  File "/tmp/run.py", line 8, in <module>\n\n  File "/tmp/run.py", line 4, in f\n\n'
    "assertion failed: [images must be a uint8 tensor of shape [N, H, W, 3] (RGB, at least 1x1 pixels); got shape] "
    "[2 40 56 1]\n\t [[{{node check_images/Assert}}]] [Op:__inference_f_19]"
)
SERVING_ASSERT = (
    "assertion failed: [class_index must be an int32 vector with one entry per image, each -1 (the predicted class) "
    "or a class in 0..3 (the model has 4 classes); got class_index] [-1 9] [for a batch of images of size] [2]\n"
    "\t [[{{function_node __inference_run_2678}}{{node check_class_index/Assert}}]]"
)


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (EAGER_ASSERT, "images must be a uint8 tensor of shape [N, H, W, 3] (RGB, at least 1x1 pixels); "
                       "got shape [2 40 56 1]"),
        (InvalidArgumentError(SERVING_ASSERT),
         "INVALID_ARGUMENT: class_index must be an int32 vector with one entry per image, each -1 (the predicted "
         "class) or a class in 0..3 (the model has 4 classes); got class_index [-1 9] for a batch of images of size 2"),
        ("assertion failed: [image_bytes must hold JPEG or PNG files; got one that is neither (length] [5] "
         "[bytes; first bytes in hex:] [68 65 6c 6c 6f] [)]",
         "image_bytes must hold JPEG or PNG files; got one that is neither (length 5 bytes; first bytes in hex: "
         "68 65 6c 6c 6f)"),
        ("indices[0] = 9 is not in [0, 4)\n\t [[{{node GatherV2}}]]", "indices[0] = 9 is not in [0, 4)"),
        ("NOT_FOUND: Servable not found for request: Latest(nope)", "NOT_FOUND: Servable not found for request: Latest(nope)"),
    ],
    ids=["eager-assert", "serving-status", "string-values", "kernel-error-trailer", "plain"],
)
def test_readable_error_drops_graph_trailers_and_assert_brackets(error: object, sentence: str) -> None:
    assert readable_error(error) == sentence


def test_readable_error_on_a_real_tensorflow_assert() -> None:
    """The wording above is TensorFlow's own: check it against the running version."""
    import tensorflow as tf

    @tf.function
    def checked(x: tf.Tensor) -> tf.Tensor:
        check = tf.debugging.Assert(tf.reduce_all(x < 3), ["values must be below 3; got", x, "in a batch of", tf.size(x)])
        with tf.control_dependencies([check]):
            return tf.identity(x)

    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        checked(tf.constant([1, 7]))
    assert "[[{{node" in str(info.value)
    assert readable_error(info.value) == "values must be below 3; got [1 7] in a batch of 2"


def test_main_returns_every_exit_code_and_the_help_documents_them(files: dict[str, str], capsys) -> None:
    """One convention: ``main()`` returns 0, 1 (failure) or 2 (usage) and never raises ``SystemExit``."""
    from gradcam_serving.cli import main

    assert main(["--help"]) == 0
    assert "Exit codes:" in capsys.readouterr().out
    assert main(["no-such-command"]) == 2
    assert main(["explain-batch", files["root"], "--output", f"{files['root']}/out"]) == 1  # refused by errors_as_exit
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: give either an export folder (--export)")
