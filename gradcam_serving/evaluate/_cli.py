"""``gradcam-serving evaluate``, and the work behind it and behind ``validate --sanity``.

Importing this module imports click only; numpy, TensorFlow and Beam load when
the command runs, after its options are checked.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import click

from gradcam_serving.console import errors_as_exit, quiet_tensorflow, verbose_option, warnings_as_lines

__all__ = ["evaluate_command", "run_evaluate", "run_sanity"]


def _exports_and_beam_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Export folders (checked as before); Beam's pass-through options (``--name=value``) go to ``ctx.meta``."""
    ctx.meta["beam_args"] = [v for v in values if v.startswith("-")]
    folder = click.Path(exists=True, file_okay=False)
    return tuple(folder.convert(v, param, ctx) for v in values if not v.startswith("-"))


@click.command("evaluate", context_settings={"ignore_unknown_options": True})
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
@click.option("--method", "methods", multiple=True,
              help="Only this method (repeatable; 'default' is the plain explain signature); default: all exported.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N images.")
@click.option("--strict", is_flag=True, help="Refuse (exit 1, naming each) any unreadable image; default: score "
              "the readable ones and list the others under the table and in the JSON.")
@click.option("--random-baseline", is_flag=True, help="Also score a uniform-noise map, as a floor to beat.")
@click.option("--json", "json_path", help="Write results JSON to this file ('-': print it instead of the table).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), help="Folder for curves, overlays and index.html.")
@verbose_option
@click.pass_context
def evaluate_command(
    ctx: click.Context, exports: tuple[str, ...], images: str, runner: str | None, server: str | None,
    model: str | None, steps: int, blur_sigma: float, batch_size: int, methods: tuple[str, ...], limit: int | None,
    strict: bool, random_baseline: bool, json_path: str | None, report_dir: str | None, verbose: bool,
) -> None:
    """Score the explanations of EXPORTS (version folders, in-process) or of --server/--model on images."""
    beam_args = ctx.meta.get("beam_args", [])
    if beam_args and runner is None:
        raise click.UsageError(f"unknown option(s) {' '.join(beam_args)}; Beam options need --runner")
    with errors_as_exit(verbose), warnings_as_lines(), quiet_tensorflow(verbose):
        run_evaluate(
            exports, images, server=server, model=model, steps=steps, blur_sigma=blur_sigma, batch_size=batch_size,
            methods=methods, limit=limit, strict=strict, random_baseline=random_baseline, json_path=json_path,
            report_dir=report_dir, pipeline_args=None if runner is None else ["--runner", runner, *beam_args],
        )


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on a terminal (stderr); nothing when piped."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _what, _done, _total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("loading", total=None)

        def update(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=what)

        yield update


def run_evaluate(
    exports: Sequence[str],
    images: str,
    *,
    server: str | None,
    model: str | None,
    steps: int,
    blur_sigma: float,
    batch_size: int,
    methods: Sequence[str],
    limit: int | None,
    random_baseline: bool,
    json_path: str | None,
    report_dir: str | None,
    pipeline_args: Sequence[str] | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Evaluate, print the table, write JSON and the report folder when asked; return the JSON document.

    With ``pipeline_args`` (``--runner`` and other Beam options) the images are scored by a Beam pipeline.
    Unreadable images are left out and named (``strict``: refused, every one named).
    """
    from ._data import load_samples
    from ._report import print_table, write_json, write_report
    from ._runner import evaluate, random_map

    samples = load_samples(images, limit=limit, strict=strict)
    if pipeline_args is not None:
        report = _evaluate_on_beam(exports, samples, pipeline_args, server=server, model=model, steps=steps,
                                   blur_sigma=blur_sigma, batch_size=batch_size, methods=methods,
                                   random_baseline=random_baseline)
    else:
        references = {"random": random_map()} if random_baseline else None
        with _progress_bar() as progress:
            report = evaluate(
                list(exports) or None, samples, server=server, model=model, steps=steps, blur_sigma=blur_sigma,
                batch_size=batch_size, methods=methods or None, references=references, progress=progress,
            )
    if json_path == "-":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print_table(report)
        if json_path:
            write_json(report, json_path)
    if report_dir:
        index = write_report(report, report_dir)
        from rich.console import Console

        Console(stderr=True).print(f"report: {index}")
    return report.as_dict(per_image=False)


def _evaluate_on_beam(exports: Sequence[str], samples: Any, pipeline_args: Sequence[str], *, random_baseline: bool,
                      methods: Sequence[str], **options: Any) -> Any:
    if random_baseline:
        raise ValueError("--random-baseline cannot be combined with --runner: the noise map's draws depend on the "
                         "order images are scored in; run it in-process (without --runner)")
    with _beam_logs_quiet():
        from ._beam import evaluate_on_beam  # Beam only when a runner is asked for

        return evaluate_on_beam(list(exports) or None, samples, pipeline_args, methods=methods or None, **options)


@contextmanager
def _beam_logs_quiet() -> Iterator[None]:
    """Beam's import-time and runner log lines stay off the terminal (errors still show): the table is the output."""
    loggers = [logging.getLogger(name) for name in ("", "apache_beam", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.ERROR))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def run_sanity(export_dir: str | os.PathLike[str], images: str | None, threshold: float) -> bool:
    """Print the randomisation test per method; return whether every method passed."""
    import numpy as np

    from ._data import load_samples
    from ._report import print_sanity
    from ._sanity import sanity_check

    arrays = None
    if images is not None:
        samples = load_samples(images)
        sizes = {s.image.shape for s in samples}
        if len(sizes) > 1:
            from PIL import Image

            height, width = samples[0].image.shape[:2]
            arrays = np.stack([np.asarray(Image.fromarray(s.image).resize((width, height))) for s in samples])
        else:
            arrays = np.stack([s.image for s in samples])
    report = sanity_check(Path(export_dir), arrays, threshold=threshold)
    print_sanity(report)
    return report.passed
