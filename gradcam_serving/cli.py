"""The ``gradcam-serving`` command line: it registers the commands; each lives in its package's ``_cli`` module.

Registering imports click and each package's command module only, never TensorFlow,
numpy or Beam, so ``predict`` and ``explain`` (thin-client commands) start fast and
work without TensorFlow, and everything a parameter alone can tell (a missing file,
an unknown method or colormap) is refused before TensorFlow is imported. Every
command runs inside :func:`~gradcam_serving.console.quiet_tensorflow`, so
TensorFlow's log lines stay out of the terminal unless ``--verbose``. Every failure
ends in one ``error: ...`` line on stderr and a non-zero exit code, which
:func:`main` returns (see :mod:`gradcam_serving.console` for the codes).
"""

from __future__ import annotations

import sys

import click

from gradcam_serving._demo_cli import demo_command
from gradcam_serving.batch import explain_batch_command
from gradcam_serving.client import explain_command, predict_command
from gradcam_serving.console import EXIT_FAILED, EXIT_OK
from gradcam_serving.deploy import config_command
from gradcam_serving.evaluate import evaluate_command
from gradcam_serving.exporter import export_command, inspect_command, validate_command
from gradcam_serving.server import serve_command
from gradcam_serving.view import make_view_command

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradcam-serving")
def cli() -> None:
    """Export image classifiers with an in-graph Grad-CAM `explain` signature and serve them.

    \b
    Exit codes:
      0  success
      1  a failed check (validate: FAIL) or an error (one 'error: ...' line)
      2  a usage error (unknown option, missing argument, refused value)
    """


for _command in (
    inspect_command, export_command, validate_command, evaluate_command, serve_command, predict_command,
    explain_command, demo_command, config_command, make_view_command(), explain_batch_command,
):
    cli.add_command(_command)
del _command


def _help_hint(exc: click.ClickException) -> str:
    """Where a usage error's command documents its options: one line, like every other failure."""
    ctx = getattr(exc, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if isinstance(exc, click.UsageError) and ctx is not None else ""


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: runs one command and returns its exit code (it never raises ``SystemExit``)."""
    try:
        # Outside standalone mode click returns the code of a ``click.exceptions.Exit`` (how every command
        # leaves with a non-zero code), else the command's own return value (``None``: success).
        code = cli.main(args=argv, prog_name="gradcam-serving", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}{_help_hint(exc)}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILED
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
