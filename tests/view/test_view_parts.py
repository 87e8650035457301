"""The view's parts without a browser: gallery confinement, error sentences, the command line's fast failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradcam_serving.errors import readable_error
from gradcam_serving.view import ViewError, read_gallery

from view_pages import png_bytes, shapes_image

REPO = Path(__file__).resolve().parents[2]


def test_gallery_keeps_to_its_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png_bytes(shapes_image(1)))
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(png_bytes(shapes_image(2)))
    (folder / "sub" / "b.png").write_bytes(png_bytes(shapes_image(3)))
    (folder / "link.png").symlink_to(outside / "secret.png")
    (folder / "notes.txt").write_text("not listed", encoding="utf-8")

    gallery = read_gallery(folder)
    assert [item.name for item in gallery.items] == ["a.png"]
    assert any("link.png" in reason and "outside" in reason for reason in gallery.skipped)

    manifest = folder / "list.csv"
    manifest.write_text("path,label\na.png,cat\nsub/b.png,\n../outside/secret.png,dog\n"
                        f"{outside / 'secret.png'},dog\nlink.png,\nmissing.png,\n", encoding="utf-8")
    gallery = read_gallery(manifest)
    assert [(item.name, item.label) for item in gallery.items] == [("a.png", "cat"), ("sub/b.png", None)]
    assert len(gallery.skipped) == 4
    assert gallery.read(1)[1] == (folder / "sub" / "b.png").read_bytes()
    with pytest.raises(ViewError) as missing:
        gallery.read(2)
    assert missing.value.status == 404

    # A gallery file replaced by a link pointing out after the start is refused when asked for.
    (folder / "a.png").unlink()
    (folder / "a.png").symlink_to(outside / "secret.png")
    with pytest.raises(ViewError, match="outside"):
        gallery.read(0)


def test_gallery_without_images_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="no JPEG or PNG images"):
        read_gallery(tmp_path)
    with pytest.raises(ValueError, match="manifest"):
        read_gallery(tmp_path / "notes.txt")


def test_graph_asserts_read_as_sentences() -> None:
    message = ("Graph execution error:\n\nassertion failed: [image too large: the export accepts at most 16777216 "
               "pixels per image; got] [25000000]\n\t [[{{node map/while/check_image_pixels/AssertGuard/Assert}}]]")
    assert readable_error(message) == (
        "image too large: the export accepts at most 16777216 pixels per image; got 25000000")
    assert readable_error("plain words") == "plain words"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from gradcam_serving.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_view_command_fails_fast_and_registers_without_starlette() -> None:
    probe = ("import sys, gradcam_serving.cli as c; "
             "print(sorted(m for m in ('starlette', 'uvicorn', 'tensorflow') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert loaded.stdout.strip() == "[]", loaded.stderr

    no_model = _cli("view")
    assert no_model.returncode == 2 and "give export folders" in no_model.stderr
    half = _cli("view", "--server", "localhost:1")
    assert half.returncode == 2 and "--server and --model go together" in half.stderr
    missing = _cli("view", "/no/such/export")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad_gallery = _cli("view", "--server", "127.0.0.1:1", "--model", "m", "--images", str(REPO / "README.md"))
    assert bad_gallery.returncode == 1 and bad_gallery.stderr.startswith("error: --images")


def test_served_model_answers_like_the_export_and_says_when_the_server_went_away(export_v1: Path) -> None:
    """``view --server``: the same answer through the gRPC client; a stopped server is a 503 in words."""
    import numpy as np

    from gradcam_e2e import local_server

    from gradcam_serving import signatures as sig
    from gradcam_serving.view import ExportModel, ServedModel

    data = png_bytes(shapes_image(4))
    export = ExportModel(export_v1)
    try:
        want = export.explain(data, "gradcam", sig.PREDICTED_CLASS)
    finally:
        export.close()
    with local_server(export_v1.parent) as server:
        served = ServedModel(server.target, "clf", timeout=10)
        got = served.explain(data, "gradcam", sig.PREDICTED_CLASS)
        card = served.card()
    try:
        assert (got.class_index, got.label) == (want.class_index, want.label)
        assert got.overlay_png == want.overlay_png
        np.testing.assert_allclose(got.heatmap, want.heatmap, atol=1e-5)
        assert card["methods"] == ["gradcam"] and card["num_classes"] == 4 and card["can_validate"] is False
        assert served.label_of(want.class_index) == want.label
        with pytest.raises(ViewError) as gone:
            served.explain(data, "gradcam", sig.PREDICTED_CLASS)
        assert gone.value.status == 503 and "not answering" in gone.value.message
    finally:
        served.close()


@pytest.mark.parametrize("case", ["readable", "missing", "resized", "not an image"])
def test_a_result_row_comes_with_its_input_image_or_says_why_not(tmp_path: Path, case: str) -> None:
    """The page draws a row's raw cam over the file the row names; a file gone or changed since is named instead."""
    import base64
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from gradcam_serving.view import read_results

    image = shapes_image(4, 30, 40)
    path = tmp_path / "photo.png"
    if case != "missing":
        path.write_bytes(b"text" if case == "not an image" else png_bytes(image[:20] if case == "resized" else image))
    (tmp_path / "out").mkdir()
    table = pa.table({"path": [str(path)], "cam": [[0.0, 1.0, 0.5, 0.25]], "cam_shape": [[2, 2]],
                      "height": [30], "width": [40]})
    pq.write_table(table, tmp_path / "out" / "results-00000-of-00001.parquet")
    answer = read_results(tmp_path / "out").cam(0)
    assert answer["shape"] == [2, 2]
    if case == "readable":
        assert answer["image_problem"] is None
        header, data = answer["image"].split(",", 1)
        assert header == "data:image/png;base64"
        assert (np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))) == image).all()
    else:
        assert answer["image"] is None and str(path) in answer["image_problem"]
        assert ("is 40×20 now, the row says 40×30" in answer["image_problem"]) == (case == "resized")
