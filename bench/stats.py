"""Order statistics of latency samples, and ratios between targets (numpy).

Percentiles use numpy's default linear interpolation, so p50 of an even-sized sample is the
mean of the two middle values, as most benchmark tools report it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 90, 99)


def summarize(samples_ns: Sequence[int]) -> dict[str, float | int] | None:
    """p50/p90/p99/min/max/mean in milliseconds and the sample count; None if empty."""
    if len(samples_ns) == 0:
        return None
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(a, PERCENTILES)
    return {
        "n": int(a.size),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "mean_ms": float(a.mean()),
    }


def ratio(numerator: dict | None, denominator: dict | None, key: str = "p50_ms") -> float | None:
    """numerator[key] / denominator[key]; None when either side has no numbers."""
    if not numerator or not denominator or not denominator.get(key):
        return None
    return float(numerator[key]) / float(denominator[key])


def ratios(
    summaries: dict[str, dict | None], mine: list[str], others: list[str]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """{mine: {other: {"p50": x, "p90": y, "p99": z}}}: below 1 means ``mine`` is faster."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for m in mine:
        row = {}
        for o in others:
            mo = (summaries.get(m), summaries.get(o))
            row[o] = {f"p{p}": ratio(*mo, f"p{p}_ms") for p in PERCENTILES}
        out[m] = row
    return out


def median_phases(samples: list[dict[str, int]]) -> dict[str, float]:
    """Median duration (ms) of every phase over the samples that recorded it, in the order
    phases first appear."""
    names: dict[str, None] = {}
    for s in samples:
        names.update(dict.fromkeys(s))
    out = {}
    for name in names:
        vals = [s[name] for s in samples if name in s]
        out[name] = float(np.median(np.asarray(vals, dtype=np.float64))) / 1e6
    return out
