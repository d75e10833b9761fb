"""`make bench`: every benchmark in sequence, then one summary table.

    .venv/bin/python -m tests.benchmarks.run_all [--only NAME[,NAME...]]

Each bench module is imported by name and its `main([])` run with its
default sizes; a module that is not there is skipped with a message, and
one that fails is reported and the others still run. The summary lists
every figure with its target, the baseline measured in the same run, and
whether the target was met, as each module recorded it (figures.report):
the summary reads those records, never the text a module printed.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from tests.benchmarks import figures

MODULES = ("bench_kernel", "bench_propagation", "bench_snapshot", "bench_scale",
           "bench_attach", "bench_agent_memory", "bench_dataplane", "bench_lab_propagation", "bench_services", "bench_engines")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated module names to run (default: all)")
    args = parser.parse_args(argv)
    wanted = [m for m in args.only.split(",") if m] or list(MODULES)
    unknown = sorted(set(wanted) - set(MODULES))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    outcomes = []
    began = time.monotonic()
    for name in wanted:
        outcomes.append(_run(name))
    _summary(outcomes, time.monotonic() - began)
    return 1 if any(status == "failed" for _, status, _, _ in outcomes) else 0


def _run(name: str) -> tuple[str, str, float, list[figures.Figure]]:
    """(module, "ran" | "skipped" | "failed", seconds, figures recorded)."""
    print(f"\n=== {name} ===", flush=True)
    try:
        module = importlib.import_module(f"tests.benchmarks.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"tests.benchmarks.{name}":
            raise  # the module is there but something it imports is not: a real error
        print(f"  skipped: tests/benchmarks/{name}.py is not there", flush=True)
        return name, "skipped", 0.0, []
    figures.RECORDED.clear()
    started = time.monotonic()
    status = "ran"
    try:
        code = module.main([])
        if code:
            status = "failed"
            print(f"  {name} exited with {code}")
    except (Exception, SystemExit) as err:  # one failing benchmark must not stop the others
        status = "failed"
        traceback.print_exc(file=sys.stdout)
        print(f"  {name} failed: {type(err).__name__}: {err}")
    return name, status, time.monotonic() - started, list(figures.RECORDED)


def _summary(outcomes, seconds: float) -> None:
    print(f"\n=== summary ({seconds / 60:.1f} min) ===")
    print(f"{'figure':<72} {'value':>14}  {'target':<14} {'met':<7} baseline (same run)")
    for name, status, took, recorded in outcomes:
        print(f"[{name}] {status} in {took:.0f} s")
        for f in recorded:
            met = "-" if f.met is None else ("yes" if f.met else "NO")
            value = f"{figures.fmt(f.value)} {f.unit}"
            print(f"  {f.name[:70]:<70} {value:>14}  {f.target:<14} {met:<7} {f.baseline}")
    print(flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
