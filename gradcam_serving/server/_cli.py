"""``gradcam-serving serve``: the local TF Serving stand-in, with ``tensorflow_model_server``'s own flags."""

from __future__ import annotations

import click

from gradcam_serving.console import quiet_tensorflow

__all__ = ["serve_command"]

_SERVE_HELP = """
gradcam-serving serve:
  Like tensorflow_model_server, it listens on every interface (0.0.0.0):
  anyone who can reach this machine can call it. Add --host 127.0.0.1 to
  accept connections from this machine only (gRPC and REST).
  --verbose             show TensorFlow's own log lines (hidden by default)"""


@click.command("serve", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                          "help_option_names": []})
@click.argument("flags", nargs=-1, type=click.UNPROCESSED)
def serve_command(flags: tuple[str, ...]) -> None:
    """Run the local TF Serving stand-in on every interface, as TF Serving does (--host 127.0.0.1: this machine only).

    Takes tensorflow_model_server's flags (--port, --model_name, ...), and --verbose.
    """
    from ._main import main

    verbose = "--verbose" in flags
    with quiet_tensorflow(verbose):
        code = main([flag for flag in flags if flag != "--verbose"])
    if {"-h", "--help"} & set(flags):
        click.echo(_SERVE_HELP)
    raise click.exceptions.Exit(code)
