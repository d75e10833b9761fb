"""The figures a benchmark run reports, each with its target and its baseline.

The machine is shared and noisy, so every figure is printed next to a
baseline measured in the same run (e.g. a raw etcd put->watch round trip):
the ratio says more than the absolute value. Each bench module prints its
figures as it goes; the runner (run_all) collects them for its summary table.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    target: str          # e.g. "<= 20 ms"; "" when there is none
    met: bool | None     # None: no target, or not comparable
    baseline: str = ""   # e.g. "etcd put->watch 1.2 ms (x8.3)"


# Every figure reported in this process, in order; run_all reads and clears it.
RECORDED: list[Figure] = []


def report(bench: str, name: str, value: float, unit: str, *, limit: float | None = None,
           higher_is_better: bool = False, baseline: float | None = None,
           baseline_name: str = "") -> Figure:
    """Print one figure line and record it. `limit` is the target bound."""
    if limit is None:
        target, met = "", None
    elif higher_is_better:
        target, met = f">= {fmt(limit)} {unit}", value >= limit
    else:
        target, met = f"<= {fmt(limit)} {unit}", value <= limit
    base = ""
    if baseline is not None:
        ratio = f"x{value / baseline:.1f}" if baseline > 0 else "n/a"
        base = f"{baseline_name} {fmt(baseline)} {unit} ({ratio})"
    figure = Figure(bench, name, value, unit, target, met, base)
    RECORDED.append(figure)
    verdict = "" if met is None else ("  met" if met else "  NOT met")
    line = f"  {name}: {fmt(value)} {unit}"
    if target:
        line += f"  target {target}{verdict}"
    if base:
        line += f"  baseline {base}"
    print(line, flush=True)
    return figure


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(value: float) -> str:
    """A figure with the digits that matter: 1,234 / 12.35 / 0.0123."""
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
