"""The ASGI app behind ``gradcam-serving view``: the page, its assets, and a small JSON API.

The page sends the image file's bytes as they are to ``POST /api/explain`` once per model column and
method; nothing the user sends is written to disk, and a body above the upload cap is refused while
it is read. Session runs block, so they go to Starlette's thread pool. Every failure is answered as
``{"error": sentence}`` and logged as one line; the page shows the sentence and keeps working.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ._errors import ViewError
from ._gallery import Gallery
from ._models import Answer, ViewModel

if TYPE_CHECKING:
    from ._results import Results

__all__ = ["COLORMAPS", "DEFAULT_MAX_UPLOAD", "create_app"]

STATIC = Path(__file__).with_name("static")
DEFAULT_MAX_UPLOAD = 20 * 1024 * 1024
COLORMAPS = ("jet", "turbo", "viridis", "inferno", "magma", "plasma", "cividis", "gray")
"""matplotlib colormaps the page can redraw maps with; the served overlay keeps the export's own."""
TOP = 5

log = logging.getLogger("gradcam_serving.view")

Endpoint = Callable[[Request], Awaitable[Response]]


def _array(values: np.ndarray | None) -> dict[str, Any] | None:
    """A float map as base64 little-endian float32 with its shape: compact, and exact for the hover readout."""
    if values is None:
        return None
    values = np.ascontiguousarray(values, dtype="<f4")
    return {"shape": list(values.shape), "data": base64.b64encode(values.tobytes()).decode("ascii"),
            "max": float(values.max()) if values.size else 0.0}


def answer_json(model: ViewModel, answer: Answer) -> dict[str, Any]:
    probabilities = np.asarray(answer.probabilities, dtype=np.float64)
    top = np.argsort(-probabilities, kind="stable")[:TOP]
    return {
        "method": answer.method, "signature": answer.signature, "class_index": answer.class_index,
        "label": answer.label, "score": answer.score, "seconds": answer.seconds,
        "top": [{"class_index": int(i), "label": model.label_of(int(i)) if int(i) != answer.class_index
                 else answer.label, "probability": float(probabilities[i])} for i in top],
        "probabilities": [float(p) for p in probabilities],
        "heatmap": _array(answer.heatmap), "cam": _array(answer.cam),
        "overlay_png": base64.b64encode(answer.overlay_png).decode("ascii"),
    }


def _colormap_tables() -> dict[str, str]:
    """Each colormap as 256 RGB triplets (base64 bytes), computed by matplotlib once."""
    import matplotlib

    ramp = np.linspace(0.0, 1.0, 256)
    return {
        name: base64.b64encode(np.round(matplotlib.colormaps[name](ramp)[:, :3] * 255).astype(np.uint8).tobytes())
        .decode("ascii")
        for name in COLORMAPS
    }


def _failure(request: Request, status: int, message: str) -> JSONResponse:
    log.warning("%s %s -> %d: %s", request.method, request.url.path, status, message)
    return JSONResponse({"error": message}, status_code=status)


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Every failure answered as JSON and logged as one line (Starlette's 500 handler re-raises, with a trace)."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ViewError as exc:
            return _failure(request, exc.status, exc.message)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception as exc:  # noqa: BLE001 - the page and the log get one line, the server keeps serving
            return _failure(request, 500, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")

    return run


async def _read_capped(request: Request, cap: int) -> bytes:
    """The request body, refused as soon as it passes ``cap`` bytes (never held whole, never on disk)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise ViewError(413, f"the file is {int(declared) / 1e6:.1f} MB; this page accepts up to {cap / 1e6:.1f} MB "
                             "(gradcam-serving view --max-upload-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ViewError(413, f"the file is over {cap / 1e6:.1f} MB, the most this page accepts "
                                 "(gradcam-serving view --max-upload-mb)")
        chunks.append(chunk)
    if not size:
        raise ViewError(400, "the request holds no file")
    return b"".join(chunks)


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None and default is not None:
        return default
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ViewError(400, f"query parameter {name!r} must be an integer; got {text!r}") from None


class _Api:
    """The endpoints, over the models (one column each) and the optional gallery."""

    def __init__(self, models: Sequence[ViewModel], gallery: Gallery | None, max_upload: int,
                 results: Results | None = None) -> None:
        self.models, self.gallery, self.max_upload, self.results = list(models), gallery, max_upload, results
        self._colormaps = _colormap_tables()

    def model(self, request: Request) -> ViewModel:
        index = _int_param(request, "model")
        if not 0 <= index < len(self.models):
            raise ViewError(404, f"no model column {index} (there are {len(self.models)})")
        return self.models[index]

    async def config(self, request: Request) -> Response:
        cards = await run_in_threadpool(lambda: [model.card() for model in self.models])
        return JSONResponse({
            "models": [{"id": i, "name": m.name, "methods": m.methods, "card": card}
                       for i, (m, card) in enumerate(zip(self.models, cards))],
            "colormaps": self._colormaps, "max_upload": self.max_upload,
            "gallery": [] if self.gallery is None else [
                {"index": i, "name": item.name, "label": item.label} for i, item in enumerate(self.gallery.items)],
            "results": self.results is not None,
        })

    def _results(self) -> Results:
        if self.results is None:
            raise ViewError(404, "no results: start the page with --results DIR (an explain-batch output folder)")
        return self.results

    async def results_listing(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self._results().listing))

    async def result_cam(self, request: Request) -> Response:
        return JSONResponse(self._results().cam(int(request.path_params["index"])))

    async def result_overlay(self, request: Request) -> Response:
        data = await run_in_threadpool(self._results().overlay, int(request.path_params["index"]))
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def explain(self, request: Request) -> Response:
        model = self.model(request)
        method = request.query_params.get("method", "")
        class_index = _int_param(request, "class_index", -1)
        data = await _read_capped(request, self.max_upload)
        answer = await run_in_threadpool(model.explain, data, method, class_index)
        return JSONResponse(answer_json(model, answer))

    async def validate(self, request: Request) -> Response:
        model = self.model(request)
        run = getattr(model, "validate", None)
        if run is None:
            raise ViewError(400, f"{model.name} is a served model; validate checks export folders")
        return JSONResponse(await run_in_threadpool(run))

    async def gallery_image(self, request: Request) -> Response:
        if self.gallery is None:
            raise ViewError(404, "no gallery: start the page with --images DIR|MANIFEST")
        item, data = self.gallery.read(int(request.path_params["index"]))
        kind = "image/png" if item.path.suffix.lower() == ".png" else "image/jpeg"
        return Response(data, media_type=kind, headers={"Cache-Control": "no-store"})


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


def create_app(models: Sequence[ViewModel], gallery: Gallery | None = None, *,
               max_upload: int = DEFAULT_MAX_UPLOAD, results: Results | None = None) -> Starlette:
    """The view app over already opened models (one page column each, in order) and/or batch results."""
    if not models and results is None:
        raise ValueError("the page needs at least one model (export folders, or --server with --model) "
                         "or --results DIR")
    api = _Api(models, gallery, max_upload, results)
    routes = [
        Route("/", _index),
        Route("/api/config", _guarded(api.config)),
        Route("/api/explain", _guarded(api.explain), methods=["POST"]),
        Route("/api/validate", _guarded(api.validate), methods=["POST"]),
        Route("/api/gallery/{index:int}", _guarded(api.gallery_image)),
        Route("/api/results", _guarded(api.results_listing)),
        Route("/api/results/{index:int}/cam", _guarded(api.result_cam)),
        Route("/api/results/{index:int}/overlay", _guarded(api.result_overlay)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)
