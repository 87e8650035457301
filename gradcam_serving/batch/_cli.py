"""``gradcam-serving explain-batch``: parse the command line, keep the terminal quiet, run, report.

Importing this module imports neither Beam nor TensorFlow (``gradcam_serving.cli``
registers the command at import); the job imports them when it runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

import click

from gradcam_serving.console import errors_as_exit

if TYPE_CHECKING:
    from ._job import BatchJob
    from ._run import BatchReport

__all__ = ["explain_batch_command"]

_HEATMAPS = ("none", "npy", "png")


def _existing_source(ctx: click.Context, param: click.Parameter, source: str) -> str:
    """A local SOURCE that names no file and no pattern fails here, before Beam and TensorFlow load.

    Beam would only say so after starting the job, in its own words (``ALLOW_IF_WILDCARD``).
    """
    local = "://" not in source and not any(char in source for char in "*?[")
    if local and not os.path.exists(source):
        raise click.BadParameter(
            f"{source!r} does not exist; expected a folder, a file pattern such as 'photos/*.jpg', "
            "a CSV/JSONL manifest or TFRecord files", ctx=ctx, param=param)
    return source


@click.command("explain-batch", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("source", callback=_existing_source)
@click.option("--export", "export", help="Explain in-process with this export (BASE/NAME/VERSION; local or gs://).")
@click.option("--server", help="Explain remotely: HOST:PORT of TF Serving or 'gradcam-serving serve' (gRPC).")
@click.option("--model", help="The served model's name (with --server).")
@click.option("--output", required=True, help="Folder for results-*.parquet, failed.jsonl, summary.json/png, files.")
@click.option("--method", "methods", multiple=True,
              help="CAM method (repeatable), or 'all' for every method the export holds; default: its default.")
@click.option("--top-k", type=int, default=1, show_default=True, help="Explain the K most probable classes.")
@click.option("--class-from-label", is_flag=True, help="Explain each input's label (manifest, TFRecord) instead.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Images per model run.")
@click.option("--overlays", is_flag=True, help="Write overlay PNGs under OUTPUT/overlays, named after each input.")
@click.option("--heatmaps", type=click.Choice(_HEATMAPS), default="none", show_default=True,
              help="Write each heatmap under OUTPUT/heatmaps as .npy (float32) or .png (8-bit).")
@click.option("--input-kind", type=click.Choice(("auto", "files", "manifest", "tfrecord")), default="auto",
              show_default=True, help="How to read SOURCE (auto: .csv/.jsonl manifest, .tfrecord, else files).")
@click.option("--border-threshold", type=float, default=None,
              help="Flag a class when this share of its strong evidence lies in the border band (default 0.5).")
@click.option("--tf-threads", type=int, default=0, show_default=True,
              help="TensorFlow threads per worker process (0: TensorFlow decides).")
@click.option("--runner", default="DirectRunner", show_default=True, help="Beam runner; other Beam options pass through.")
@click.option("--overwrite", is_flag=True, help="Replace the results already in OUTPUT.")
@click.option("--verbose", is_flag=True, help="Show Beam's and TensorFlow's logs and the full trace of a failure.")
@click.pass_context
def explain_batch_command(ctx: click.Context, source: str, export: str | None, server: str | None, model: str | None,
                          output: str, methods: tuple[str, ...], top_k: int, class_from_label: bool, batch_size: int,
                          overlays: bool, heatmaps: str, input_kind: str, border_threshold: float | None,
                          tf_threads: int, runner: str, overwrite: bool, verbose: bool) -> None:
    """Explain every image of SOURCE on Apache Beam: a file pattern or folder, a CSV/JSONL manifest, or TFRecords.

    Any other option is a Beam pipeline option, passed through: --direct_num_workers 2
    --direct_running_mode multi_processing, or --project/--region/--temp_location for Dataflow,
    --flink_master for Flink, ...
    """
    from ._job import BatchJob, check_job  # neither Beam nor TensorFlow

    with errors_as_exit(verbose):
        _quiet_environment(verbose)
        job = BatchJob(
            source, output, export=export, server=server, model=model, methods=methods or None, top_k=top_k,
            class_from_label=class_from_label, batch_size=batch_size, overlays=overlays, heatmaps=heatmaps,
            overwrite=overwrite, border_threshold=border_threshold, session_threads=tf_threads,
            input_kind=None if input_kind == "auto" else input_kind,
        )
        check_job(job)
        report = _run(job, ["--runner", runner, *ctx.args], verbose)
    click.echo(report.line())


def _quiet_environment(verbose: bool) -> None:
    """TF's C++ logs off for this process and the worker processes it starts (they inherit the variable)."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _run(job: BatchJob, pipeline_args: list[str], verbose: bool) -> BatchReport:
    """Run the job; without ``verbose``, everything written to stderr (Beam, TF, workers) goes to a log file."""
    if verbose:
        from ._run import run_batch

        return run_batch(job, pipeline_args)
    direct = pipeline_args[1] in ("DirectRunner", "direct", "SwitchingDirectRunner")
    with _stderr_to_log() as (terminal, log_path):
        try:
            with _progress_line(terminal, direct):
                from ._run import run_batch

                report = run_batch(job, pipeline_args)
        except (ValueError, OSError):  # the job was refused (options, output folder, export): its line says it all
            os.unlink(log_path)
            raise
        except Exception:
            terminal.write(f"Beam's and the workers' log: {log_path}\n")
            raise
    os.unlink(log_path)
    return report


@contextmanager
def _stderr_to_log() -> Iterator[tuple[IO[str], str]]:
    """Send file descriptor 2 (C++ logs, Beam's worker processes, which inherit it) to a log file.

    Yields the real terminal as a text stream for the command's own progress line.
    """
    handle, log_path = tempfile.mkstemp(prefix="gradcam-explain-batch-", suffix=".log")
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    os.dup2(handle, 2)
    try:
        yield terminal, log_path
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(handle)
        terminal.close()


@contextmanager
def _progress_line(terminal: IO[str], direct: bool) -> Iterator[None]:
    """A live "N images, F failed" line on a terminal while a DirectRunner job runs."""
    if not (direct and terminal.isatty()):
        yield
        return
    from gradcam_serving.batch._progress import PROGRESS_ENV, read_progress

    folder = tempfile.mkdtemp(prefix="gradcam-progress-")
    os.environ[PROGRESS_ENV] = folder
    stop = threading.Event()

    def show() -> None:
        shown = ""
        while not stop.wait(0.5):
            images, failed = read_progress(folder)
            line = f"\rexplained {images} images, {failed} failed "
            if line != shown:
                terminal.write(line)
                terminal.flush()
                shown = line

    thread = threading.Thread(target=show, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        terminal.write("\r\033[K")
        os.environ.pop(PROGRESS_ENV, None)
