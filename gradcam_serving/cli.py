"""The ``gradcam-serving`` command line.

Commands import TensorFlow only when they need it, so ``predict`` and
``explain`` (thin-client commands) start fast and work without TensorFlow, and
everything a parameter alone can tell (a missing file, an unknown method or
colormap) is refused before TensorFlow is imported. Every command runs inside
:func:`~gradcam_serving.console.quiet_tensorflow`, so TensorFlow's log lines
stay out of the terminal unless ``--verbose``. Every failure ends in one
``error: ...`` line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from gradcam_serving import signatures as sig
from gradcam_serving.console import errors_as_exit as _errors_as_exit
from gradcam_serving.console import quiet_tensorflow
from gradcam_serving.console import warnings_as_lines as _warnings_as_lines

__all__ = ["main"]


class _Numbers(click.ParamType):
    """A comma-separated list of ``count`` numbers, e.g. ``0,1`` or ``123.7,116.3,103.5``."""

    def __init__(self, count: int, kind: type = float) -> None:
        self.count = count
        self.kind = kind
        self.name = f"{count} comma-separated numbers"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[Any, ...]:
        if isinstance(value, tuple):
            return value
        try:
            numbers = tuple(self.kind(part) for part in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not {self.count} comma-separated numbers", param, ctx)
        if len(numbers) != self.count:
            self.fail(f"expected {self.count} comma-separated numbers, got {len(numbers)} in {value!r}", param, ctx)
        return numbers


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


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on a terminal; silence when piped."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _step: None
        return
    with console.status("Starting") as status:

        def update(step: str) -> None:
            console.log(step)
            status.update(step)

        yield update


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradcam-serving")
def cli() -> None:
    """Export image classifiers with an in-graph Grad-CAM `explain` signature and serve them."""


_verbose_option = click.option(
    "--verbose", is_flag=True, help="Show TensorFlow's own log lines and warnings, and the full trace of a failure."
)


def _model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by inspect and export: how to read the model."""
    options = [
        _verbose_option,
        click.option("--grid", type=_Numbers(2, int),
                     help="H,W token grid of a vision transformer whose patch grid is not square."),
        click.option("--output-name", "output",
                     help="The class-score output of a model with several outputs (their names are listed "
                          "when it is needed)."),
        click.option("--input-size", type=_Numbers(2, int), help="H,W for models that accept any image size."),
    ]
    for option in options:
        command = option(command)
    return command


@cli.command()
@click.argument("model", type=_ModelSource())
@_model_options
@click.option("--layer", default="auto", show_default=True, help="Check a layer: warns if no weight feeds it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def inspect(model: str, input_size: tuple[int, int] | None, output: str | None, grid: tuple[int, int] | None,
            verbose: bool, layer: str, as_json: bool) -> None:
    """List the layers Grad-CAM can target in MODEL and mark the automatic choice.

    Given an export (a BASE/NAME/VERSION folder), list the CAM methods it holds instead.
    """
    with _errors_as_exit(verbose), _warnings_as_lines(), quiet_tensorflow(verbose):
        from gradcam_serving.exporter import inspect_model
        from gradcam_serving.exporter import read_export_methods

        methods = read_export_methods(model)
        if methods is not None:
            click.echo(json.dumps({"methods": methods}) if as_json else f"methods: {', '.join(methods) or 'gradcam (explain only)'}")
            return

        with _progress() as progress:
            progress("Loading the model and probing its feature maps")
            report = inspect_model(model, input_size=input_size, output=output, grid=grid, layer=layer)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    _print_candidates(report)


def _print_candidates(report: Any) -> None:
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


@cli.command()
@click.argument("model", type=_ModelSource())
@click.option("--output", "base", required=True, type=click.Path(file_okay=False), help="Model base folder (BASE).")
@click.option("--name", required=True, help="Model name; the export goes to BASE/NAME/VERSION.")
@click.option("--version", type=click.IntRange(min=0), help="Version number (default: the next integer).")
@click.option("--layer", default="auto", show_default=True, help="Target layer's friendly name, or 'auto'.")
@click.option("--methods", type=_Methods(), default="gradcam", show_default=True,
              help="CAM methods, comma-separated, or 'all' (each gets explain_<method>); the first is the default.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False), help="Text file with one class label per line.")
@click.option("--input-range", type=_Numbers(2), help="LO,HI the model expects pixels in (default 0,1).")
@click.option("--mean", type=_Numbers(3), help="Per-channel mean R,G,B on the 0..255 scale (with --std).")
@click.option("--std", type=_Numbers(3), help="Per-channel std R,G,B on the 0..255 scale (with --mean).")
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
def export(model: str, base: str, name: str, version: int | None, layer: str, labels: str | None, **options: Any) -> None:
    """Export MODEL (hub handle or folder, .h5, .keras, SavedModel) with predict and explain signatures.

    Grayscale models (1 input channel) keep the same contract: RGB uint8 images, converted in the graph
    with the ITU-R BT.601 weights of tf.image.rgb_to_grayscale.
    """
    verbose = options["verbose"]
    _check_preprocessing(options["input_range"], options["mean"], options["std"])
    _check_warmup(options["warmup"], options["methods"])
    with _errors_as_exit(verbose), _warnings_as_lines(), quiet_tensorflow(verbose):
        preprocessing = _preprocessing(options["input_range"], options["mean"], options["std"])
        from gradcam_serving.exporter import export_model, read_labels

        with _progress() as progress:
            result = export_model(
                model,
                base,
                name,
                version=version,
                layer=layer,
                methods=options["methods"],
                labels=read_labels(labels) if labels else None,
                preprocessing=preprocessing,
                scores=options["scores"],
                input_size=options["input_size"],
                output=options["output"],
                grid=options["grid"],
                overwrite=options["overwrite"],
                max_pixels=options["max_pixels"],
                colormap=options["colormap"],
                warmup=options["warmup"],
                progress=progress,
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


def _check_preprocessing(input_range: Any, mean: Any, std: Any) -> None:
    if input_range is not None and (mean is not None or std is not None):
        raise click.UsageError("give either --input-range or --mean/--std, not both")
    if (mean is None) != (std is None):
        raise click.UsageError("--mean and --std go together")


def _preprocessing(input_range: Any, mean: Any, std: Any) -> Any:
    """The exporter's record (importing it imports TensorFlow: call inside ``quiet_tensorflow``)."""
    from gradcam_serving.exporter import Preprocessing

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


@cli.command()
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@_verbose_option
@click.option("--serving-version", callback=_serving_version, metavar="V",
              help="Also check every op and attribute against TF Serving V's TensorFlow (2.15 ... 2.21).")
@click.option("--sanity", is_flag=True, help="Also run the model-parameter randomisation test on the maps.")
@click.option("--images", "sanity_images", type=click.Path(exists=True),
              help="Sample images (folder or manifest) for --sanity; default: the export's warmup images.")
@click.option("--threshold", type=click.FloatRange(-1, 1), default=0.5, show_default=True,
              help="--sanity fails when the maps' rank correlation stays above this once randomised.")
def validate(
    export_dir: str, verbose: bool, serving_version: str | None, sanity: bool, sanity_images: str | None,
    threshold: float,
) -> None:
    """Check that TF Serving can load and run EXPORT_DIR (a version folder); exit 0 on pass, 1 on fail."""
    with quiet_tensorflow(verbose):
        passed = _validate(export_dir, serving_version, sanity, sanity_images, threshold, verbose)
    click.echo("PASS" if passed else "FAIL")
    sys.exit(0 if passed else 1)


def _validate(
    export_dir: str, serving_version: str | None, sanity: bool, sanity_images: str | None, threshold: float,
    verbose: bool,
) -> bool:
    from gradcam_serving.exporter import validate_export

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
        with _errors_as_exit(verbose):
            from gradcam_serving.evaluate import run_sanity

            sane = run_sanity(export_dir, sanity_images, threshold)
        click.echo(f"  [{'PASS' if sane else 'FAIL'}] sanity: maps {'change' if sane else 'barely change'} "
                   f"when the weights are randomised (rank correlation threshold {threshold})")
        passed = sane
    return passed


def _exports_and_beam_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Export folders (checked as before); Beam's pass-through options (``--name=value``) go to ``ctx.meta``."""
    ctx.meta["beam_args"] = [v for v in values if v.startswith("-")]
    folder = click.Path(exists=True, file_okay=False)
    return tuple(folder.convert(v, param, ctx) for v in values if not v.startswith("-"))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("exports", nargs=-1, callback=_exports_and_beam_options)
@click.option("--images", required=True, type=click.Path(exists=True),
              help="Folder of images, or a CSV/JSONL manifest (path, optional label, optional box).")
@click.option("--runner", help="Score on this Apache Beam runner (e.g. DirectRunner); other Beam options "
              "pass through as --name=value. Default: in this process.")
@click.option("--server", help="HOST:PORT of a server to evaluate instead of export folders (with --model).")
@click.option("--model", help="Model name on --server.")
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True, help="Steps per deletion/insertion curve.")
@click.option("--blur", "blur_sigma", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Gaussian blur (px) of the baseline image.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Images per predict call.")
@click.option("--method", "methods", multiple=True, help="Only this method (repeatable); default: all exported.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N images.")
@click.option("--strict", is_flag=True, help="Refuse (exit 1, naming each) any unreadable image; default: score "
              "the readable ones and list the others under the table and in the JSON.")
@click.option("--random-baseline", is_flag=True, help="Also score a uniform-noise map, as a floor to beat.")
@click.option("--json", "json_path", help="Write results JSON to this file ('-': print it instead of the table).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), help="Folder for curves, overlays and index.html.")
@_verbose_option
@click.pass_context
def evaluate(ctx: click.Context, exports: tuple[str, ...], images: str, verbose: bool, runner: str | None,
             **options: Any) -> None:
    """Score the explanations of EXPORTS (version folders, in-process) or of --server/--model on images."""
    beam_args = ctx.meta.get("beam_args", [])
    if beam_args and runner is None:
        raise click.UsageError(f"unknown option(s) {' '.join(beam_args)}; Beam options need --runner")
    with _errors_as_exit(verbose), _warnings_as_lines(), quiet_tensorflow(verbose):
        from gradcam_serving.evaluate import run_evaluate

        pipeline_args = None if runner is None else ["--runner", runner, *beam_args]
        run_evaluate(exports, images, pipeline_args=pipeline_args, **options)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("flags", nargs=-1, type=click.UNPROCESSED)
def serve(flags: tuple[str, ...]) -> None:
    """Run the local TF Serving stand-in on every interface, as TF Serving does (--host 127.0.0.1: this machine only).

    Takes tensorflow_model_server's flags (--port, --model_name, ...), and --verbose.
    """
    from gradcam_serving.server import main as server_main

    verbose = "--verbose" in flags
    with quiet_tensorflow(verbose):
        code = server_main([flag for flag in flags if flag != "--verbose"])
    if {"-h", "--help"} & set(flags):
        click.echo(_SERVE_HELP)
    sys.exit(code)


_SERVE_HELP = """
gradcam-serving serve:
  Like tensorflow_model_server, it listens on every interface (0.0.0.0):
  anyone who can reach this machine can call it. Add --host 127.0.0.1 to
  accept connections from this machine only (gRPC and REST).
  --verbose             show TensorFlow's own log lines (hidden by default)"""


def _client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by the thin-client commands."""
    command = click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))(command)
    command = click.option("--timeout", type=float, default=30.0, show_default=True, help="Deadline per call (s).")(command)
    command = click.option("--version", "model_version", type=int, help="Model version (default: latest).")(command)
    command = click.option("--model", required=True, help="Model name on the server.")(command)
    command = click.option("--server", required=True, help="HOST:PORT of TF Serving or gradcam-serving serve.")(command)
    return command


def _client(server: str, model: str, version: int | None, timeout: float) -> Any:
    from gradcam_serving.client import ExplainClient, Timeout

    return ExplainClient(server, model, version=version, timeout=Timeout(timeout))


def _rows(result: Any, images: tuple[str, ...]) -> Iterator[str]:
    for i, image in enumerate(images):
        yield f"{image}\tclass={int(result.class_index[i])}\tlabel={result.label[i]}\tscore={float(result.score[i]):.4f}"


@cli.command()
@_client_options
def predict(server: str, model: str, model_version: int | None, timeout: float, images: tuple[str, ...]) -> None:
    """Ask SERVER for the class of each IMAGE (one request per image)."""
    with _errors_as_exit(), quiet_tensorflow(), _client(server, model, model_version, timeout) as client:
        for image in images:
            for row in _rows(client.predict(image), (image,)):
                click.echo(row)


@cli.command()
@_client_options
@click.option("--class-index", type=int, default=-1, show_default=True, help="Class to explain; -1 = predicted.")
@click.option("--method", help="CAM method the export holds (see 'inspect EXPORT'); default: the export's default.")
@click.option("--top-k", type=click.IntRange(min=1),
              help="Explain the K most probable classes with the export's default method (one overlay each).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder for the overlay PNGs, named IMAGE_METHOD.png (IMAGE_METHOD_topR.png with --top-k).")
def explain(server: str, model: str, model_version: int | None, timeout: float, images: tuple[str, ...],
            class_index: int, method: str | None, top_k: int | None, out_dir: str) -> None:
    """Ask SERVER what the model sees in each IMAGE; write Grad-CAM overlay PNGs.

    Files go to the explain_bytes signature, so the overlay is drawn by the server; on exports
    without it the client falls back to explain and the overlay is drawn here.
    """
    from pathlib import Path

    from gradcam_serving.client import save_overlay

    folder = Path(out_dir)
    with _errors_as_exit(), quiet_tensorflow():
        _check_top_k_options(top_k, method, class_index)
        with _client(server, model, model_version, timeout) as client:
            label = method or _default_method_label(client)
            folder.mkdir(parents=True, exist_ok=True)
            for image in images:
                if top_k is not None:
                    _explain_top_k(client, image, top_k, folder / f"{Path(image).stem}_{label}")
                    continue
                result = client.explain(image, class_index, method=method)
                overlay = folder / f"{Path(image).stem}_{label}.png"
                if result.overlay_png:
                    overlay.write_bytes(result.overlay_png[0])
                else:
                    save_overlay(image, result.heatmap[0], overlay)
                for row in _rows(result, (image,)):
                    click.echo(f"{row}\toverlay={overlay}")


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


def _default_method_label(client: Any) -> str:
    """The method ``explain`` and ``explain_topk`` compute, for overlay file names.

    The metadata lists the exported methods but not which one is the default (the first of
    ``--methods`` at export): a single method is named, several give ``default``. Exports made
    before ``explain_<method>`` existed compute Grad-CAM.
    """
    from gradcam_serving.signatures import DEFAULT_EXPORT_METHOD, exported_methods

    methods = exported_methods(client.metadata().signatures)
    if not methods:
        return DEFAULT_EXPORT_METHOD
    return methods[0] if len(methods) == 1 else "default"


def _explain_top_k(client: Any, image: str, top_k: int, stem: Any) -> None:
    """One overlay (``<stem>_top<rank>.png``) and one line per class, most probable first."""
    from gradcam_serving.client import save_overlay

    result = client.explain(image, top_k=top_k)
    for rank, (index, label, score) in enumerate(zip(result.class_index[0], result.label[0], result.score[0]), 1):
        overlay = stem.with_name(f"{stem.name}_top{rank}.png")
        save_overlay(image, result.heatmap[0, rank - 1], overlay)
        click.echo(f"{image}\trank={rank}\tclass={int(index)}\tlabel={label}\tscore={float(score):.4f}\toverlay={overlay}")


@cli.command()
@click.option("--workdir", type=click.Path(file_okay=False, writable=True), default="demo_output", show_default=True,
              help="Where the model, export and overlays go.")
@click.option("--images", "count", type=click.IntRange(min=1), default=200, show_default=True,
              help="Synthetic images to explain over gRPC.")
@_verbose_option
def demo(workdir: str, count: int, verbose: bool) -> None:
    """Train a tiny hub module on synthetic shapes, export, serve and explain it over gRPC."""
    with _errors_as_exit(verbose), quiet_tensorflow(verbose):
        from gradcam_serving.demo import run_demo

        with _progress() as progress:
            report = run_demo(workdir, images=count, step=progress)
    click.echo(f"held-out accuracy: {report.accuracy:.1%}")
    click.echo(
        f"pointing game: heatmap peak on the shape in {report.pointing_hits}/{report.pointing_total} images "
        f"({report.pointing_rate:.1%}; {report.pointing_hits_exact_box}/{report.pointing_total} inside the exact box)"
    )
    click.echo(f"export: {report.export_path}")
    click.echo(f"overlays: {report.overlays[0].parent}")


def _register_deploy_commands() -> None:
    from gradcam_serving.deploy import config_command

    cli.add_command(config_command)


_register_deploy_commands()


def _register_view_command() -> None:
    """``view``: its module imports click only; Starlette and TensorFlow load when the command runs."""
    from gradcam_serving.view import make_view_command

    cli.add_command(make_view_command())


_register_view_command()


def _register_batch_commands() -> None:
    """``explain-batch``: registering it imports click only; Beam and TensorFlow load when it runs."""
    from gradcam_serving.batch import explain_batch_command  # imports neither Beam nor TensorFlow

    cli.add_command(explain_batch_command)


_register_batch_commands()


def _help_hint(exc: click.ClickException) -> str:
    """Where a usage error's command documents its options: one line, like every other failure."""
    ctx = getattr(exc, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if isinstance(exc, click.UsageError) and ctx is not None else ""


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="gradcam-serving", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}{_help_hint(exc)}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
