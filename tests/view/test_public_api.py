"""The public surface of ``gradcam_serving.view`` is pinned, and every lazily loaded name resolves."""

from __future__ import annotations

import gradcam_serving.view as view


def test_all_is_pinned_and_every_name_resolves():
    assert view.__all__ == [
        "COLORMAPS",
        "DEFAULT_MAX_UPLOAD",
        "Answer",
        "ExportModel",
        "Gallery",
        "Results",
        "ServedModel",
        "ViewError",
        "ViewServer",
        "create_app",
        "make_view_command",
        "open_models",
        "read_gallery",
        "read_results",
        "running",
    ]
    # Each access loads the name's home module: a name listed here but missing there fails.
    assert all(hasattr(view, name) for name in view.__all__)
