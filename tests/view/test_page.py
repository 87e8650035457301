"""The view page in a real browser (headless Chromium through Playwright) against the view server.

Every expected value comes from the export itself, run on TF Serving's loading path (the same
``ExportSession`` the server holds): its methods, ``predict_bytes``' label, ``explain_bytes_<method>``'s
``overlay_png`` for the predicted class and for another one.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import urllib.parse
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcam_serving import signatures as sig

from view_pages import ViewSetup, png_bytes, shapes_image

DONE = ("n => Number(document.body.dataset.generation) > n "
        "&& document.body.dataset.done === document.body.dataset.generation")


def _open(browser: Any, setup: ViewSetup, width: int = 1280, height: int = 900) -> Any:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(setup.url)
    page.wait_for_selector("body[data-ready=true]")
    return page


def _generation(page: Any) -> int:
    return int(page.evaluate("document.body.dataset.generation"))


def _explain_file(page: Any, path: Path) -> None:
    before = _generation(page)
    page.set_input_files("#file", str(path))
    page.wait_for_function(DONE, arg=before, timeout=60_000)


def _click_and_wait(page: Any, locator: Any) -> None:
    before = _generation(page)
    locator.click()
    page.wait_for_function(DONE, arg=before, timeout=60_000)


def _decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _canvas(page: Any, column: int, method: str) -> np.ndarray:
    url = page.evaluate(
        "([c, m]) => document.querySelectorAll('.column')[c].querySelector(`.panel[data-method='${m}'] canvas`)"
        ".toDataURL('image/png')", [column, method])
    return _decode_png(base64.b64decode(url.split(",", 1)[1]))


def _run(model: Any, signature: str, data: bytes, class_index: int | None = None) -> dict[str, Any]:
    inputs = {sig.IMAGE_BYTES: np.array([data], dtype=object)}
    if class_index is not None:
        inputs[sig.CLASS_INDEX] = np.array([class_index], np.int32)
    return model.session.run(signature, inputs)


def _served_overlay(model: Any, method: str, data: bytes, class_index: int) -> np.ndarray:
    out = _run(model, sig.explain_signature(method, encoded=True), data, class_index)
    return _decode_png(bytes(out[sig.OVERLAY_PNG][0]))


def _label(value: Any) -> str:
    value = np.asarray(value).reshape(-1)[0]
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(scope="module")
def image_file(view: ViewSetup) -> Path:
    return view.images / "shape1.png"


def test_panels_top_class_and_overlay_pixels(browser: Any, view: ViewSetup, image_file: Path) -> None:
    model = view.models[0]
    data = image_file.read_bytes()
    page = _open(browser, view)
    _explain_file(page, image_file)

    methods = model.session.metadata.methods
    assert page.locator(".column").nth(0).locator(".panel").count() == len(methods) == 3
    predicted = _run(model, sig.PREDICT_BYTES, data)
    first = page.locator(".column").nth(0).locator(".classes button").first
    assert first.locator(".name").inner_text() == _label(predicted[sig.LABEL])
    assert first.get_attribute("aria-pressed") == "true"
    for method in methods:
        drawn, served = _canvas(page, 0, method), _served_overlay(model, method, data, sig.PREDICTED_CLASS)
        assert drawn.shape == served.shape
        assert np.abs(drawn - served).max() <= 1, method
        assert "over shape1.png" in page.locator(f".column >> nth=0 >> .panel[data-method={method}] canvas") \
            .get_attribute("aria-label")
    assert page.locator("#error").is_hidden()

    canvas = page.locator(".column >> nth=0 >> .panel[data-method=gradcam] canvas")
    canvas.focus()
    page.keyboard.press("ArrowRight")
    assert "map 0." in page.locator(".column >> nth=0 >> .panel[data-method=gradcam] .readout").inner_text()
    page.screenshot(path=str(view.screenshots / "explained.png"), full_page=True)
    assert page.errors == []
    page.close()


def test_another_class_changes_the_maps(browser: Any, view: ViewSetup, image_file: Path) -> None:
    model = view.models[0]
    data = image_file.read_bytes()
    page = _open(browser, view)
    _explain_file(page, image_file)
    before = {m: _canvas(page, 0, m) for m in model.methods}
    second = page.locator(".column").nth(0).locator(".classes button").nth(1)
    class_index = int(second.get_attribute("data-class-index"))
    _click_and_wait(page, second)

    chosen = page.locator(".column").nth(0).locator(".classes button[aria-pressed=true]")
    assert int(chosen.get_attribute("data-class-index")) == class_index
    for method in model.methods:
        drawn = _canvas(page, 0, method)
        assert np.abs(drawn - _served_overlay(model, method, data, class_index)).max() <= 1, method
        assert np.abs(drawn - before[method]).max() > 1, f"{method}: the map did not change"
    # The other column explains the same class.
    other = page.locator(".column").nth(1).locator(".classes button[aria-pressed=true]")
    assert int(other.get_attribute("data-class-index")) == class_index
    page.screenshot(path=str(view.screenshots / "other_class.png"), full_page=True)
    page.close()


def test_not_an_image_is_a_readable_error_and_the_page_keeps_working(
    browser: Any, view: ViewSetup, image_file: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    page = _open(browser, view)
    capfd.readouterr()
    _explain_file(page, view.images / "notes.jpg")
    error = page.locator("#error")
    assert error.is_visible()
    assert "notes.jpg" in error.inner_text() and "JPEG or PNG" in error.inner_text()
    assert "[[" not in error.inner_text() and "{{node" not in error.inner_text()
    page.screenshot(path=str(view.screenshots / "not_an_image.png"), full_page=True)
    log = capfd.readouterr().err.strip().splitlines()
    assert len(log) == 4, log  # one line per method panel: 3 + 1 of the second export
    assert all(line.startswith("view: POST /api/explain -> 400: image_bytes must hold JPEG or PNG") for line in log)

    _explain_file(page, image_file)
    assert error.is_hidden()
    assert page.locator(".column >> nth=0 >> .classes button").count() > 0
    assert page.errors == []
    page.close()


def test_two_exports_two_columns_and_a_gallery(browser: Any, view: ViewSetup) -> None:
    page = _open(browser, view)
    columns = page.locator(".column")
    assert columns.count() == 2
    for index, model in enumerate(view.models):
        assert columns.nth(index).locator(".column-title").inner_text() == model.name
        assert columns.nth(index).locator(".panel").count() == len(model.methods)
    thumbs = page.locator("#thumbs button")
    assert thumbs.count() == 4  # three PNGs and the text file named .jpg, sorted by name
    before = _generation(page)
    thumbs.nth(1).click()
    page.wait_for_function(DONE, arg=before, timeout=60_000)
    assert page.locator("#image-name").inner_text() == "shape0.png"
    assert page.locator("#thumbs img").nth(1).get_attribute("alt") == "shape0.png"
    page.locator(".column >> nth=0 >> .card summary").click()
    card = page.locator(".column >> nth=0 >> .card").inner_text()
    assert "gradcam, gradcampp, layercam" in card and "48 × 48" in card and "TensorFlow 2." in card
    assert "not validated" in card
    layer = view.models[0].metadata.layer
    assert layer and layer in card and "not recorded by this export" not in card, card
    page.close()


def test_phone_width_has_no_horizontal_overflow(browser: Any, view: ViewSetup, image_file: Path) -> None:
    page = _open(browser, view, width=390, height=844)
    _explain_file(page, image_file)
    page.locator(".column >> nth=0 >> .card summary").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    panel = page.locator(".column >> nth=0 >> .panel").first.bounding_box()
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 390
    page.screenshot(path=str(view.screenshots / "phone.png"), full_page=True)
    page.close()


def test_raw_scale_and_colormap_redraw_the_maps(browser: Any, view: ViewSetup, image_file: Path) -> None:
    page = _open(browser, view)
    _explain_file(page, image_file)
    served = _canvas(page, 0, "gradcam")
    page.check("input[name=scale][value=raw]")
    assert page.locator("#colormap").input_value() == "jet"
    assert page.locator("#colorbar").is_visible()
    raw = _canvas(page, 0, "gradcam")
    page.select_option("#colormap", "gray")
    gray = _canvas(page, 0, "gradcam")
    assert np.abs(raw - served).max() > 1 and np.abs(gray - raw).max() > 1
    page.fill("#opacity", "0")
    plain = _canvas(page, 0, "gradcam")
    image = _decode_png((view.images / "shape1.png").read_bytes())
    assert np.abs(plain - image).max() <= 1  # 0% opacity: the image alone
    page.close()


def test_view_server_gone_is_said_in_the_page(browser: Any, view: ViewSetup, image_file: Path) -> None:
    from gradcam_serving.view import create_app, running

    with running(create_app(view.models[:1]), port=0) as server:
        setup = ViewSetup(server.url, view.models[:1], view.images, view.screenshots)
        page = _open(browser, setup)
        _explain_file(page, image_file)
    _click_and_wait(page, page.locator(".classes button").nth(1))
    assert "not answering" in page.locator("#error").inner_text()
    page.close()


def _declare_and_read(url: str, length: int) -> tuple[int, dict[str, Any]]:
    """POST headers declaring ``length`` bytes, then read the answer before sending any of them.

    The page refuses an upload above its cap from the header alone and closes the connection; a client
    still writing the body could see that close (a reset) instead of the 413.
    """
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", f"{parts.path}?{parts.query}")
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _post(url: str, data: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_api_bounds(view: ViewSetup) -> None:
    status, body = _declare_and_read(f"{view.url}api/explain?model=0&method=gradcam", 3 * 1024 * 1024)
    assert status == 413 and "up to 2.1 MB" in body["error"]
    status, body = _post(f"{view.url}api/explain?model=0&method=nope", png_bytes(shapes_image(5)))
    assert status == 404 and "gradcam, gradcampp, layercam" in body["error"]
    status, body = _post(f"{view.url}api/explain?model=7&method=gradcam", png_bytes(shapes_image(5)))
    assert status == 404
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{view.url}api/gallery/99", timeout=30)
    assert missing.value.code == 404
