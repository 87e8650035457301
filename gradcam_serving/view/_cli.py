"""``gradcam-serving view``: parse the command line, open the models, serve the page.

Only click is imported here: ``gradcam_serving.cli`` registers this command on every start, and a
wrong flag, a missing folder or a missing ``[view]`` extra must fail before Starlette or TensorFlow
is imported.
"""

from __future__ import annotations

import importlib.util

import click

from gradcam_serving.console import errors_as_exit, quiet_tensorflow, verbose_option, warnings_as_lines

__all__ = ["make_view_command"]

_EXTRA = ("starlette", "uvicorn")


def _check_sources(exports: tuple[str, ...], server: str | None, model: str | None, version: int | None,
                   results: str | None = None) -> None:
    if (server is None) != (model is None):
        raise click.UsageError("--server and --model go together")
    if version is not None and server is None:
        raise click.UsageError("--version needs --server and --model")
    if not exports and server is None and results is None:
        raise click.UsageError("give export folders (BASE/NAME/VERSION), --server HOST:PORT --model NAME, "
                               "or --results DIR")


def _check_extra(results: str | None) -> None:
    missing = [name for name in _EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"the page needs {', '.join(missing)}: pip install 'gradcam-serving[view]'")
    if results is not None and importlib.util.find_spec("pyarrow") is None:
        raise click.ClickException("--results reads Parquet with pyarrow: pip install 'gradcam-serving[beam]'")


def make_view_command() -> click.Command:
    """The ``view`` command, built on demand so that registering it imports click only."""

    @click.command("view")
    @click.argument("exports", nargs=-1, type=click.Path(exists=True, file_okay=False))
    @click.option("--images", type=click.Path(exists=True),
                  help="A folder of JPEG/PNG images, or a CSV/JSONL manifest with a path column: shown as a gallery.")
    @click.option("--results", type=click.Path(exists=True, file_okay=False),
                  help="An explain-batch OUTPUT folder to browse: its rows, failures and per-class mean heatmaps.")
    @click.option("--server", help="HOST:PORT of TF Serving or gradcam-serving serve, to look at a served model.")
    @click.option("--model", help="Model name on --server.")
    @click.option("--version", "model_version", type=click.IntRange(min=0), help="Model version on --server "
                  "(default: the latest).")
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Interface to listen on; 0.0.0.0 lets other machines open the page (and run the models).")
    @click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 picks a free port.")
    @click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
                  help="Largest image file the page accepts.")
    @click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
                  help="Deadline per call to --server (s).")
    @click.option("--no-warmup", is_flag=True, help="Do not run each method once at start (the first image is slower).")
    @verbose_option
    def view(exports: tuple[str, ...], images: str | None, results: str | None, server: str | None, model: str | None,
             model_version: int | None, host: str, port: int, max_upload_mb: float, timeout: float,
             no_warmup: bool, verbose: bool) -> None:
        """A local web page showing what EXPORTS (version folders) or a served model look at in images.

        Drop, paste or pick an image: the top 5 classes, every method's map side by side (click a class
        to explain it), raw or normalised maps on one scale, one column per export to compare versions or
        layers, the model card, and downloads. With --results DIR (alone or with models), browse an
        explain-batch output: rows filtered by class and sorted by score, failures, per-class mean heatmaps.
        Prints the URL and serves until Ctrl-C.
        """
        with errors_as_exit(verbose), warnings_as_lines(), quiet_tensorflow(verbose):
            _check_sources(exports, server, model, model_version, results)
            _check_extra(results)
            from gradcam_serving.view._gallery import read_gallery

            gallery = read_gallery(images) if images else None
            for skipped in gallery.skipped if gallery else ():
                click.echo(f"warning: --images: left out {skipped}", err=True)
            from gradcam_serving.view._results import read_results

            browsed = read_results(results) if results else None
            from gradcam_serving.view._app import create_app
            from gradcam_serving.view._models import open_models
            from gradcam_serving.view._serve import serve_forever, warm_up

            models = open_models(list(exports), server, model, model_version, timeout)
            try:
                app = create_app(models, gallery, max_upload=int(max_upload_mb * 1024 * 1024), results=browsed)
                if not no_warmup:
                    warm_up(models, lambda line: click.echo(f"view: {line}", err=True))
                serve_forever(app, host, port, lambda line: click.echo(line, err=True))
            finally:
                for opened in models:
                    opened.close()

    return view
