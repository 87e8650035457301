"""Fixtures for the view tests: a tiny export with three methods, the view server on a free loopback port,
and headless Chromium (Debian's ``chromium``) driven by Playwright.

The browser is never silently missing in CI: without it these tests fail, unless
``GRADCAM_ALLOW_NO_BROWSER`` is set (a developer machine without Chromium).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from view_pages import ViewSetup, png_bytes, shapes_image

CHROMIUM = os.environ.get("GRADCAM_CHROMIUM", "/usr/bin/chromium")
METHODS = "gradcam,gradcampp,layercam"
LABELS = ["zero", "one", "two", "three"]
MAX_UPLOAD = 2 * 1024 * 1024


def _no_browser(reason: str) -> None:
    if os.environ.get("GRADCAM_ALLOW_NO_BROWSER"):
        pytest.skip(f"{reason} (GRADCAM_ALLOW_NO_BROWSER is set)")
    pytest.fail(f"{reason}: the view tests drive a real browser; install it (apt-get install -y chromium, "
                "pip install playwright) or set GRADCAM_ALLOW_NO_BROWSER=1 to skip them on purpose")


@pytest.fixture(scope="session")
def three_methods_export(tiny_models: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gradcam_serving.exporter import export_model

    base = tmp_path_factory.mktemp("view_models")
    return export_model(tiny_models.hub_classifier, base, "clf3", version=1, methods=METHODS, labels=LABELS).path


@pytest.fixture(scope="session")
def view_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("view_images")
    for seed in range(3):
        (folder / f"shape{seed}.png").write_bytes(png_bytes(shapes_image(seed)))
    (folder / "notes.jpg").write_text("not an image, only text with a .jpg name\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def view(three_methods_export: Path, export_v1: Path, view_images: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewSetup]:
    """The page over two exports (two columns) and the gallery, served from a thread on a free port."""
    from gradcam_serving.view import create_app, open_models, read_gallery, running

    models = open_models([str(three_methods_export), str(export_v1)])
    try:
        app = create_app(models, read_gallery(view_images), max_upload=MAX_UPLOAD)
        with running(app, port=0) as server:
            yield ViewSetup(server.url, models, view_images, tmp_path_factory.mktemp("view_screenshots"))
    finally:
        for model in models:
            model.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _no_browser(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()
