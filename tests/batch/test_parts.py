"""The batch pipeline's parts on their own: the per-image check, names, methods, the summary, the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from batch_data import MAX_PIXELS, encode, make_shortcut_set


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(make_shortcut_set(1, seed=3).images[0], "JPEG")


@pytest.mark.parametrize("make, words", [
    (lambda jpeg: b"", "empty file"),
    (lambda jpeg: b"plain text, named .png", "not an image"),
    (lambda jpeg: jpeg[: len(jpeg) // 2], "truncated"),
    (lambda jpeg: jpeg[:40], "truncated"),
    (lambda jpeg: encode(np.zeros((8, 8, 3), np.uint8), "GIF"), "JPEG and PNG files only"),
    (lambda jpeg: encode(np.zeros((8, 8, 3), np.uint8), "PNG")[:-20], "truncated"),
    (lambda jpeg: encode(np.zeros((100, 100, 3), np.uint8), "PNG"), f"at most {MAX_PIXELS}"),
])
def test_check_image_names_what_is_wrong(jpeg: bytes, make, words: str) -> None:  # type: ignore[no-untyped-def]
    from gradcam_serving.batch import check_image

    with pytest.raises(ValueError, match=words):
        check_image(make(jpeg), MAX_PIXELS)


def test_check_image_gives_the_size_of_good_files(jpeg: bytes) -> None:
    from gradcam_serving.batch import check_image

    assert check_image(jpeg, MAX_PIXELS) == (32, 32)
    assert check_image(encode(np.zeros((20, 30, 3), np.uint8), "PNG"), None) == (20, 30)


def test_class_to_explain_reads_indices_and_label_texts() -> None:
    from gradcam_serving.batch import class_to_explain

    assert class_to_explain(2, ("a", "b", "c"), 3) == 2
    assert class_to_explain("b", ("a", "b", "c"), 3) == 1
    for label, words in ((None, "no label"), ("z", "known: a, b, c"), (7, "0..2")):
        with pytest.raises(ValueError, match=words):
            class_to_explain(label, ("a", "b", "c"), 3)


def test_file_names_keep_folders_below_the_input_root() -> None:
    from gradcam_serving.batch import input_root, relative_name

    assert input_root("/data/photos/*/*.jpg") == "/data/photos"
    assert input_root("gs://bucket/set/**") == "gs://bucket/set"
    assert input_root("/data/list.csv") == "/data"
    assert relative_name("/data/photos/cats/1.jpg", "/data/photos") == "cats/1"
    assert relative_name("/data/photos/dogs/1.jpg", "/data/photos") == "dogs/1"
    assert relative_name("gs://other/x/y.png", "/data") == "other/x/y"
    assert relative_name("/d/train.tfrecord#sha1-ab12", "/d") == "train/sha1-ab12"


def test_the_job_is_checked_before_beam_loads_and_methods_resolve_with_the_one_resolver() -> None:
    code = ("import sys; from gradcam_serving.batch import BatchJob, check_job\n"
            "try:\n    check_job(BatchJob('x/*.jpg', 'out', export='e', server='s:1'))\n"
            "except ValueError as exc:\n    print(exc)\n"
            "print('apache_beam' in sys.modules, hasattr(__import__('gradcam_serving.batch').batch, 'resolve_methods'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    refusal, loaded = result.stdout.strip().splitlines()[-2:]
    assert refusal.startswith("give either an export folder (--export) or a server")
    assert loaded == "False False"


def test_border_share_sees_a_corner_blob_through_a_diffuse_background() -> None:
    from gradcam_serving.batch import BORDER_THRESHOLD, GRID, border_share

    diffuse = np.full((GRID, GRID), 0.45, np.float32)
    corner, centre = diffuse.copy(), diffuse.copy()
    corner[:4, :4] = 1.0
    centre[14:18, 14:18] = 1.0
    assert border_share(corner) > BORDER_THRESHOLD > border_share(centre)
    assert border_share(np.zeros((GRID, GRID))) == 0.0


def test_overwrite_deletes_only_a_previous_jobs_files(tmp_path: Path) -> None:
    from gradcam_serving.batch import prepare_output

    (tmp_path / "overlays" / "a").mkdir(parents=True)
    (tmp_path / "overlays" / "a" / "x_gradcam.png").write_bytes(b"png")
    (tmp_path / "results-00000-of-00001.parquet").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare_output(str(tmp_path), overwrite=False)
    prepare_output(str(tmp_path), overwrite=True)
    assert not (tmp_path / "results-00000-of-00001.parquet").exists()
    assert not (tmp_path / "overlays" / "a" / "x_gradcam.png").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_importing_the_cli_imports_neither_beam_nor_tensorflow() -> None:
    code = ("import sys, gradcam_serving.cli as c; assert 'explain-batch' in c.cli.commands; "
            "print(sorted(m for m in ('apache_beam', 'tensorflow', 'pyarrow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "[]"


def test_command_prints_one_summary_line_and_nothing_else(shortcut_export: Path, tmp_path: Path) -> None:
    from batch_data import write_images

    write_images(tmp_path / "images", 10, seed=31)
    (tmp_path / "images" / "part0" / "bad.jpg").write_bytes(b"")
    command = [sys.executable, "-c", "import sys; from gradcam_serving.cli import main; sys.exit(main())",
               "explain-batch", str(tmp_path / "images"), "--export", str(shortcut_export),
               "--output", str(tmp_path / "out"), "--method", "gradcam", "--heatmaps", "png",
               "--direct_num_workers", "1"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith("10 images, 1 failed, ") and " images/s" in line and line.endswith(f" -> {tmp_path / 'out'}")
    assert len(list((tmp_path / "out" / "heatmaps").rglob("*_gradcam.png"))) == 10
    again = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert again.returncode == 1 and again.stderr.startswith("error: output folder") and "--overwrite" in again.stderr


def test_the_in_process_handler_loads_with_the_tools_session_options(shortcut_export: Path) -> None:
    """Each worker loads as TF Serving does, with ``place_pruned_graph`` (half the load and first-run time)."""
    from gradcam_serving.batch import ExplainModelHandler

    session = ExplainModelHandler(shortcut_export, session_threads=1).load_model()
    try:
        assert session.config.graph_options.place_pruned_graph is True
        assert session.config.intra_op_parallelism_threads == 1
    finally:
        session.close()
