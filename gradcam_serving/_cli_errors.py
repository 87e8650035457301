"""How every command-line entry point reports a failure (one readable line on stderr, exit code 1) and our warnings.

Its own module so ``gradcam_serving.cli`` and ``gradcam_serving.deploy._cli``
(which ``cli`` imports) both use it without importing each other.
"""

from __future__ import annotations

import re
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click

__all__ = ["error_line", "errors_as_exit", "warnings_as_lines"]

_FRAME = re.compile(r'^(File "|Traceback \(most recent call last\)|in user code:|\^+$)')
_ERROR_PREFIX = re.compile(r"^(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Warning): ")


def error_line(exc: BaseException) -> str:
    """The message of ``exc`` in one line: the last informative line of a TF/autograph error.

    Autograph re-raises errors from traced code as "in user code:", the frames,
    then "ErrorType: message" last; TF runtime errors end with the message too.
    Our own single-line messages are returned as they are.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) == 1 or not any(_FRAME.match(line) for line in lines):
        return lines[0]
    informative = [line for line in lines if not _FRAME.match(line)]
    return _ERROR_PREFIX.sub("", informative[-1]) if informative else type(exc).__name__


@contextmanager
def errors_as_exit(verbose: bool = False) -> Iterator[None]:
    """Turn every failure into one line on stderr and exit code 1; ``verbose`` adds the full trace."""
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except Exception as exc:  # noqa: BLE001 - every failure ends in one readable line
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {error_line(exc)}", err=True)
        sys.exit(1)


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Our warnings (a layer no weight feeds, an old image tag) as ``warning: ...`` lines, not Python's format."""
    from gradcam_serving.errors import GradcamServingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GradcamServingWarning)
        try:
            yield
        finally:
            for item in caught:
                if issubclass(item.category, GradcamServingWarning):
                    click.echo(f"warning: {item.message}", err=True)
