"""The overlay PNG over TF Serving's REST API, asked for with a plain JSON request, as ``curl`` would send it.

TF Serving's REST API base64-encodes a string output (``{"b64": ...}``) only when its alias ends in
``_bytes``; the overlay is ``overlay_png_bytes`` for that reason, and here it comes back as a PNG that
decodes to the image's own size.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from gradcam_e2e import MODEL, local_server
from gradcam_serving import signatures as sig


def _jpeg(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (height, width, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def test_rest_callers_get_a_decodable_overlay_png(export_v1: Path) -> None:
    body = json.dumps({
        "signature_name": sig.EXPLAIN_BYTES,
        "instances": [{"image_bytes": {"b64": base64.b64encode(_jpeg(45, 30)).decode()}, "class_index": -1}],
    }).encode()
    with local_server(export_v1.parent, rest_api_port=0) as served:
        request = urllib.request.Request(f"http://127.0.0.1:{served.server.rest_port}/v1/models/{MODEL}:predict",
                                         data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            (row,) = json.loads(response.read())["predictions"]
    overlay = row[sig.OVERLAY_PNG]
    assert set(overlay) == {"b64"}, overlay
    png = base64.b64decode(overlay["b64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size == (45, 30)
    assert row[sig.METHOD] == "gradcam" and len(row[sig.HEATMAP]) > 0
