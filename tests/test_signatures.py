"""The contract's plain-Python helpers: method lists and warmup choices, checked before TensorFlow loads."""

from __future__ import annotations

import pytest

from gradcam_serving import signatures as sig


def test_parse_methods_dedupes_keeps_the_default_first_and_names_every_unknown():
    assert sig.parse_methods("layercam, gradcam,layercam") == ("layercam", "gradcam")
    assert sig.parse_methods(["eigencam"]) == ("eigencam",)
    assert sig.parse_methods("all") == sig.METHODS
    with pytest.raises(ValueError, match=r"unknown method\(s\) 'scorecam', 'gradcam\+\+'; valid methods: .*or 'all'"):
        sig.parse_methods("gradcam,scorecam,gradcam++")
    with pytest.raises(ValueError, match="no method named"):
        sig.parse_methods(" , ")


def test_warmup_all_is_every_signature_and_default_the_ones_without_a_method():
    methods = ("layercam", "gradcam")
    every = sig.warmup_signatures("all", methods)
    assert set(every) == {sig.SERVING_DEFAULT, *sig.signature_table(methods)}
    assert sig.warmup_signatures("default", methods) == (
        "serving_default", "predict", "predict_bytes", "explain", "explain_bytes", "explain_topk", "explain_topk_bytes",
    )
    assert sig.warmup_signatures("default", methods, topk=False) == (
        "serving_default", "predict", "predict_bytes", "explain", "explain_bytes",
    )
    assert sig.warmup_signatures("none", methods) == ()


def test_warmup_names_keep_the_table_order_and_refuse_what_the_export_lacks():
    methods = ("gradcam", "eigencam")
    assert sig.warmup_signatures(" explain_eigencam,predict ", methods) == ("predict", "explain_eigencam")
    with pytest.raises(ValueError, match=r"'explain_layercam' is not a signature of this export; give all, default"):
        sig.warmup_signatures("predict,explain_layercam", methods)
    with pytest.raises(ValueError, match=r"'explain_topk' is not a signature"):
        sig.warmup_signatures("explain_topk", methods, topk=False)
    with pytest.raises(ValueError, match="no signature named"):
        sig.warmup_signatures(",", methods)


def test_the_contract_module_imports_no_tensorflow():
    source = open(sig.__file__, encoding="utf-8").read()
    assert "import tensorflow" not in source and "import numpy" not in source


def test_resolve_methods_is_the_one_resolver_of_method_names():
    held = ("layercam", "gradcam")
    assert sig.resolve_methods(None, held, default="gradcam") == ("gradcam",)
    assert sig.resolve_methods(None, ("layercam",)) == ("layercam",)
    # several methods and no known default: the plain explain signature computes the default
    assert sig.resolve_methods([], held) == (sig.DEFAULT_METHOD,)
    assert sig.resolve_methods("all", held) == held
    assert sig.resolve_methods("gradcam, layercam,gradcam", held) == ("gradcam", "layercam")
    assert sig.resolve_methods([sig.DEFAULT_METHOD], held) == (sig.DEFAULT_METHOD,)
    # an export made before explain_<method>: only its default
    assert sig.resolve_methods("all", ()) == (sig.DEFAULT_METHOD,)
    with pytest.raises(ValueError, match=r"'eigencam' not exported; the export holds: layercam, gradcam"):
        sig.resolve_methods(["eigencam"], held)


def test_the_default_placeholder_names_the_plain_explain_signature():
    assert sig.explain_signature(sig.DEFAULT_METHOD) == sig.EXPLAIN
    assert sig.explain_signature(sig.DEFAULT_METHOD, encoded=True) == sig.EXPLAIN_BYTES
    assert sig.DEFAULT_METHOD not in sig.METHODS
