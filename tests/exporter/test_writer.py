"""Version folders: atomic, numbered, never silently overwritten."""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_serving.errors import ServingCheckError, VersionExistsError
from gradcam_serving.exporter import _export, export_model, run_like_tf_serving
from gradcam_serving.exporter._writer import existing_versions, write_version


def _children(folder):
    return sorted(p.name for p in folder.iterdir())


def test_versions_count_up_and_existing_ones_are_kept(tiny_models, tmp_path):
    first = export_model(tiny_models.hub_classifier, tmp_path, "clf")
    second = export_model(tiny_models.hub_classifier, tmp_path, "clf")
    assert (first.version, second.version) == (1, 2)
    assert _children(tmp_path / "clf") == ["1", "2"]
    with pytest.raises(VersionExistsError, match="already exists; pass --overwrite"):
        export_model(tiny_models.hub_classifier, tmp_path, "clf", version=1)
    assert _children(tmp_path / "clf") == ["1", "2"]


def test_overwrite_replaces_the_version(tiny_models, tmp_path):
    export_model(tiny_models.hub_classifier, tmp_path, "clf", version=7, labels=["a", "b", "c", "d"])
    export_model(tiny_models.hub_classifier, tmp_path, "clf", version=7, overwrite=True)
    assert _children(tmp_path / "clf") == ["7"]
    images = np.zeros((1, 48, 48, 3), np.uint8)
    out = run_like_tf_serving(tmp_path / "clf" / "7", {"predict": {"images": images}})["predict"]
    assert out["label"][0] == str(out["class_index"][0]).encode()  # labels of the second export


def test_failed_check_leaves_nothing_behind(tiny_models, tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise ServingCheckError("simulated: TF Serving could not run the export")

    monkeypatch.setattr(_export, "verify_export", broken)
    with pytest.raises(ServingCheckError, match="simulated"):
        export_model(tiny_models.hub_classifier, tmp_path, "clf")
    assert _children(tmp_path / "clf") == []


def test_existing_versions_reads_numbers_like_tf_serving(tmp_path):
    for name in ("1", "00000123", "1.tmp", ".tmp-2", "abc"):
        (tmp_path / name).mkdir()
    (tmp_path / "9").write_text("a file, not a version")
    assert existing_versions(tmp_path) == [1, 123]


@pytest.mark.parametrize("name", [pytest.param("", id="empty"), pytest.param("a/b", id="slash"), pytest.param("..", id="dotdot")])
def test_bad_model_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="plain folder name"):
        write_version(tmp_path, name, lambda folder: folder.mkdir())


def test_variables_stay_variables_and_size_stays_close_to_the_source(tiny_models, tmp_path):
    result = export_model(tiny_models.hub_classifier, tmp_path, "clf")
    source = sum(p.stat().st_size for p in (tiny_models.hub_classifier / "variables").iterdir())
    export = sum(p.stat().st_size for p in (result.path / "variables").iterdir())
    assert export <= 1.05 * source
    assert result.variables_bytes == export
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((result.path / "saved_model.pb").read_bytes())
    biggest_const = max(
        (n.attr["value"].tensor.ByteSize() for f in saved.meta_graphs[0].graph_def.library.function for n in f.node_def if n.op == "Const"),
        default=0,
    )
    kernel_bytes = 3 * 3 * 8 * 16 * 4
    assert biggest_const < kernel_bytes, "a weight was frozen into a constant"


def test_only_plain_digit_folders_are_versions(tmp_path):
    for name in ("01", "+1", "1_0", "2"):
        (tmp_path / name).mkdir()
    assert existing_versions(tmp_path) == [1, 2]


def test_labels_file_with_a_byte_order_mark(tmp_path):
    from gradcam_serving.exporter import read_labels

    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffcat\ndog\n\n".encode("utf-8"))
    assert read_labels(path) == ["cat", "dog"]
