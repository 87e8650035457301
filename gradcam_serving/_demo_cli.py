"""``gradcam-serving demo``: the whole path (train, export, serve, explain over gRPC) on a tiny synthetic model.

Kept apart from :mod:`gradcam_serving.demo` (which imports numpy and, when run, TensorFlow) so registering
the command imports click only.
"""

from __future__ import annotations

import click

from gradcam_serving.console import errors_as_exit, progress_steps, quiet_tensorflow, verbose_option

__all__ = ["demo_command"]


@click.command("demo")
@click.option("--workdir", type=click.Path(file_okay=False, writable=True), default="demo_output", show_default=True,
              help="Where the model, export and overlays go.")
@click.option("--images", "count", type=click.IntRange(min=1), default=200, show_default=True,
              help="Synthetic images to explain over gRPC.")
@verbose_option
def demo_command(workdir: str, count: int, verbose: bool) -> None:
    """Train a tiny hub module on synthetic shapes, export, serve and explain it over gRPC."""
    with errors_as_exit(verbose), quiet_tensorflow(verbose):
        from gradcam_serving.demo import run_demo

        with progress_steps() as progress:
            report = run_demo(workdir, images=count, step=progress)
    click.echo(f"held-out accuracy: {report.accuracy:.1%}")
    click.echo(
        f"pointing game: heatmap peak on the shape in {report.pointing_hits}/{report.pointing_total} images "
        f"({report.pointing_rate:.1%}; {report.pointing_hits_exact_box}/{report.pointing_total} inside the exact box)"
    )
    click.echo(f"export: {report.export_path}")
    click.echo(f"overlays: {report.overlays[0].parent}")
