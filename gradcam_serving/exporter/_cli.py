"""``gradcam-serving inspect``, ``export`` and ``validate``: the exporter's commands.

Importing this module imports click and the signature contract only: every
parameter a value alone can check (a missing model, an unknown method or
colormap, ``--warmup`` names) is refused before TensorFlow is imported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from gradcam_serving import signatures as sig
from gradcam_serving.console import (
    EXIT_FAILED,
    Numbers,
    errors_as_exit,
    progress_steps,
    quiet_tensorflow,
    verbose_option,
    warnings_as_lines,
)

if TYPE_CHECKING:
    from ._export import Inspection
    from ._signatures import Preprocessing

__all__ = ["export_command", "inspect_command", "validate_command"]


class _ModelSource(click.ParamType):
    """A model path that exists, or a TF Hub URL: the exporter's rule, checked before TensorFlow loads."""

    name = "model"
    hub_prefixes = ("http://", "https://", "gs://")  # what the exporter hands to tensorflow_hub unchecked

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = os.fspath(value)
        if text.startswith(self.hub_prefixes) or os.path.exists(text):
            return text
        self.fail(f"model path {text!r} does not exist; expected a SavedModel folder, a .h5 or .keras file, "
                  f"or a TF Hub handle ({', '.join(self.hub_prefixes)})", param, ctx)


class _Methods(click.ParamType):
    """CAM method names, comma-separated, or ``all``: checked against the signature contract's list."""

    name = "methods"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        try:
            sig.parse_methods(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


class _Colormap(click.ParamType):
    """A matplotlib colormap name (matplotlib, not TensorFlow, knows them)."""

    name = "colormap"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        import matplotlib

        if value in matplotlib.colormaps:
            return str(value)
        self.fail(f"unknown matplotlib colormap {value!r}, e.g. 'jet', 'turbo', 'inferno'", param, ctx)


def _model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by inspect and export: how to read the model."""
    options = [
        verbose_option,
        click.option("--grid", type=Numbers(2, int),
                     help="H,W token grid of a vision transformer whose patch grid is not square."),
        click.option("--output-name", "output",
                     help="The class-score output of a model with several outputs (their names are listed "
                          "when it is needed)."),
        click.option("--input-size", type=Numbers(2, int), help="H,W for models that accept any image size."),
    ]
    for option in options:
        command = option(command)
    return command


def _print_export_methods(path: str, as_json: bool) -> bool:
    """List the methods of the gradcam-serving export at ``path``; ``False`` if it is not one (a model to inspect)."""
    from gradcam_serving.exports import NotAnExportError, read_export

    try:
        contents = read_export(path)
    except NotAnExportError:
        return False
    if not contents.is_gradcam_serving:
        return False
    families = contents.families
    if as_json:
        click.echo(json.dumps({"methods": list(contents.methods), "default_method": contents.metadata.default_method,
                               "families": families}))
    else:
        listed = ", ".join(f"{method} ({family})" for method, family in families.items())
        click.echo(f"methods: {listed or 'gradcam (explain only)'}")
    return True


@click.command("inspect")
@click.argument("model", type=_ModelSource())
@_model_options
@click.option("--layer", default="auto", show_default=True, help="Check a layer: warns if no weight feeds it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def inspect_command(model: str, input_size: tuple[int, int] | None, output: str | None, grid: tuple[int, int] | None,
                    verbose: bool, layer: str, as_json: bool) -> None:
    """List the layers Grad-CAM can target in MODEL and mark the automatic choice.

    Given an export (a BASE/NAME/VERSION folder), list the methods it holds instead, the default first,
    with their families (read without TensorFlow).
    """
    with errors_as_exit(verbose):
        if _print_export_methods(model, as_json):
            return
    with errors_as_exit(verbose), warnings_as_lines(), quiet_tensorflow(verbose):
        from ._export import inspect_model

        with progress_steps() as progress:
            progress("Loading the model and probing its feature maps")
            report = inspect_model(model, input_size=input_size, output=output, grid=grid, layer=layer)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    _print_candidates(report)


def _print_candidates(report: Inspection) -> None:
    from rich.console import Console
    from rich.table import Table

    head = "sigmoid (multi-label)" if report.output_is_sigmoid else "softmax" if report.output_is_softmax else "logits"
    gray = ", grayscale" if report.channels == 1 else ""
    table = Table(
        title=f"{report.kind}: input {report.input_size[0]}x{report.input_size[1]}{gray}, "
        f"{report.num_classes} classes, {head}"
    )
    for column in ("", "layer", "op", "shape", "note"):
        table.add_column(column)
    for candidate in report.candidates:
        mark = "auto" if candidate == report.auto else ""
        shape = "x".join("N" if d is None else str(d) for d in candidate.shape)
        table.add_row(mark, candidate.name, candidate.op_type, shape, _note(candidate))
    Console(width=max(Console().width, 120)).print(table)


def _note(candidate: Any) -> str:
    notes = []
    if candidate.is_tokens:
        prefix = f" after {candidate.prefix} prefix" if candidate.prefix else ""
        notes.append(f"tokens, {candidate.grid[0]}x{candidate.grid[1]} grid{prefix}")
    if not candidate.weighted:
        notes.append("preprocessing (no weights)")
    return "; ".join(notes)


@click.command("export")
@click.argument("model", type=_ModelSource())
@click.option("--output", "base", required=True, type=click.Path(file_okay=False), help="Model base folder (BASE).")
@click.option("--name", required=True, help="Model name; the export goes to BASE/NAME/VERSION.")
@click.option("--version", type=click.IntRange(min=0), help="Version number (default: the next integer).")
@click.option("--layer", default="auto", show_default=True, help="Target layer's friendly name, or 'auto'.")
@click.option("--methods", type=_Methods(), default="gradcam", show_default=True,
              help="CAM methods, comma-separated, or 'all' (each gets explain_<method>); the first is the default.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False), help="Text file with one class label per line.")
@click.option("--input-range", type=Numbers(2), help="LO,HI the model expects pixels in (default 0,1).")
@click.option("--mean", type=Numbers(3), help="Per-channel mean R,G,B on the 0..255 scale (with --std).")
@click.option("--std", type=Numbers(3), help="Per-channel std R,G,B on the 0..255 scale (with --mean).")
@_model_options
@click.option(
    "--scores",
    type=click.Choice(sig.SCORE_MODES),
    default="auto",
    show_default=True,
    help="What the model outputs; auto treats a final softmax as probabilities, a final sigmoid as "
         "multi-label (sigmoid probabilities, Grad-CAM on the pre-sigmoid logit), anything else as logits; "
         "sigmoid forces multi-label.",
)
@click.option("--max-pixels", type=click.IntRange(min=1), default=4096 * 4096, show_default=True,
              help="Largest image (height x width) the predict_bytes/explain_bytes signatures decode.")
@click.option("--colormap", type=_Colormap(), default="jet", show_default=True, help="matplotlib colormap of explain_bytes' overlay_png.")
@click.option("--warmup", default=sig.WARMUP_ALL, show_default=True,
              help="Signatures that get a TF Serving warmup record: all, default (the ones that name no method), "
                   "none, or names separated by commas. Each record adds a few seconds to every load; a "
                   "signature without one pays them on its first request.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing version folder. A running TF Serving keeps the version it already "
                   "loaded; give running servers a new version number instead.")
def export_command(
    model: str, base: str, name: str, version: int | None, layer: str, methods: str, labels: str | None,
    input_range: tuple[float, float] | None, mean: tuple[float, float, float] | None,
    std: tuple[float, float, float] | None, input_size: tuple[int, int] | None, output: str | None,
    grid: tuple[int, int] | None, verbose: bool, scores: str, max_pixels: int, colormap: str, warmup: str,
    overwrite: bool,
) -> None:
    """Export MODEL (hub handle or folder, .h5, .keras, SavedModel) with predict and explain signatures.

    Grayscale models (1 input channel) keep the same contract: RGB uint8 images, converted in the graph
    with the ITU-R BT.601 weights of tf.image.rgb_to_grayscale.
    """
    _check_preprocessing(input_range, mean, std)
    _check_warmup(warmup, methods)
    with errors_as_exit(verbose), warnings_as_lines(), quiet_tensorflow(verbose):
        from ._export import export_model, read_labels

        with progress_steps() as progress:
            result = export_model(
                model, base, name, version=version, layer=layer, methods=methods,
                labels=read_labels(labels) if labels else None, preprocessing=_preprocessing(input_range, mean, std),
                scores=scores, input_size=input_size, output=output, grid=grid, overwrite=overwrite,
                max_pixels=max_pixels, colormap=colormap, warmup=warmup, progress=progress,
            )
    click.echo(
        f"exported {result.kind} with {', '.join(result.methods)} at {result.layer.name} "
        f"({result.num_classes} classes, variables {result.size_ratio:.2f}x source weights)",
        err=True,
    )
    click.echo(str(result.path))


def _check_warmup(warmup: str, methods: str) -> None:
    """``--warmup`` names signatures this export will have (checked before TensorFlow is imported)."""
    try:
        sig.warmup_signatures(warmup, sig.parse_methods(methods))
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("warmup: "), param_hint="'--warmup'") from None


def _check_preprocessing(input_range: object, mean: object, std: object) -> None:
    if input_range is not None and (mean is not None or std is not None):
        raise click.UsageError("give either --input-range or --mean/--std, not both")
    if (mean is None) != (std is None):
        raise click.UsageError("--mean and --std go together")


def _preprocessing(
    input_range: tuple[float, float] | None, mean: tuple[float, float, float] | None,
    std: tuple[float, float, float] | None,
) -> Preprocessing:
    """The exporter's record (importing it imports TensorFlow: call inside ``quiet_tensorflow``)."""
    from ._signatures import Preprocessing

    if mean is not None:
        return Preprocessing(input_range=None, mean=mean, std=std)
    return Preprocessing(input_range=input_range or (0.0, 1.0))


def _serving_version(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A TensorFlow release whose op registry is recorded (checked before the slow load)."""
    from gradcam_serving.tf_releases import unknown_release_message

    problem = None if value is None else unknown_release_message(value)
    if problem is not None:
        raise click.BadParameter(problem, ctx, param)
    return value


@click.command("validate")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@verbose_option
@click.option("--serving-version", callback=_serving_version, metavar="V",
              help="Also check every op and attribute against TF Serving V's TensorFlow (2.15 ... 2.21).")
@click.option("--sanity", is_flag=True, help="Also run the model-parameter randomisation test on the maps.")
@click.option("--images", "sanity_images", type=click.Path(exists=True),
              help="Sample images (folder or manifest) for --sanity; default: the export's warmup images.")
@click.option("--threshold", type=click.FloatRange(-1, 1), default=0.5, show_default=True,
              help="--sanity fails when the maps' rank correlation stays above this once randomised.")
def validate_command(
    export_dir: str, verbose: bool, serving_version: str | None, sanity: bool, sanity_images: str | None,
    threshold: float,
) -> None:
    """Check that TF Serving can load and run EXPORT_DIR (a version folder); exit 0 on pass, 1 on fail."""
    with quiet_tensorflow(verbose):
        passed = _validate(export_dir, serving_version, sanity, sanity_images, threshold, verbose)
    click.echo("PASS" if passed else "FAIL")
    if not passed:
        raise click.exceptions.Exit(EXIT_FAILED)


def _validate(
    export_dir: str, serving_version: str | None, sanity: bool, sanity_images: str | None, threshold: float,
    verbose: bool,
) -> bool:
    from ._validate import validate_export

    report = validate_export(export_dir, serving_version)
    click.echo(f"validating {report.export_dir}")
    for name, io in report.signatures.items():
        click.echo(f"  signature {name}")
        for line in io["inputs"]:
            click.echo(f"    in   {line}")
        for line in io["outputs"]:
            click.echo(f"    out  {line}")
    for check in report.checks:
        mark = {True: "PASS", False: "FAIL", None: "WARN"}[check.ok]
        click.echo(f"  [{mark}] {check.name}: {check.detail}")
    passed = report.passed
    if sanity and passed:
        with errors_as_exit(verbose):
            from gradcam_serving.evaluate import run_sanity

            sane = run_sanity(export_dir, sanity_images, threshold)
        click.echo(f"  [{'PASS' if sane else 'FAIL'}] sanity: maps {'change' if sane else 'barely change'} "
                   f"when the weights are randomised (rank correlation threshold {threshold})")
        passed = sane
    return passed
