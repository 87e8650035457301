"""``gradcam-serving predict`` and ``explain``: the thin client's commands.

Like the rest of the client, this module never imports TensorFlow (nor numpy
at import time): the commands work where only the ``[client]`` dependencies are
installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gradcam_serving import signatures as sig
from gradcam_serving.console import errors_as_exit, quiet_tensorflow

if TYPE_CHECKING:
    from ._client import ExplainClient
    from ._types import Explanation, Prediction

__all__ = ["explain_command", "predict_command"]


def _client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by the thin-client commands."""
    command = click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))(command)
    command = click.option("--timeout", type=float, default=30.0, show_default=True, help="Deadline per call (s).")(command)
    command = click.option("--version", "model_version", type=int, help="Model version (default: latest).")(command)
    command = click.option("--model", required=True, help="Model name on the server.")(command)
    command = click.option("--server", required=True, help="HOST:PORT of TF Serving or gradcam-serving serve.")(command)
    return command


def _client(server: str, model: str, version: int | None, timeout: float) -> ExplainClient:
    from ._client import ExplainClient
    from ._config import Timeout

    return ExplainClient(server, model, version=version, timeout=Timeout(timeout))


def _rows(result: Prediction, images: tuple[str, ...]) -> Iterator[str]:
    for i, image in enumerate(images):
        yield f"{image}\tclass={int(result.class_index[i])}\tlabel={result.label[i]}\tscore={float(result.score[i]):.4f}"


@click.command("predict")
@_client_options
def predict_command(server: str, model: str, model_version: int | None, timeout: float, images: tuple[str, ...]) -> None:
    """Ask SERVER for the class of each IMAGE (one request per image)."""
    with errors_as_exit(), quiet_tensorflow(), _client(server, model, model_version, timeout) as client:
        for image in images:
            for row in _rows(client.predict(image), (image,)):
                click.echo(row)


@click.command("explain")
@_client_options
@click.option("--class-index", type=int, default=-1, show_default=True, help="Class to explain; -1 = predicted.")
@click.option("--method", help="CAM method the export holds (see 'inspect EXPORT'); default: the export's default.")
@click.option("--top-k", type=click.IntRange(min=1),
              help="Explain the K most probable classes with the export's default method (one overlay each).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder for the overlay PNGs, named IMAGE_METHOD.png (IMAGE_METHOD_topR.png with --top-k), "
                   "METHOD being the method that ran.")
def explain_command(server: str, model: str, model_version: int | None, timeout: float, images: tuple[str, ...],
                    class_index: int, method: str | None, top_k: int | None, out_dir: str) -> None:
    """Ask SERVER what the model sees in each IMAGE; write Grad-CAM overlay PNGs.

    Files go to the explain_bytes signature, so the overlay is drawn by the server; on exports
    without it the client falls back to explain and the overlay is drawn here.
    """
    folder = Path(out_dir)
    with errors_as_exit(), quiet_tensorflow():
        _check_top_k_options(top_k, method, class_index)
        with _client(server, model, model_version, timeout) as client:
            names = _MethodNames(client, method)
            folder.mkdir(parents=True, exist_ok=True)
            for image in images:
                if top_k is not None:
                    _explain_top_k(client, image, top_k, folder, names)
                else:
                    _explain_one(client, image, class_index, method, folder, names)


def _explain_one(client: ExplainClient, image: str, class_index: int, method: str | None, folder: Path,
                 names: _MethodNames) -> None:
    from ._overlay import save_overlay

    result = client.explain(image, class_index, method=method)
    overlay = folder / f"{Path(image).stem}_{names.of(result)}.png"
    if result.overlay_png:
        overlay.write_bytes(result.overlay_png[0])
    else:
        save_overlay(image, result.heatmap[0], overlay)
    for row in _rows(result, (image,)):
        click.echo(f"{row}\toverlay={overlay}")


def _explain_top_k(client: ExplainClient, image: str, top_k: int, folder: Path, names: _MethodNames) -> None:
    """One overlay (``IMAGE_METHOD_top<rank>.png``) and one line per class, most probable first."""
    from ._overlay import save_overlay

    result = client.explain(image, top_k=top_k)
    stem = f"{Path(image).stem}_{names.of(result)}"
    for rank, (index, label, score) in enumerate(zip(result.class_index[0], result.label[0], result.score[0]), 1):
        overlay = folder / f"{stem}_top{rank}.png"
        save_overlay(image, result.heatmap[0, rank - 1], overlay)
        click.echo(f"{image}\trank={rank}\tclass={int(index)}\tlabel={label}\tscore={float(score):.4f}\toverlay={overlay}")


class _MethodNames:
    """The method each answer ran, for overlay file names.

    The one asked for (``--method``); else the answer's own ``method`` output (exports that name it);
    else what the export's metadata allows: its single method, or
    :data:`~gradcam_serving.signatures.DEFAULT_METHOD` when it holds several (the metadata does not
    say which is the default) or none. The metadata is read once, and only when needed.
    """

    def __init__(self, client: ExplainClient, asked: str | None) -> None:
        self._client = client
        self._asked = asked
        self._fallback: str | None = None

    def of(self, result: Explanation) -> str:
        if self._asked is not None:
            return self._asked
        if result.method and result.method[0]:
            return result.method[0]
        if self._fallback is None:
            exported = sig.exported_methods(self._client.metadata().signatures)
            self._fallback = sig.resolve_methods(None, exported)[0]
        return self._fallback


def _check_top_k_options(top_k: int | None, method: str | None, class_index: int) -> None:
    """``--top-k`` runs ``explain_topk``, which computes the default method for the classes it picks itself.

    Options it cannot honour are refused rather than silently dropped (the client refuses them too).
    """
    if top_k is None:
        return
    if method is not None:
        raise ValueError(
            f"--method {method} and --top-k {top_k} cannot be combined: --top-k explains the k most probable "
            "classes with the export's default method (explain_topk); drop --method, or drop --top-k to explain "
            "the predicted class (or --class-index) with that method"
        )
    if class_index != -1:
        raise ValueError(
            f"--class-index {class_index} and --top-k {top_k} cannot be combined: --top-k picks the k most "
            "probable classes itself; drop one of them"
        )
