"""The Beam pipeline end to end on the DirectRunner: rows equal the export run directly, nothing is lost.

One in-memory run over a manifest of 210 mixed-size images plus bad inputs of
every kind checks the rows, ``failed.jsonl``, the output files and the summary;
one run with two ``multi_processing`` workers reads a folder through ``fileio``.
The reference is the export's ``explain_bytes_<method>`` run through
``ExportSession`` one image at a time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from batch_data import (
    ATOL,
    LABELS,
    MAX_PIXELS,
    METHODS,
    ImageFolder,
    assert_rows_equal_direct,
    encode,
    make_shortcut_set,
    read_failed,
    read_rows,
    resized,
    write_images,
)

def write_bad_inputs(folder: Path, good: Path) -> dict[str, str]:
    """One bad input of each kind; path -> the words its failure must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = good.read_bytes() if good.suffix == ".jpg" else encode(make_shortcut_set(1, 5).images[0], "JPEG")
    big = np.zeros((int(MAX_PIXELS**0.5) + 8, int(MAX_PIXELS**0.5) + 8, 3), np.uint8)
    files = {
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "text.png": (b"this is not an image\n", "not an image"),
        "huge.png": (encode(big, "PNG"), "too large"),
        "empty.jpg": (b"", "empty"),
        "picture.gif": (_gif(), "GIF"),
    }
    expected = {}
    for name, (data, words) in files.items():
        (folder / name).write_bytes(data)
        expected[str(folder / name)] = words
    expected[str(folder / "missing.jpg")] = "no such file"
    return expected


def _gif() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, "GIF")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImageFolder, Path, dict[str, str]]:
    """210 good images (mixed sizes, JPEG and PNG, two folders) and 6 bad inputs, in a CSV manifest with labels."""
    root = tmp_path_factory.mktemp("dataset")
    images = write_images(root / "images", 210, seed=11)
    bad = write_bad_inputs(root / "bad", images.paths[1])
    lines = ["path,label"] + [f"{p.relative_to(root)},{LABELS[images.labels[p]]}" for p in images.paths]
    lines += [f"{Path(p).relative_to(root)}," for p in bad]
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return images, manifest, bad


@pytest.fixture(scope="module")
def in_memory_run(shortcut_export: Path, dataset: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from gradcam_serving.batch import BatchJob, run_batch

    _, manifest, _ = dataset
    output = tmp_path_factory.mktemp("in_memory") / "out"
    job = BatchJob(str(manifest), str(output), export=str(shortcut_export), methods="all", overlays=True,
                   heatmaps="npy", batch_size=16)
    return run_batch(job, ["--runner", "DirectRunner"]), output


def test_rows_equal_explain_bytes_run_directly(in_memory_run: Any, dataset: Any, shortcut_export: Path) -> None:
    report, output = in_memory_run
    images, _, _ = dataset
    rows = read_rows(output)
    assert len(rows) == len(images.paths) * len(METHODS)
    assert {row["method"] for row in rows} == set(METHODS)
    sizes = {(row["height"], row["width"]) for row in rows}
    assert len(sizes) > 50, "the images must mix sizes in one batch"
    assert_rows_equal_direct(rows, shortcut_export, METHODS)
    for row in rows:
        assert row["label"] == LABELS[images.labels[Path(row["path"])]]
        assert row["top_classes"][0] == row["predicted_class"] == row["explained_class"]
        assert 0 < row["peak_row"] < 1 and 0 < row["peak_col"] < 1 and 0 <= row["area_above_half"] <= 1


def test_every_bad_input_is_in_failed_jsonl_with_its_reason(in_memory_run: Any, dataset: Any) -> None:
    report, output = in_memory_run
    images, _, bad = dataset
    failed = {line["path"]: line for line in read_failed(output)}
    assert set(failed) == set(bad)
    for path, words in bad.items():
        assert words.lower() in failed[path]["error"].lower(), failed[path]
    assert failed[str(Path(next(iter(bad))).parent / "missing.jpg")]["stage"] == "read"
    explained = {row["path"] for row in read_rows(output)}
    assert len(explained) + len(failed) == len(images.paths) + len(bad)
    assert (report.images, report.failed) == (len(images.paths), len(bad))


def test_overlays_heatmaps_and_summary_are_written(in_memory_run: Any, dataset: Any) -> None:
    from PIL import Image

    report, output = in_memory_run
    images, _, _ = dataset
    rows = read_rows(output)
    row = rows[0]
    overlay = Image.open(output / row["overlay_file"])
    assert overlay.size == (row["width"], row["height"])
    heatmap = np.load(output / row["heatmap_file"])
    assert heatmap.shape == (32, 32) and 0 <= heatmap.min() and heatmap.max() <= 1
    # named after the input below the manifest's folder: the two image folders never collide
    assert row["overlay_file"].startswith("overlays/images/part") and row["overlay_file"].endswith(
        f"_{row['method']}.png")
    assert len({r["overlay_file"] for r in rows}) == len(rows)
    summary = json.loads((output / "summary.json").read_text())
    assert summary["images"] + summary["failed"] == summary["inputs"] == report.images + report.failed
    assert summary["rows"] == len(rows)
    counts = {(c["method"], c["label"]): c["count"] for c in summary["classes"]}
    for method in METHODS:
        assert sum(v for (m, _), v in counts.items() if m == method) == len(images.paths)
    assert Image.open(output / "summary.png").size[0] > 300


def test_summary_flags_the_class_the_model_knows_by_its_corner_mark(in_memory_run: Any) -> None:
    _, output = in_memory_run
    summary = json.loads((output / "summary.json").read_text())
    flagged = {entry["label"] for entry in summary["flagged"]}
    assert flagged == {"marked"}, summary["flagged"]
    for method in METHODS:
        shares = {c["label"]: c["border_share"] for c in summary["classes"] if c["method"] == method}
        assert shares["marked"] > max(shares["ring"], shares["cross"]) + 0.2, (method, shares)


def test_output_folder_with_results_is_refused_unless_overwrite(in_memory_run: Any, shortcut_export: Path) -> None:
    from gradcam_serving.batch import BatchJob, run_batch

    _, output = in_memory_run
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_batch(BatchJob("unused/*.jpg", str(output), export=str(shortcut_export)))


def test_two_multi_processing_workers_read_a_folder(shortcut_export: Path, tmp_path: Path) -> None:
    from gradcam_serving.batch import BatchJob, run_batch

    images = write_images(tmp_path / "folder", 24, seed=12)
    (tmp_path / "folder" / "part0" / "notes.png").write_text("not an image")
    job = BatchJob(str(tmp_path / "folder"), str(tmp_path / "out"), export=str(shortcut_export),
                   methods=["layercam"], batch_size=8)
    report = run_batch(job, ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"])
    rows = read_rows(tmp_path / "out")
    assert sorted(row["path"] for row in rows) == sorted(str(p) for p in images.paths)
    assert_rows_equal_direct(rows, shortcut_export, ["layercam"])
    assert [line["path"] for line in read_failed(tmp_path / "out")] == [str(tmp_path / "folder" / "part0" / "notes.png")]
    assert (report.images, report.failed) == (24, 1)


def test_tfrecords_top_k_and_class_from_label(shortcut_export: Path, tmp_path: Path) -> None:
    """TFRecords of tf.train.Example (image/encoded, image/class/label); top-k rows; the label explained."""
    import tensorflow as tf

    from gradcam_serving.batch import BatchJob, run_batch

    data = make_shortcut_set(12, seed=13)
    record_file = tmp_path / "data.tfrecord"
    with tf.io.TFRecordWriter(str(record_file)) as writer:
        for i, (image, label) in enumerate(zip(data.images, data.labels)):
            feature = {
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encode(resized(image, 40, 30), "PNG")])),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"img{i}.png".encode()])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
        writer.write(b"not an example")
    by_label = run_batch(BatchJob(str(record_file), str(tmp_path / "label"), export=str(shortcut_export),
                                  methods=["gradcam"], class_from_label=True))
    rows = read_rows(tmp_path / "label")
    assert sorted(row["explained_class"] for row in rows) == sorted(int(v) for v in data.labels)
    assert {row["path"].split("#")[1] for row in rows} == {f"img{i}.png" for i in range(12)}
    assert by_label.failed == 1 and read_failed(tmp_path / "label")[0]["stage"] == "read"

    run_batch(BatchJob(str(record_file), str(tmp_path / "top"), export=str(shortcut_export), methods=["gradcam"],
                       top_k=2))
    top = read_rows(tmp_path / "top")
    assert len(top) == 24
    for row in top:
        assert row["explained_class"] == row["top_classes"][row["rank"] - 1]
        np.testing.assert_allclose(row["score"], row["top_scores"][row["rank"] - 1], atol=ATOL)
