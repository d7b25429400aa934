"""Medians over the rounds, their spread, ratios to `ssh -N -R`, and the targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .rig import DIRECT, IN_PROCESS, SSH

Round = dict[str, dict[str, float]]  # route: figure: value


@dataclass(frozen=True)
class Target:
    """A figure of the in-process route against another route's, as a ratio, or a bound."""

    figure: str
    bound: float
    higher_is_better: bool
    ratio: bool = True  # against the reference route; otherwise the value itself
    against: str | None = None  # the reference route's figure, when it has another name
    reference: str = SSH

    def value(self, medians: Round) -> float | None:
        """What is compared with the bound; None when the reference measured nothing."""
        mine = medians[IN_PROCESS][self.figure]
        if not self.ratio:
            return mine
        reference = medians[self.reference][self.against or self.figure]
        # A transfer too small to measure (BENCH_MIB=1) can round a CPU figure to zero.
        return mine / reference if reference else None

    def describe(self) -> str:
        """The target as the issue states it."""
        unit = f"x {self.reference}" if self.ratio else ""
        sign = ">=" if self.higher_is_better else "<="
        return f"{self.figure} {sign} {self.bound:g}{unit}"


TARGETS = (
    Target("down MB/s", 0.8, higher_is_better=True),
    Target("HA CPU s/GiB", 1.5, higher_is_better=False, against="ssh CPU s/GiB"),
    Target("keep-alive p50 ms", 1.15, higher_is_better=False),
    # In process, Home Assistant does its own work and the SSH work on one thread: measured
    # against its own figure with no tunnel, not against ssh's separate process.
    Target("50x100 req/s", 0.8, higher_is_better=True, reference=DIRECT),
    Target("new-conn > 30 ms", 0, higher_is_better=False, ratio=False),
    Target("loop lag p99 ms", 20, higher_is_better=False, ratio=False),
)


def medians(rounds: list[Round]) -> Round:
    """Each figure's median over the rounds."""
    return {
        route: {figure: statistics.median(r[route][figure] for r in rounds) for figure in figures}
        for route, figures in rounds[0].items()
    }


def print_report(rounds: list[Round]) -> None:
    """One line a figure, one column a route: median, spread over the rounds, ratio to ssh."""
    middle = medians(rounds)
    routes = list(middle)
    figures = list(dict.fromkeys(f for values in middle.values() for f in values))
    print(f"\nMedians of {len(rounds)} rounds [lowest-highest] (ratio to {SSH})")
    print(f"{'figure':20}" + "".join(f"{route:>34}" for route in routes))
    for figure in figures:
        cells = [_cell(rounds, middle, route, figure) for route in routes]
        print(f"{figure:20}" + "".join(f"{cell:>34}" for cell in cells))
    print("\nTargets for the in-process route:")
    for target in TARGETS:
        print("  " + _verdict(target, middle))


def _cell(rounds: list[Round], middle: Round, route: str, figure: str) -> str:
    if figure not in middle[route]:
        return "-"
    values = [r[route][figure] for r in rounds]
    text = f"{middle[route][figure]:.4g} [{min(values):.3g}-{max(values):.3g}]"
    reference = middle[SSH].get(figure)
    if route != SSH and reference:
        text += f" ({middle[route][figure] / reference:.2f}x)"
    return text


def _verdict(target: Target, middle: Round) -> str:
    value = target.value(middle)
    if value is None:
        return f"n/a     {target.describe()}: the reference measured 0"
    met = value >= target.bound if target.higher_is_better else value <= target.bound
    shown = f"{value:.2f}x" if target.ratio else f"{value:.3g}"
    if met:
        return f"met     {target.describe()}: {shown}"
    if target.bound:
        side = "below" if target.higher_is_better else "above"
        miss = f"{abs(value / target.bound - 1) * 100:.0f} % {side} the bound"
    else:
        miss = f"{value:.3g} over"
    return f"MISSED  {target.describe()}: {shown} ({miss})"
