"""``evaluate --report``'s ``index.html`` on a 390 px phone in a real browser: the page fits, the table scrolls in its box.

The report is built from made-up scores (no model needed): eight columns and long source
names make the table wider than the phone, as a real comparison of two exports does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcam_serving.evaluate import EvaluationReport, ImageScores, MethodScores, Sample, write_report

PHONE = {"width": 390, "height": 844}


def _report() -> EvaluationReport:
    rng = np.random.default_rng(0)
    samples = [Sample(f"photo_{i}.jpg", rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)) for i in range(2)]
    curve = np.linspace(0.9, 0.1, 5)

    def scores(sample: Sample) -> ImageScores:
        return ImageScores(sample.name, 1, 0.9, curve, curve[::-1], 0.5, 0.7, 0.3, None,
                           rng.uniform(size=sample.image.shape[:2]).astype(np.float32))

    results = [MethodScores(source, method, f"explain_{method}", [scores(s) for s in samples])
               for source in ("flowers_out_relu/1", "flowers_block_13_expand/1") for method in ("gradcam", "layercam")]
    return EvaluationReport(results, 4, 5.0, 0, samples)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(_report(), tmp_path_factory.mktemp("evaluate_report"), max_grids=1)


def _widths(page: Any) -> dict[str, int]:
    return page.evaluate("""() => {
        const box = document.querySelector('table').parentElement;
        return {page: document.documentElement.scrollWidth, screen: innerWidth,
                box: box.clientWidth, table: box.scrollWidth, overflow: getComputedStyle(box).overflowX};
    }""")


@pytest.mark.parametrize("mobile", [False, True], ids=["narrow-window", "phone"])
def test_the_page_fits_a_390px_screen_and_the_table_scrolls_in_its_own_box(
    browser: Any, report_page: Path, mobile: bool
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=mobile, has_touch=mobile)
    try:
        page = context.new_page()
        page.goto(report_page.as_uri())
        widths = _widths(page)
        # A phone lays out a page without a viewport line 980 px wide and shrinks it: the screen must be 390 px.
        assert widths["screen"] == PHONE["width"], widths
        assert widths["page"] <= widths["screen"], f"the page scrolls sideways: {widths}"
        assert widths["table"] > widths["box"] and widths["overflow"] in ("auto", "scroll"), widths
        page.eval_on_selector("table", "t => t.parentElement.scrollLeft = 10000")
        assert page.eval_on_selector("table", "t => t.parentElement.scrollLeft") > 0
        assert page.evaluate("() => scrollX") == 0
    finally:
        context.close()
