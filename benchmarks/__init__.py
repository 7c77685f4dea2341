"""Benchmarks of the training job against the bare libraries doing the same work.

Why ratios and not seconds: this machine has two cores and is shared (tests run beside the
benchmarks), so an absolute time says more about the neighbours than about creditgov. Each
benchmark therefore runs creditgov and the bare library side by side in one process,
interleaved (a, b, a, b, ...), and reports the ratio of the medians; a burst of load then
hits both sides alike instead of one.

Benchmarks are not tests: nothing here asserts, they measure and report. A benchmark only
refuses to report (raises) when its two sides turn out not to do the same work, because then
the ratio would mean nothing.

`python -m benchmarks` runs them all (see `benchmarks.__main__`).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["BenchResult", "Samples", "interleave"]


@dataclass(frozen=True)
class BenchResult:
    """One row of the report: creditgov's figure next to the reference's, and the verdict.

    `kind` says how to read it: "ratio" is creditgov median / bare median (lower is better,
    target is the largest acceptable ratio); "gap" is reference - creditgov on a score such
    as AUC (target is the largest acceptable gap). `target` None marks an informational row.
    """

    name: str
    title: str
    kind: Literal["ratio", "gap"]
    creditgov: float
    reference: float
    value: float
    target: float | None
    unit: str
    includes: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "creditgov": self.creditgov,
            "reference": self.reference,
            "value": self.value,
            "target": self.target,
            "passed": self.passed,
            "unit": self.unit,
            "includes": dict(self.includes),
            "details": dict(self.details),
        }


@dataclass
class Samples:
    """Wall and CPU seconds of each repetition of one side, in the order they ran.

    CPU time is kept beside wall time because it is less sensitive to a neighbour taking
    a core (though LightGBM's OpenMP threads spin while they wait, so it is not immune).
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def to_json(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "min_s": min(self.wall),
            "max_s": max(self.wall),
            "wall_s": self.wall,
            "cpu_median_s": self.cpu_median,
            "cpu_s": self.cpu,
        }


def interleave(
    sides: Mapping[str, Callable[[], object]],
    repeats: int,
    *,
    on_sample: Callable[[str, int, float], None] | None = None,
) -> dict[str, Samples]:
    """Run every side once per round, in the given order, `repeats` rounds; time each call.

    A garbage collection before each call keeps one side's garbage from being collected on
    the other side's clock.
    """
    out = {name: Samples() for name in sides}
    for round_ in range(repeats):
        for name, fn in sides.items():
            gc.collect()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            fn()
            wall = time.perf_counter() - wall0
            out[name].wall.append(wall)
            out[name].cpu.append(time.process_time() - cpu0)
            if on_sample is not None:
                on_sample(name, round_, wall)
    return out
