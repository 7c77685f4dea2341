"""Drift check of a batch against a stored profile, next to a bare numpy PSI of the same data.

creditgov side: ``evaluation.drift.compare(profile, batch)`` -- PSI with a missing bin, KS from
the 101 reference percentiles, missing shares, the drifted list -- for every column.
Bare side: what one would write by hand for the PSI alone: per column
``np.searchsorted(edges, x)`` + a missing bin + ``np.bincount`` + the PSI sum, on the same
profile's edges and shares. Both read the same DataFrame columns, and their PSI values must
agree, or the benchmark raises instead of reporting a ratio.

Targets (from the drift issue): creditgov's median time <= 1.2 x the bare median, and its peak
extra memory <= 2 x the batch's own size (``DataFrame.memory_usage``).

Peak memory is measured with ``tracemalloc``, not ``resource``: numpy reports its array
buffers to tracemalloc, and ``tracemalloc.reset_peak`` lets us take the peak of one call
alone, on top of data that already exists. ``resource.getrusage`` only knows the process's
lifetime high-water mark, which here is set by generating the data, so it could not see
either side. tracemalloc slows allocation down, so memory is measured in a separate, untimed
call of each side.

The data mixes the shapes credit features have: normal, lognormal (incomes), integer counts
(many values exactly on a bin edge) and a mass at zero (utilisation), with missing values in
every third column; a quarter of the columns are shifted in the batch.

``python -m benchmarks.drift [--rows N] [--features K] [--repeats R]`` prints a table.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmarks import BenchResult, interleave
from evaluation.drift import PSI_FLOOR, compare
from evaluation.drift_reference import ReferenceProfile, build_reference

if TYPE_CHECKING:
    from benchmarks.harness import Context

__all__ = ["bench", "main", "run"]

TIME_TARGET = 1.2
MEMORY_TARGET = 2.0


def make_frame(rows: int, features: int, *, seed: int, shifted: bool) -> pd.DataFrame:
    """Synthetic numeric features of four shapes; `shifted` moves every fourth column."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for j in range(features):
        shape = j % 4
        move = shifted and j % 4 == (j // 4) % 4
        if shape == 0:
            x = rng.normal(0.5 if move else 0.0, 1.0, rows)
        elif shape == 1:
            x = rng.lognormal(10.5 if move else 10.0, 0.8, rows)
        elif shape == 2:
            x = rng.poisson(4.0 if move else 3.0, rows).astype(np.float64)
        else:
            x = np.where(rng.random(rows) < (0.3 if move else 0.5), 0.0, rng.random(rows))
        if j % 3 == 0:
            x[rng.random(rows) < 0.03] = np.nan
        columns[f"f{j:02d}"] = x
    return pd.DataFrame(columns)


def bare_psi(profile: ReferenceProfile, batch: pd.DataFrame) -> dict[str, float]:
    """PSI per column, by hand: searchsorted into the reference edges, a missing bin, bincount."""
    out = {}
    for feature in profile.features:
        x = batch[feature.name].to_numpy()
        edges = np.asarray(feature.edges)
        at = np.searchsorted(edges, x, side="left")  # right-closed bins, as creditgov's
        at[np.isnan(x)] = edges.size + 1
        counts = np.bincount(at, minlength=edges.size + 2)
        actual = np.maximum(counts / x.size, PSI_FLOOR)
        expected = np.maximum(np.array([*feature.shares, feature.missing_share]), PSI_FLOOR)
        out[feature.name] = float(np.sum((actual - expected) * np.log(actual / expected)))
    return out


def _peak_bytes(fn: Callable[[], object]) -> int:
    """Largest memory allocated by one call of `fn` above what existed before it."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def run(rows: int = 1_000_000, features: int = 50, *, repeats: int = 5) -> dict[str, Any]:
    """Time `compare` against the bare PSI, interleaved; measure both sides' peak memory.

    Returns ``BenchResult.to_json()`` of the time ratio; the memory figures, the samples and
    the reference build time are in ``details``.
    """
    reference = make_frame(rows, features, seed=1, shifted=False)
    t0 = time.perf_counter()
    profile = build_reference(reference, categorical=())
    build_s = time.perf_counter() - t0
    del reference
    batch = make_frame(rows, features, seed=2, shifted=True)
    data_bytes = int(batch.memory_usage(index=False).sum())

    ours = compare(profile, batch)
    theirs = bare_psi(profile, batch)
    worst = max(abs(ours.psi[k] - theirs[k]) for k in theirs)
    if worst > 1e-9:
        raise RuntimeError(f"the two sides disagree on PSI by up to {worst:.3g}; no ratio")

    sides: Mapping[str, Callable[[], object]] = {
        "creditgov": lambda: compare(profile, batch),
        "bare": lambda: bare_psi(profile, batch),
    }
    samples = interleave(sides, repeats)
    memory = {name: _peak_bytes(fn) for name, fn in sides.items()}
    mine, bare = samples["creditgov"].median, samples["bare"].median
    memory_ratio = memory["creditgov"] / data_bytes
    result = BenchResult(
        name="drift",
        title=f"drift check, {rows:,} rows x {features} numeric features",
        kind="ratio",
        creditgov=mine,
        reference=bare,
        value=mine / bare,
        target=TIME_TARGET,
        unit="s",
        includes={
            "creditgov": "compare(): PSI with missing bin, KS, missing shares, drifted list",
            "bare": "numpy searchsorted + missing bin + bincount + PSI, same edges and shares",
        },
        details={
            "rows": rows,
            "features": features,
            "repeats": repeats,
            "samples": {name: s.to_json() for name, s in samples.items()},
            "cpu_ratio": samples["creditgov"].cpu_median / samples["bare"].cpu_median,
            "min_ratio": min(samples["creditgov"].wall) / min(samples["bare"].wall),
            "data_bytes": data_bytes,
            "peak_bytes": memory,
            "memory_method": "tracemalloc (numpy buffers are traced; peak of one call)",
            "memory_ratio": memory_ratio,
            "memory_target": MEMORY_TARGET,
            "memory_passed": memory_ratio <= MEMORY_TARGET,
            "build_reference_s": build_s,
            "psi_max": ours.psi_max,
            "drifted": len(ours.drifted),
        },
    )
    return result.to_json()


def bench(context: Context) -> list[BenchResult]:
    """`python -m benchmarks --only drift`: `run` at its default size."""
    return [BenchResult.from_json(run(repeats=context.few_repeats))]


def _table(report: Mapping[str, Any]) -> str:
    d = report["details"]
    mb = 1024 * 1024
    lines = [
        report["title"],
        f"{'side':<10} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MiB':>9} {'x data':>7}",
    ]
    for name in ("creditgov", "bare"):
        s = d["samples"][name]
        peak = d["peak_bytes"][name]
        lines.append(
            f"{name:<10} {s['median_s']:>9.3f} {s['min_s']:>7.3f} {s['max_s']:>7.3f} "
            f"{peak / mb:>9.1f} {peak / d['data_bytes']:>7.3f}"
        )

    def verdict(ok: bool) -> str:
        return "ok" if ok else "OVER TARGET"

    lines += [
        f"time ratio   {report['value']:.3f} (target <= {report['target']}) "
        f"{verdict(bool(report['passed']))}; ratio of fastest runs {d['min_ratio']:.3f}, "
        f"of CPU medians {d['cpu_ratio']:.3f}",
        f"peak memory  {d['memory_ratio']:.3f} x data of {d['data_bytes'] / mb:.0f} MiB "
        f"(target <= {d['memory_target']}) {verdict(d['memory_passed'])}; {d['memory_method']}",
        f"build_reference {d['build_reference_s']:.2f} s (once, not compared); "
        f"psi_max {d['psi_max']:.3f}, {d['drifted']} drifted features",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.drift", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(_table(run(args.rows, args.features, repeats=args.repeats)))


if __name__ == "__main__":
    main()
