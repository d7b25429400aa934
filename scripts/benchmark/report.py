"""Medians over the rounds, their spread, ratios to `ssh -N -R`, and the targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .rig import BASELINE, DIRECT, IN_PROCESS, SSH, route_name

Round = dict[str, dict[str, float]]  # route: figure: value


@dataclass(frozen=True)
class Target:
    """A figure of an in-process route against another route's of its scheme, or a bound."""

    scheme: str
    figure: str
    bound: float
    higher_is_better: bool
    ratio: bool = True  # against the reference route; otherwise the value itself
    against: str | None = None  # the reference route's figure, when it has another name
    reference: str = SSH

    def value(self, medians: Round, kind: str = IN_PROCESS) -> float | None:
        """What is compared with the bound; None when the reference measured nothing."""
        mine = medians[route_name(self.scheme, kind)][self.figure]
        if not self.ratio:
            return mine
        reference = medians[route_name(self.scheme, self.reference)][self.against or self.figure]
        # A transfer too small to measure (BENCH_MIB=1) can round a CPU figure to zero.
        return mine / reference if reference else None

    def describe(self) -> str:
        """The target as the issue states it."""
        unit = f"x {self.reference}" if self.ratio else ""
        sign = ">=" if self.higher_is_better else "<="
        return f"{self.scheme} {self.figure} {sign} {self.bound:g}{unit}"


def _over_both(figure: str, bound: float, higher_is_better: bool) -> tuple[Target, ...]:
    return tuple(Target(scheme, figure, bound, higher_is_better) for scheme in ("http", "https"))


TARGETS = (
    Target("http", "down MB/s", 0.8, higher_is_better=True),
    Target("http", "HA CPU s/GiB", 1.5, higher_is_better=False, against="ssh CPU s/GiB"),
    # In process, Home Assistant does its own work and the SSH work on one thread: measured
    # against its own figure with no tunnel, not against ssh's separate process.
    Target("http", "50x100 req/s", 0.8, higher_is_better=True, reference=DIRECT),
    Target("http", "first byte ms", 1.5, higher_is_better=False),
    Target("https", "down MB/s", 1.0, higher_is_better=True),
    Target("https", "50x100 req/s", 1.0, higher_is_better=True),
    *_over_both("keep-alive p50 ms", 1.0, higher_is_better=False),
    *_over_both("up MB/s", 1.0, higher_is_better=True),
    *(
        Target(scheme, "new-conn > 30 ms", 0, higher_is_better=False, ratio=False)
        for scheme in ("http", "https")
    ),
    *(
        Target(scheme, "loop lag p99 ms", 20, higher_is_better=False, ratio=False)
        for scheme in ("http", "https")
    ),
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
    print(f"\nMedians of {len(rounds)} rounds [lowest-highest] (ratio to its scheme's {SSH})")
    for scheme in dict.fromkeys(route.partition(":")[0] for route in routes):
        mine = [route for route in routes if route.startswith(f"{scheme}:")]
        print(f"\n{'figure':20}" + "".join(f"{route:>36}" for route in mine))
        for figure in figures:
            cells = [_cell(rounds, middle, scheme, route, figure) for route in mine]
            print(f"{figure:20}" + "".join(f"{cell:>36}" for cell in cells))
    print("\nTargets for the in-process routes:")
    for target in TARGETS:
        if target.figure in middle.get(route_name(target.scheme, IN_PROCESS), {}):
            print("  " + _verdict(target, middle))
            if route_name(target.scheme, BASELINE) in middle:
                print("    (baseline: " + _verdict(target, middle, BASELINE) + ")")


def _cell(rounds: list[Round], middle: Round, scheme: str, route: str, figure: str) -> str:
    if figure not in middle[route]:
        return "-"
    values = [r[route][figure] for r in rounds]
    text = f"{middle[route][figure]:.4g} [{min(values):.3g}-{max(values):.3g}]"
    ssh = route_name(scheme, SSH)
    reference = middle.get(ssh, {}).get(figure)
    if route != ssh and reference:
        text += f" ({middle[route][figure] / reference:.2f}x)"
    return text


def _verdict(target: Target, middle: Round, kind: str = IN_PROCESS) -> str:
    value = target.value(middle, kind)
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
