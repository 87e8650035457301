"""An image folder with a file that is not an image: scored without it, the file named; ``--strict`` refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gradcam_serving.cli import main
from gradcam_serving.evaluate import load_samples

_BROKEN = "not an image Pillow can read"


def _folder(folder: Path, broken: tuple[str, ...] = ("broken.jpg",), readable: int = 2) -> Path:
    folder.mkdir()
    for i in range(readable):
        Image.fromarray(np.full((8, 10, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    for name in broken:
        (folder / name).write_bytes(b"text, not pixels")
    return folder


def test_unreadable_files_are_left_out_and_named_with_their_reason(tmp_path: Path) -> None:
    photos = _folder(tmp_path / "photos", ("broken.jpg", "cut.png"))
    (photos / "list.csv").write_text("path\n0.png\nmissing.png\n")
    samples = load_samples(photos)
    assert [s.name for s in samples] == ["0.png", "1.png"]
    assert [(Path(s.path).name, s.reason[:len(_BROKEN)]) for s in samples.skipped] == [
        ("broken.jpg", _BROKEN), ("cut.png", _BROKEN)]
    (only,) = load_samples(photos / "list.csv").skipped
    assert only.path == str(photos / "missing.png") and only.reason == "No such file or directory"


def test_strict_refuses_naming_every_unreadable_file(tmp_path: Path) -> None:
    photos = _folder(tmp_path / "photos", ("broken.jpg", "cut.png"))
    with pytest.raises(ValueError, match="2 of the 4 images .* could not be read") as refused:
        load_samples(photos, strict=True)
    assert str(photos / "broken.jpg") in str(refused.value) and str(photos / "cut.png") in str(refused.value)
    assert len(load_samples(_folder(tmp_path / "fine", ()), strict=True)) == 2


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"none of the 2 images .* could be read: .*a\.jpg: not an image"):
        load_samples(_folder(tmp_path / "photos", ("a.jpg", "b.jpg"), readable=0))


@pytest.mark.slow
@pytest.mark.parametrize("runner", [[], ["--runner", "DirectRunner"]], ids=["in-process", "beam"])
def test_evaluate_scores_the_rest_and_names_the_file_under_the_table_and_in_json(
    pool_and_flatten: Any, runner: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pool_and_flatten.photos.parent)
    code = main(["evaluate", str(pool_and_flatten.flattened), "--images", "photos/", "--steps", "4",
                 "--method", "gradcam", "--json", str(tmp_path / "out.json"), *runner])
    out = capsys.readouterr().out
    assert code == 0
    assert "3 images" in out and "gradcam" in out
    assert "skipped 1 unreadable image(s), not scored: photos/broken.jpg: not an image" in " ".join(out.split())
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["settings"]["images"] == 3 and len(document["results"][0]["per_image"]) == 3
    assert document["skipped"] == [{"path": "photos/broken.jpg", "reason": document["skipped"][0]["reason"]}]
    assert document["skipped"][0]["reason"].startswith(_BROKEN)


@pytest.mark.slow
def test_evaluate_strict_exits_1_naming_the_file(pool_and_flatten: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", str(pool_and_flatten.flattened), "--images", str(pool_and_flatten.photos), "--strict"])
    assert code == 1
    err = capsys.readouterr().err
    assert "1 of the 4 images" in err and f"{pool_and_flatten.photos / 'broken.jpg'}: not an image" in err
