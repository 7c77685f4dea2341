"""Benchmarks of the training job against the bare libraries doing the same work.

Why ratios and not seconds: this machine has two cores and is shared (tests run beside the
benchmarks), so an absolute time says more about the neighbours than about creditgov. Each
benchmark therefore runs creditgov and the bare library side by side in one process,
interleaved (a, b, a, b, ...), and reports the ratio of the medians; a burst of load then
hits both sides alike instead of one.

Benchmarks are not tests: nothing here asserts, they measure and report. A benchmark only
refuses to report (raises) when its two sides turn out not to do the same work, because then
the ratio would mean nothing.

One benchmark per module (fit, job, accuracy, drift, shap_cost, serving, team_tuning), each
with the entry point `bench(context) -> list[BenchResult]`; what they share is in
`benchmarks.harness`, whose timing helpers are re-exported here. `python -m benchmarks`
runs them all (see `benchmarks.__main__`).
"""

from __future__ import annotations

from benchmarks.harness import BenchResult, Samples, interleave

__all__ = ["BenchResult", "Samples", "interleave"]
