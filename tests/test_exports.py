"""``gradcam_serving.exports``: what an export holds, read without TensorFlow, as TF Serving would pick it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradcam_serving import signatures as sig
from gradcam_serving.errors import GradcamServingError
from gradcam_serving.exports import NotAnExportError, read_export


def test_reading_an_export_imports_no_tensorflow(export_v1: Path) -> None:
    code = (
        "import sys; from gradcam_serving.exports import read_export; "
        f"c = read_export({str(export_v1)!r}); "
        "print(c.methods, sorted(c.families.items()), c.metadata.contract, len(c.signature_defs)); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'numpy', 'keras')))"
    )
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[0].startswith("('gradcam',) [('gradcam', 'cam')] 2 ")
    assert lines[1] == "[]"


def test_the_metadata_order_gives_the_default_and_the_signatures_come_with_types(export_v1: Path, tmp_path) -> None:
    copy = tmp_path / "1"
    shutil.copytree(export_v1, copy)
    meta = json.loads((copy / sig.METADATA_FILE).read_text())
    contents = read_export(copy)
    assert contents.resolve_methods(None) == (meta["default_method"],) and contents.is_gradcam_serving
    explain = contents.signature_defs[sig.EXPLAIN_BYTES]
    assert set(explain.outputs) == set(contents.signature_table()[sig.EXPLAIN_BYTES].outputs)
    assert contents.tensorflow_version.startswith("2.")
    # an export that does not record its methods' order: the signature names tell, in the table's order
    (copy / sig.METADATA_FILE).unlink()
    bare = read_export(copy)
    assert bare.methods == tuple(sig.exported_methods(bare.signature_defs)) and bare.metadata.contract == 1


def test_tf_servings_rule_the_tag_set_must_be_equal_and_errors_are_tfs(export_v1: Path, tmp_path) -> None:
    with pytest.raises(NotAnExportError, match=r"Could not find meta graph def matching supplied tags: \{ serve gpu \}") as info:
        read_export(export_v1, tags=("serve", "gpu"))
    assert info.value.code.name == "NOT_FOUND"
    with pytest.raises(NotAnExportError, match="Could not find SavedModel .pb or .pbtxt") as info:
        read_export(tmp_path)
    assert info.value.code.name == "NOT_FOUND"
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff not a proto")
    with pytest.raises(NotAnExportError, match="as binary proto") as info:
        read_export(tmp_path)
    assert info.value.code.name == "DATA_LOSS"


def test_an_export_of_a_newer_gradcam_serving_is_refused_by_name(export_v1: Path, tmp_path) -> None:
    from gradcam_serving.cli import main

    for change, named in (({"methods": ["newcam"]}, "method(s) newcam"), ({"contract": 99}, "contract 99")):
        copy = tmp_path / str(len(named)) / "1"
        shutil.copytree(export_v1, copy)
        meta = json.loads((copy / sig.METADATA_FILE).read_text())
        (copy / sig.METADATA_FILE).write_text(json.dumps({**meta, **change}))
        with pytest.raises(GradcamServingError, match=re.escape(f"written by a newer gradcam-serving ({named};")):
            read_export(copy)
        assert main(["inspect", str(copy)]) == 1  # one error line, no traceback
