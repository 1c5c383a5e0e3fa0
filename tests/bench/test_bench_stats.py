"""Statistics, interleaving and phase arithmetic of the harness, against known inputs."""

from __future__ import annotations

import pytest
from pydock.bench import phases, stats
from pydock.bench.runner import interleave


def test_summary_of_known_samples():
    samples = [i * 1_000_000 for i in range(1, 101)]  # 1 .. 100 ms
    s = stats.summarize(samples)
    assert s["n"] == 100
    assert s["min_ms"] == 1.0 and s["max_ms"] == 100.0
    assert s["p50_ms"] == pytest.approx(50.5)  # linear interpolation between 50 and 51
    assert s["p90_ms"] == pytest.approx(90.1)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["mean_ms"] == pytest.approx(50.5)


def test_summary_of_nothing_is_none():
    assert stats.summarize([]) is None


def test_ratios_below_one_mean_faster():
    fast = stats.summarize([10_000_000] * 5)
    slow = stats.summarize([40_000_000] * 5)
    r = stats.ratios({"pydock/overlay2": fast, "runc": slow, "docker": None},
                     ["pydock/overlay2"], ["runc", "docker"])  # fmt: skip
    assert r["pydock/overlay2"]["runc"] == {"p50": 0.25, "p90": 0.25, "p99": 0.25}
    assert r["pydock/overlay2"]["docker"] == {"p50": None, "p90": None, "p99": None}


def test_interleaving_is_round_robin():
    assert list(interleave(["A", "B", "C"], 2)) == [
        (0, "A"), (0, "B"), (0, "C"), (1, "A"), (1, "B"), (1, "C")]  # fmt: skip


def test_phases_add_up_and_missing_marks_fold_into_the_next():
    trace = {"marks": [["imports", 110], ["cmd_run", 150], ["layer", 190], ["exit", 400]]}
    d = phases.durations(trace, spawned_ns=100, reaped_ns=450)
    assert sum(d.values()) == 350
    assert d[phases.PHASES["imports"]] == 10
    # "image" and "record" are missing: their time is in the phase ending at "layer"
    assert d[phases.PHASES["layer"]] == 40
    assert d[phases.PHASES["reaped"]] == 50
    assert list(d) == [phases.PHASES[m] for m in ("imports", "cmd_run", "layer", "exit", "reaped")]


def test_median_phases():
    m = stats.median_phases([{"a": 1_000_000, "b": 3_000_000}, {"a": 3_000_000}])
    assert m == {"a": 2.0, "b": 3.0}
