"""How every command-line entry point reports our errors: one line on stderr, exit code 1.

Its own module so ``gradcam_serving.cli`` and ``gradcam_serving.deploy._cli``
(which ``cli`` imports) both use it without importing each other.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from gradcam_serving.errors import GradcamServingError

__all__ = ["errors_as_exit"]


@contextmanager
def errors_as_exit() -> Iterator[None]:
    """Turn our errors (and bad values) into one line on stderr and exit code 1."""
    try:
        yield
    except (GradcamServingError, ValueError, OSError) as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip() and line.strip() != "in user code:"]
        click.echo(f"error: {lines[0] if lines else type(exc).__name__}", err=True)
        sys.exit(1)
