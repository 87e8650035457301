"""Wall-clock behaviour of load retries in the model manager: who waits for them, and who does not.

``tests/server/test_hardening.py`` checks the same behaviour by outcome (states, attempt counts); the
times live here, as the developers' guide asks. Loaders are fakes (a version either loads at once or
fails with DATA_LOSS), so only the manager's own waiting is measured:

* a reload that adds a broken model waits through its retries, like TF's ``HandleReloadConfigRequest``
  (goal: at least retries x interval);
* a poll and a reload while an existing model's version keeps failing do not wait for its retries,
  which run without the sync lock (goal: under 1 s, against retries x interval if they did);
* ``stop`` interrupts a pending retry wait (goal: under 1 s, against one interval).

Usage::

    python benchmarks/hardening.py [--runs 5] [--retries 3] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gradcam_serving.errors import DataLossError, ServingError
from gradcam_serving.server import ModelConfig, ModelManager, Servable

BACKGROUND_RETRIES = 50
BACKGROUND_INTERVAL = 60.0
QUICK_SECONDS = 1.0


class _FakeExport:
    """Stands in for ``runtime.ExportSession``: what a Servable needs to be made and closed."""

    signature_defs: dict = {}
    config = None

    def close(self) -> None:
        pass


def _loader(broken: set[tuple[str, int]]) -> Callable[[str, int, str], Servable]:
    """Loads every version at once except those in ``broken``, which fail every time."""

    def load(name: str, version: int, path: str) -> Servable:
        if (name, version) in broken:
            raise DataLossError("cannot load")
        return Servable(name, version, path, _FakeExport())

    return load


def _configs(base: Path, *names: str) -> tuple[ModelConfig, ...]:
    for name in names:
        (base / name / "1").mkdir(parents=True, exist_ok=True)
    return tuple(ModelConfig(name, str(base / name)) for name in names)


def reload_of_a_broken_new_model(base: Path, retries: int, interval: float) -> float:
    """Seconds until a reload adding a model that never loads gives up."""
    manager = ModelManager(_loader({("bad", 1)}), poll_wait_seconds=0, max_num_load_retries=retries,
                           load_retry_interval_seconds=interval)
    manager.start(_configs(base, "good"))
    try:
        started = time.perf_counter()
        try:
            manager.reload(_configs(base, "good", "bad"))
        except ServingError:
            return time.perf_counter() - started
        raise AssertionError("the reload of a model that never loads succeeded")
    finally:
        manager.stop()


def background_retries(base: Path) -> tuple[float, float]:
    """Seconds for a poll plus a reload while another version retries, and for ``stop`` then."""
    manager = ModelManager(_loader({("bad", 2)}), poll_wait_seconds=0, max_num_load_retries=BACKGROUND_RETRIES,
                           load_retry_interval_seconds=BACKGROUND_INTERVAL)
    manager.start(_configs(base, "good", "bad"))
    try:
        (base / "bad" / "2").mkdir()
        manager.poll_once()  # version 2 fails; its retries start
        started = time.perf_counter()
        manager.reload(_configs(base, "good", "bad", "late"))
        manager.poll_once()
        busy = time.perf_counter() - started
    finally:
        started = time.perf_counter()
        manager.stop()
        stopping = time.perf_counter() - started
    return busy, stopping


def measure(runs: int, retries: int, interval: float) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"reload": [], "busy": [], "stop": []}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
            results["reload"].append(reload_of_a_broken_new_model(Path(first), retries, interval))
            busy, stopping = background_retries(Path(second))
            results["busy"].append(busy)
            results["stop"].append(stopping)
    return results


def table(results: dict[str, list[float]], retries: int, interval: float) -> tuple[str, bool]:
    """The printed table, and whether every goal was met (on the slowest run, or the fastest for a minimum)."""
    wait = retries * interval
    rows = [
        (f"reload adding a broken model ({retries} retries, {interval:g} s apart)", results["reload"],
         f">= {wait:g} s", min(results["reload"]) >= wait),
        (f"poll + reload while a version retries ({BACKGROUND_RETRIES} x {BACKGROUND_INTERVAL:g} s)",
         results["busy"], f"< {QUICK_SECONDS:g} s", max(results["busy"]) < QUICK_SECONDS),
        ("stop during that retry wait", results["stop"], f"< {QUICK_SECONDS:g} s",
         max(results["stop"]) < QUICK_SECONDS),
    ]
    header = ("measurement", "median s", "min s", "max s", "goal", "met")
    lines = [(name, f"{statistics.median(values):.3f}", f"{min(values):.3f}", f"{max(values):.3f}", goal,
              "yes" if met else "NO") for name, values, goal, met in rows]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    text = "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [header, *lines])
    return text, all(met for *_, met in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each measurement (default 5)")
    parser.add_argument("--retries", type=int, default=3, help="max_num_load_retries of the broken new model")
    parser.add_argument("--interval", type=float, default=0.5, help="load_retry_interval_seconds of that model")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.retries < 1 or args.interval < 0:
        parser.error("--runs and --retries must be >= 1, --interval >= 0")
    logging.getLogger("gradcam_serving.server").setLevel(logging.CRITICAL)  # the failing loads are on purpose
    text, met = table(measure(args.runs, args.retries, args.interval), args.retries, args.interval)
    print(text)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
