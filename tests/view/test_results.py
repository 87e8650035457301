"""``view --results DIR`` in a real browser, over a real ``explain-batch`` output folder.

One small job runs on the DirectRunner with a tiny export that has a small pixel limit: four
shape images, a text file named ``.jpg`` and one image above the limit. Every expected value is
read back from the folder the job wrote (parquet rows, ``failed.jsonl``, ``summary.json``).
The same export is also a live column of the page, so an image above its limit can be dropped on it.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from view_pages import png_bytes, shapes_image

MAX_PIXELS = 64 * 64
METHODS = ("gradcam", "layercam")
LABELS = ["zero", "one", "two", "three"]


@dataclass
class Served:
    url: str
    folder: Path


@pytest.fixture(scope="module")
def limited_export(tiny_models: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gradcam_serving.exporter import export_model

    base = tmp_path_factory.mktemp("limited")
    return export_model(tiny_models.hub_classifier, base, "limited", version=1, methods=",".join(METHODS),
                        labels=LABELS, max_pixels=MAX_PIXELS).path


@pytest.fixture(scope="module")
def batch_output(limited_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """explain-batch's folder: 4 images x 2 methods x top 2 classes, and 2 failures (not an image, too big)."""
    from gradcam_serving.batch import BatchJob, run_batch

    images = tmp_path_factory.mktemp("batch_images")
    for seed in range(4):
        (images / f"shape{seed}.png").write_bytes(png_bytes(shapes_image(seed, 48, 56)))
    (images / "notes.jpg").write_text("not an image, only text with a .jpg name\n", encoding="utf-8")
    (images / "huge.png").write_bytes(png_bytes(shapes_image(9, 80, 90)))
    output = tmp_path_factory.mktemp("batch_out") / "out"
    run_batch(BatchJob(source=str(images), output=str(output), export=str(limited_export), methods=list(METHODS),
                       top_k=2, overlays=True, batch_size=4))
    return output


def _parquet_rows(folder: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return [row for path in sorted(folder.glob("results-*.parquet")) for row in pq.read_table(path).to_pylist()]


@pytest.fixture(scope="module")
def without_overlays(batch_output: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy whose rows name no overlay, except two that try to leave the folder ('..' and a symlink out)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("copies")
    copy = root / "copy"
    shutil.copytree(batch_output, copy)
    secret = root / "secret.png"
    secret.write_bytes(png_bytes(shapes_image(5)))
    os.symlink(secret, copy / "overlays" / "link.png")
    files = sorted(copy.glob("results-*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in files])
    for path in files:
        path.unlink()
    overlays = [None] * table.num_rows
    overlays[0], overlays[1] = "../secret.png", "overlays/link.png"
    table = table.set_column(table.column_names.index("overlay_file"), "overlay_file", pa.array(overlays, pa.string()))
    pq.write_table(table, copy / "results-00000-of-00001.parquet")
    summary = json.loads((copy / "summary.json").read_text())  # one class flagged, as a shortcut would be
    summary["classes"][-1]["flagged"] = True
    summary["flagged"] = [{k: summary["classes"][-1][k] for k in ("method", "class_index", "label", "border_share")}]
    (copy / "summary.json").write_text(json.dumps(summary))
    return copy


@pytest.fixture(scope="module")
def with_export(limited_export: Path, batch_output: Path) -> Iterator[Served]:
    """The page over the export (one live column) and the job's results."""
    from gradcam_serving.view import create_app, open_models, read_results, running

    models = open_models([str(limited_export)])
    try:
        with running(create_app(models, results=read_results(batch_output)), port=0) as server:
            yield Served(server.url, batch_output)
    finally:
        for model in models:
            model.close()


@pytest.fixture(scope="module")
def results_only(without_overlays: Path) -> Iterator[Served]:
    from gradcam_serving.view import create_app, read_results, running

    with running(create_app([], results=read_results(without_overlays)), port=0) as server:
        yield Served(server.url, without_overlays)


def _open(browser: Any, served: Served) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(served.url)
    page.wait_for_selector("body[data-ready=true][data-results=ready]")
    return page


def _column(page: Any, name: str) -> list[str]:
    return page.locator(f"#results-table tbody td.{name}").all_inner_texts()


def test_results_rows_filter_sort_failed_and_summary(browser: Any, with_export: Served, tmp_path: Path) -> None:
    rows = _parquet_rows(with_export.folder)
    summary = json.loads((with_export.folder / "summary.json").read_text())
    failed = [json.loads(line) for line in (with_export.folder / "failed.jsonl").read_text().splitlines() if line]
    page = _open(browser, with_export)

    assert page.locator("#results-table tbody tr").count() == len(rows) == 4 * len(METHODS) * 2
    scores = [float(s) for s in _column(page, "score")]
    assert scores == sorted(scores, reverse=True)
    assert scores == pytest.approx(sorted((r["score"] for r in rows), reverse=True), abs=5e-4)
    assert page.locator("#results-score-head").get_attribute("aria-sort") == "descending"

    classes = sorted({r["explained_class"] for r in rows})
    assert len(classes) >= 2
    for chosen in classes:
        page.select_option("#results-class", str(chosen))
        explained = _column(page, "explained")
        assert len(explained) == sum(r["explained_class"] == chosen for r in rows)
        assert all(text.endswith(f"({chosen})") for text in explained), explained
        shown = [float(s) for s in _column(page, "score")]
        assert shown == sorted(shown, reverse=True)
    page.select_option("#results-class", "")
    page.select_option("#results-sort", "score-asc")
    ascending = [float(s) for s in _column(page, "score")]
    assert ascending == sorted(ascending) and len(ascending) == len(rows)

    failed_text = page.locator("#failed-list").inner_text()
    assert {Path(f["path"]).name for f in failed} == {"notes.jpg", "huge.png"}
    assert "notes.jpg" in failed_text and "huge.png" in failed_text
    figures = page.locator("#summary-classes figure")
    assert figures.count() == len(summary["classes"])
    labels = page.locator("#summary-classes .summary-label").all_inner_texts()
    assert labels == [entry["label"] for entry in summary["classes"]]
    assert page.locator("#summary-classes figure.flagged").count() == len(summary["flagged"])

    # Keyboard: the first row's button opens its overlay, the file explain-batch wrote.
    first = page.locator("#results-table tbody tr").first
    first.locator("button").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#result-detail[data-kind=overlay]")
    assert first.get_attribute("aria-selected") == "true"
    assert page.evaluate("document.querySelector('#result-overlay').naturalWidth") > 0
    assert page.locator("#result-overlay").get_attribute("alt").startswith("Overlay: ")
    page.screenshot(path=str(tmp_path / "results.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # phone width: the table scrolls inside its box
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "results_phone.png"), full_page=True)
    assert page.errors == []
    page.close()


def test_rows_without_overlays_draw_the_raw_cam_and_files_stay_inside(
    browser: Any, results_only: Served, tmp_path: Path
) -> None:
    page = _open(browser, results_only)
    assert page.locator("#columns").is_hidden() and page.locator("#controls").is_hidden()
    flagged = page.locator("#summary-classes figure.flagged")
    assert flagged.count() == 1 and "flagged" in flagged.inner_text()
    assert "possible shortcut" in flagged.locator("canvas").get_attribute("aria-label")
    assert page.locator("#summary-classes figure").last.get_attribute("class").endswith("flagged")
    page.select_option("#results-sort", "path")
    row = page.locator("#results-table tbody tr[data-index='3']")
    row.click()
    page.wait_for_selector("#result-detail[data-kind=cam]")
    pixels = page.evaluate("(() => { const c = document.querySelector('#result-heatmap');"
                           "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()")
    rgba = np.asarray(pixels, np.int16).reshape(-1, 4)
    assert rgba[:, 3].min() == 255 and np.ptp(rgba[:, :3], axis=0).max() > 50  # a map, not a flat colour
    assert "raw cam" in page.locator("#result-caption").inner_text()
    page.screenshot(path=str(tmp_path / "results_only.png"), full_page=True)

    for index, why in ((0, "outside the folder"), (1, "pointing outside")):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{results_only.url}api/results/{index}/overlay", timeout=10)
        assert refused.value.code == 404 and why in json.loads(refused.value.read())["error"]
    page.locator("#results-table tbody tr[data-index='0'] button").click()
    page.wait_for_function("document.querySelector('#result-caption').textContent.includes('outside')")
    assert page.errors == []
    page.close()


def test_an_image_above_the_pixel_limit_is_a_readable_error(browser: Any, with_export: Served, tmp_path: Path) -> None:
    page = _open(browser, with_export)
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    big.write_bytes(png_bytes(shapes_image(1, 80, 90)))
    small.write_bytes(png_bytes(shapes_image(2, 40, 40)))
    done = ("n => Number(document.body.dataset.generation) > n "
            "&& document.body.dataset.done === document.body.dataset.generation")
    for path in (big, small):
        before = int(page.evaluate("document.body.dataset.generation"))
        page.set_input_files("#file", str(path))
        page.wait_for_function(done, arg=before, timeout=60_000)
        if path is big:
            error = page.locator("#error").inner_text()
            assert "big.png" in error and str(MAX_PIXELS) in error.replace(",", ""), error
            assert "[[" not in error and "{{node" not in error
    assert page.locator("#error").is_hidden()
    assert page.locator(".column .classes button").count() > 0
    assert page.locator("#results-table tbody tr").count() == len(_parquet_rows(with_export.folder))
    assert page.errors == []
    page.close()


def test_a_folder_that_is_not_a_batch_output_is_refused(tmp_path: Path) -> None:
    from gradcam_serving.view import read_results

    with pytest.raises(ValueError, match=r"no results-\*\.parquet or summary\.json inside it"):
        read_results(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        read_results(tmp_path / "missing")
    (tmp_path / "results-00000-of-00001.parquet").write_text("not parquet", encoding="utf-8")
    with pytest.raises(ValueError, match="results-00000-of-00001.parquet is not a readable Parquet file"):
        read_results(tmp_path)


def _canvas_pixels(page: Any, selector: str) -> np.ndarray:
    pixels = page.evaluate(f"(() => {{ const c = document.querySelector('{selector}');"
                           "return [c.height, c.width, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; })()")
    height, width, values = pixels
    return np.asarray(values, np.float64).reshape(height, width, 4)[..., :3]


def test_a_row_without_an_overlay_draws_its_map_over_its_image(browser: Any, results_only: Served) -> None:
    """The row's image is known and readable: the map is blended over it, as an overlay would be, not drawn alone."""
    from PIL import Image

    page = _open(browser, results_only)
    row = json.loads(urllib.request.urlopen(f"{results_only.url}api/results", timeout=10).read())["rows"][3]
    page.locator("#results-table tbody tr[data-index='3']").click()
    page.wait_for_selector("#result-detail[data-kind=cam][data-under=image]")
    drawn = _canvas_pixels(page, "#result-heatmap")
    # The heatmap alone, drawn by the page's own functions from the same cam, at the same size.
    page.evaluate("""async () => {
        const json = await (await fetch('/api/results/3/cam')).json();
        const cam = {shape: json.shape, values: Float32Array.from(json.cam, (v) => (v == null ? 0 : Math.max(v, 0)))};
        const peak = cam.values.reduce((m, v) => Math.max(m, v), 0);
        const shown = document.querySelector('#result-heatmap');
        const alone = colouredMap(resize(cam, shown.height, shown.width), peak, state.luts.jet);
        alone.id = 'heatmap-alone';
        document.body.append(alone);
    }""")
    alone = _canvas_pixels(page, "#heatmap-alone")
    image = np.asarray(Image.open(row["path"]).convert("RGB"), np.float64)
    assert image.shape == drawn.shape, (image.shape, drawn.shape)
    blend = page.evaluate("BLEND")
    expected = (1 - blend) * image + blend * alone
    assert np.abs(drawn - alone).mean() > 20, "the map is drawn alone, without its image"
    assert np.abs(drawn - expected).mean() < 2, np.abs(drawn - expected).mean()
    assert "over the image" in page.locator("#result-caption").inner_text()
    assert page.errors == []
    page.close()
