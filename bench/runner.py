"""Interleaved timing of targets: A B C A B C ..., so drift (thermal, page cache, other load)
hits every target alike; warm-up rounds first, discarded."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from . import phases
from .targets import Target, Unavailable, _last_line


def interleave(names: list[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, name) in the order they are timed."""
    for r in range(rounds):
        for n in names:
            yield r, n


@dataclass
class Result:
    """What one target did in one benchmark: its samples, or why it has none."""

    target: Target
    status: str = "ok"  # ok | missing | failed
    reason: str = ""
    samples_ns: list[int] = field(default_factory=list)
    phases_ns: list[dict[str, int]] = field(default_factory=list)
    failures: int = 0
    #: the image this target runs, when not its default busybox (bench scale's layer images)
    image: str | None = None


def progress(msg: str) -> None:
    sys.stderr.write(f"\r\033[K{msg}" if sys.stderr.isatty() else msg + "\n")
    sys.stderr.flush()


def prepare(targets: Iterable[Target]) -> dict[str, Result]:
    out: dict[str, Result] = {}
    for t in targets:
        res = Result(t)
        progress(f"preparing {t.name} ...")
        try:
            t.prepare()
        except Unavailable as e:
            res.status = "missing" if "not installed" in str(e) else "failed"
            res.reason = str(e)
        out[t.name] = res
    return out


def time_once(
    t: Target, image: str | None = None, timeout: float = 120
) -> tuple[int, str | None, dict | None]:
    """One end-to-end run: (nanoseconds, error or None, pydock trace or None)."""
    argv = t.argv(image)
    if t.trace_file is not None:
        t.trace_file.unlink(missing_ok=True)
    t0 = time.perf_counter_ns()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=t.env, timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return time.perf_counter_ns() - t0, f"timed out after {timeout:.0f}s", None
    t1 = time.perf_counter_ns()
    if p.returncode != 0:
        return t1 - t0, f"exit {p.returncode}: {_last_line(p.stderr)}", None
    trace = phases.read_last(t.trace_file) if t.trace_file is not None else None
    if trace is not None:
        trace = {"marks": trace.get("marks"), "spawned": t0, "reaped": t1}
    return t1 - t0, None, trace


def measure(
    results: dict[str, Result], runs: int, warmup: int, label: str = "", image: str | None = None
) -> list[str]:
    """Warm up, then time every runnable target ``runs`` times, interleaved. A target that
    fails is marked failed with the error and skipped from then on. Returns the order timed."""
    names = [n for n, r in results.items() if r.status == "ok"]
    order: list[str] = []
    total = (warmup + runs) * len(names)
    done = 0
    for rnd, name in interleave(names, warmup + runs):
        res = results[name]
        done += 1
        if res.status != "ok":
            continue
        if done % max(1, len(names)) == 0 or done == total:
            phase = "warm-up" if rnd < warmup else "run"
            progress(f"{label}{phase} round {rnd + 1}/{warmup + runs} ({done}/{total} runs)")
        ns, err, trace = time_once(res.target, res.image or image)
        res.target.settle()
        if err is not None:
            res.status, res.failures = "failed", res.failures + 1
            res.reason = f"{'warm-up' if rnd < warmup else 'run'} {rnd + 1}: {err}"
            continue
        if rnd < warmup:
            continue
        order.append(name)
        res.samples_ns.append(ns)
        if trace is not None:
            res.phases_ns.append(phases.durations(trace, trace["spawned"], trace["reaped"]))
    progress(f"{label}done")
    return order
