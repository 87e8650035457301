"""``load_samples``: folders and manifests as docs/evaluate.md writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradcam_serving.evaluate import load_samples


def _photos(folder: Path) -> None:
    folder.mkdir()
    for i, name in enumerate(("astronaut.jpg", "coffee.png")):
        Image.fromarray(np.full((8, 10, 3), 40 * i, np.uint8)).save(folder / name)


@pytest.mark.parametrize("given", ["photos/", "photos", "./photos"])
def test_a_relative_folder_is_read_from_where_it_is(given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _photos(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    samples = load_samples(given)
    assert [s.name for s in samples] == ["astronaut.jpg", "coffee.png"]
    assert samples[0].image.shape == (8, 10, 3)


def test_an_absolute_folder_and_a_relative_manifest_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _photos(tmp_path / "photos")
    (tmp_path / "photos" / "list.csv").write_text("path,label\nastronaut.jpg,1\n")
    assert len(load_samples(tmp_path / "photos")) == 2
    monkeypatch.chdir(tmp_path)
    (only,) = load_samples("photos/list.csv")
    assert only.name == "astronaut.jpg" and only.label == 1
