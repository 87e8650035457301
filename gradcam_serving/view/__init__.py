"""``gradcam-serving view``: a local web page that shows what a model looks at, for exports or a served model.

Public API::

    from gradcam_serving.view import create_app, open_models, running

    models = open_models(["models/flowers/1", "models/flowers/2"])   # one page column each
    with running(create_app(models), port=0) as server:
        print(server.url)

    create_app([], results=read_results("explanations"))   # an explain-batch output folder alone

The page and its assets ship in the package (no CDN, no build step). Needs the ``[view]`` extra
(Starlette, uvicorn); importing this package imports only click until one of the names below the
command is used, so the CLI can register the command cheaply.
"""

from gradcam_serving.lazy import lazy_module_attributes
from gradcam_serving.view._cli import make_view_command

__all__ = [
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

_LAZY = {
    "COLORMAPS": "_app",
    "DEFAULT_MAX_UPLOAD": "_app",
    "create_app": "_app",
    "Answer": "_models",
    "ExportModel": "_models",
    "ServedModel": "_models",
    "open_models": "_models",
    "Gallery": "_gallery",
    "read_gallery": "_gallery",
    "Results": "_results",
    "read_results": "_results",
    "ViewError": "_errors",
    "ViewServer": "_serve",
    "running": "_serve",
}


__getattr__, __dir__ = lazy_module_attributes(__name__, _LAZY)
