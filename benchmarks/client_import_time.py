"""How long ``import gradcam_serving.client`` takes in a fresh interpreter.

The thin client promises to import in under 0.5 s and without TensorFlow.
Each run starts a new ``python`` process (so nothing is cached in
``sys.modules``), times the import inside it with ``time.perf_counter`` and
reports whether any heavy module got loaded. The first run warms the OS file
cache and is not counted.

Usage::

    python benchmarks/client_import_time.py [--runs 15] [--module gradcam_serving.client]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HEAVY = ("tensorflow", "tensorflow_serving", "keras", "tf_keras", "matplotlib", "PIL")
BUDGET_SECONDS = 0.5

PROBE = """
import json, sys, time
started = time.perf_counter()
import {module}
elapsed = time.perf_counter() - started
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"seconds": elapsed, "heavy": heavy}}))
"""


def measure_once(module: str) -> dict:
    """Import ``module`` in a fresh interpreter; return its time and heavy imports."""
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(module: str, seconds: list[float], heavy: set[str]) -> str:
    rows = [
        ("module", module),
        ("runs", str(len(seconds))),
        ("median", f"{statistics.median(seconds) * 1000:.1f} ms"),
        ("min", f"{min(seconds) * 1000:.1f} ms"),
        ("max", f"{max(seconds) * 1000:.1f} ms"),
        ("budget", f"{BUDGET_SECONDS * 1000:.0f} ms"),
        ("heavy modules", ", ".join(sorted(heavy)) or "none"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="measured runs (default 15)")
    parser.add_argument("--module", default="gradcam_serving.client", help="module to import")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    measure_once(args.module)  # warm-up, not counted
    results = [measure_once(args.module) for _ in range(args.runs)]
    seconds = [result["seconds"] for result in results]
    heavy = {name for result in results for name in result["heavy"]}
    print(table(args.module, seconds, heavy))
    over_budget = statistics.median(seconds) > BUDGET_SECONDS
    return 1 if heavy or over_budget else 0


if __name__ == "__main__":
    sys.exit(main())
