"""A made-up family of methods, added to the signature table and removed again: the tools follow the table.

The family answers a ``saliency`` map, an integer ``votes`` per image and, in the bytes twins, a
``thumbnail_bytes`` PNG: none of the CAM family's outputs but the contract's common ones. ``validate``
checks an export of it, and the client parses its answers from a real server, with no edit to either.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_serving import signatures as sig

FAKE = sig.Family(
    "madeup",
    outputs=(sig.Output("saliency", "float32", ("H", "W"), unit_range=True), sig.Output("votes", "int32")),
    encoded_outputs=(sig.Output("thumbnail_bytes", "string", per_image=True, binary=True),),
    map="saliency",
    description="a family that exists only in this test",
)


@pytest.fixture
def madeup(monkeypatch: pytest.MonkeyPatch):
    """The family and its method ``madeup`` in the table for one test; gone again afterwards."""
    with monkeypatch.context() as patch:
        patch.setitem(sig.FAMILIES, FAKE.name, FAKE)
        patch.setitem(sig.METHOD_FAMILIES, "madeup", FAKE.name)
        yield FAKE
    assert FAKE.name not in sig.FAMILIES and "madeup" not in sig.METHOD_FAMILIES


def test_the_table_derives_the_rows_outputs_from_the_family(madeup):
    table = sig.signature_table(("madeup", "gradcam"))
    row = table[sig.explain_signature("madeup", encoded=True)]
    assert row.family == "madeup" and table[sig.EXPLAIN].family == "madeup"
    assert row.outputs == (*sig.PREDICT_OUTPUTS, sig.METHOD, "saliency", "votes", "thumbnail_bytes")
    assert table[sig.explain_signature("gradcam")].family == sig.CAM_FAMILY
    assert sig.CAM not in table[sig.EXPLAIN_TOPK].outputs and "saliency" in table[sig.EXPLAIN_TOPK].outputs
    assert sig.parse_methods("madeup,gradcam") == ("madeup", "gradcam")


def test_a_binary_output_must_end_in_bytes_for_rest():
    with pytest.raises(ValueError, match="must end in '_bytes'"):
        sig.Output("thumbnail_png", "string", binary=True)


def test_validate_checks_an_export_of_the_made_up_family(madeup, tmp_path):
    from fake_exports import write_fake_export

    from gradcam_serving.exporter import validate_export

    good = {c.name: c for c in validate_export(write_fake_export(tmp_path / "good" / "1", ("madeup",))).checks}
    for name in ("signature contract", "answers of every signature", "heatmaps of every method"):
        assert good[name].ok is True, good[name]
    assert "all 8 signatures" in good["signature contract"].detail

    bad = validate_export(write_fake_export(tmp_path / "bad" / "1", ("madeup",), wrong="explain_bytes_madeup"))
    check = {c.name: c for c in bad.checks}["answers of every signature"]
    assert check.ok is False and check.detail.startswith("explain_bytes_madeup: saliency has shape"), check.detail


def test_validate_names_a_missing_output_of_the_family(madeup, tmp_path, monkeypatch):
    from fake_exports import write_fake_export

    from gradcam_serving.exporter import validate_export

    folder = write_fake_export(tmp_path / "m" / "1", ("madeup",))
    # the same export, judged against a family that also promises a "confidence" output
    with monkeypatch.context() as patch:
        patch.setitem(sig.FAMILIES, FAKE.name, sig.Family(
            FAKE.name, outputs=(*FAKE.outputs, sig.Output("confidence", "float32")), map="saliency"))
        check = {c.name: c for c in validate_export(folder).checks}["signature contract"]
    assert check.ok is False and "'confidence'" in check.detail, check.detail


def test_the_client_reads_the_made_up_family_from_a_real_server(madeup, tmp_path):
    from fake_exports import SIZE, write_fake_export
    from server_harness import start

    from gradcam_serving.client import ExplainClient
    from gradcam_serving.server import ModelConfig

    write_fake_export(tmp_path / "fake" / "1", ("madeup", "gradcam"))
    harness = start((ModelConfig(name="fake", base_path=str(tmp_path / "fake")),))
    try:
        with ExplainClient(f"127.0.0.1:{harness.port}", "fake") as client:
            pixels = np.zeros((2, 5, 6, 3), np.uint8)
            result = client.explain(pixels, method="madeup")
            assert result.family == "madeup" and result.heatmap.shape == (2, 5, 6)
            assert set(result.outputs) == {sig.METHOD, "saliency", "votes"}
            assert result.outputs["votes"].dtype == np.int32 and result.cam is None
            png = tmp_path / "x.png"
            from PIL import Image

            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png)
            encoded = client.explain([png], method="madeup")
            assert encoded.overlay_png == (b"png",) and encoded.heatmap.shape == (1, *SIZE)
            cam = client.explain(pixels, method="gradcam")
            assert cam.family == sig.CAM_FAMILY and set(cam.outputs) == {sig.METHOD, sig.HEATMAP, sig.CAM}
    finally:
        harness.close()
