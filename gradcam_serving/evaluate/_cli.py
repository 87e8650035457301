"""The work behind ``gradcam-serving evaluate`` and ``validate --sanity`` (cli.py only parses options)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._data import load_samples
from ._report import print_sanity, print_table, write_json, write_report
from ._runner import evaluate, random_map
from ._sanity import sanity_check

__all__ = ["run_evaluate", "run_sanity"]


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
