"""What every command shares: one line per failure, our warnings, no TensorFlow noise, and common click pieces.

Public on the shared floor because every command uses it: each package's
``_cli`` module defines its commands with these helpers without importing
another package's, and ``gradcam_serving.cli`` only registers them.

Exit codes, the same for every command: 0 success, 1 a failed check or an error
(one ``error: ...`` line), 2 a usage error (click's own). Failures leave a
command as :class:`click.exceptions.Exit`, never as ``SystemExit``, so
``gradcam_serving.cli.main`` always returns the code.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

from gradcam_serving.errors import readable_error

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Numbers",
    "error_line",
    "errors_as_exit",
    "progress_steps",
    "quiet_tensorflow",
    "verbose_option",
    "warnings_as_lines",
]

EXIT_OK = 0
EXIT_FAILED = 1
"""A failed check (``validate`` says FAIL) or an error (one ``error: ...`` line on stderr)."""
EXIT_USAGE = 2
"""A usage error: an unknown option, a missing argument, a value click or a parameter type refused."""

error_line = readable_error
"""The one-line message of an exception (kept under this name for the commands' callers)."""

_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
_QUIET_LEVEL = "3"  # ERROR and below hidden: TensorFlow logs nothing once absl is initialised
# Python loggers TensorFlow and its helpers log through ("From ...: load is deprecated", "Restoring parameters").
_NOISY_LOGGERS = ("tensorflow", "absl", "h5py")
# Modules whose Python warnings are TensorFlow's business, not the user's (their deprecations, Keras' notes).
_NOISY_MODULES = r"(tensorflow|tf_keras|keras|tensorflow_hub|absl|google\.protobuf|h5py|ml_dtypes)(\.|$)"
_quiet_depth = 0


@contextmanager
def errors_as_exit(verbose: bool = False) -> Iterator[None]:
    """Turn every failure into one line on stderr and exit code 1; ``verbose`` adds the full trace.

    Raises :class:`click.exceptions.Exit` (not ``SystemExit``), like every other way out of a command.
    """
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except Exception as exc:  # noqa: BLE001 - every failure ends in one readable line
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {error_line(exc)}", err=True)
        raise click.exceptions.Exit(EXIT_FAILED) from None


verbose_option = click.option(
    "--verbose", is_flag=True, help="Show TensorFlow's own log lines and warnings, and the full trace of a failure."
)
"""The ``--verbose`` flag of every command that may touch TensorFlow."""


class Numbers(click.ParamType):
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


@contextmanager
def progress_steps() -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on a terminal (stderr); silence when piped."""
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


@contextmanager
def quiet_tensorflow(verbose: bool = False) -> Iterator[None]:
    """Keep TensorFlow's log lines out of the terminal for the whole ``with`` block; ``verbose`` keeps everything.

    Wrap everything a command does that may touch TensorFlow (import, load, Grappler,
    Session creation, MLIR passes, a serving loop), not only the import: TensorFlow's
    C++ code writes to file descriptor 2 at any of those moments, around Python's
    ``sys.stderr``. Three layers, because each leak has its own route:

    * ``TF_CPP_MIN_LOG_LEVEL=3`` (unless the user set it) silences what TensorFlow
      logs once absl is initialised;
    * what is written before that, whatever the level (absl's "before
      InitializeLog", the CUDA stub, oneDNN and CPU-feature notes), and any other
      native write, goes to /dev/null: descriptor 2 points there while Python's
      ``sys.stderr`` is moved to a copy of the real one, so the command's own
      messages, progress display and log records still reach the user. A user whose
      own level is below 3 asked for TensorFlow's lines: descriptor 2 is left alone;
    * TensorFlow's Python loggers drop below ERROR, and TensorFlow's Python
      warnings (deprecations) are ignored; our own warnings are untouched.

    Re-entrant: a nested call changes nothing. Safe without TensorFlow installed
    (it imports nothing).
    """
    global _quiet_depth
    if verbose or _quiet_depth:
        yield
        return
    os.environ.setdefault(_LOG_LEVEL_VARIABLE, _QUIET_LEVEL)
    _quiet_depth += 1
    try:
        with _python_noise_muted(), _native_stderr_muted(os.environ[_LOG_LEVEL_VARIABLE].strip() == _QUIET_LEVEL):
            yield
    finally:
        _quiet_depth -= 1


@contextmanager
def _python_noise_muted() -> Iterator[None]:
    """TensorFlow's Python loggers at ERROR and its warnings ignored, restored afterwards."""
    from gradcam_serving.errors import GradcamServingWarning

    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category)
            warnings.filterwarnings("ignore", module=_NOISY_MODULES)
            warnings.simplefilter("always", GradcamServingWarning)  # first in the list: ours always show
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextmanager
def _native_stderr_muted(mute: bool) -> Iterator[None]:
    """Point descriptor 2 at /dev/null; Python's ``sys.stderr`` keeps writing to the real stderr.

    When ``sys.stderr`` is the process's descriptor 2 it is swapped for a stream on a
    duplicate of it (unbuffered, so a progress spinner draws at once). The swapped
    stream is never closed: a log handler created meanwhile may hold it, and writing
    through it later must still work. A ``sys.stderr`` that is not descriptor 2 (a
    test runner's capture) is left as it is.
    """
    if not mute:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(2)
    previous = sys.stderr
    if _writes_to_descriptor(previous, 2):
        sys.stderr = _text_stream(os.dup(saved), previous)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = previous


def _writes_to_descriptor(stream: TextIO, descriptor: int) -> bool:
    try:
        return stream.fileno() == descriptor
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return False


def _text_stream(descriptor: int, like: TextIO) -> TextIO:
    return io.TextIOWrapper(
        io.FileIO(descriptor, "w"),
        encoding=getattr(like, "encoding", None) or "utf-8",
        errors=getattr(like, "errors", None) or "backslashreplace",
        line_buffering=True,
        write_through=True,
    )
