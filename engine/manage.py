"""Container management that is neither starting nor stopping: pause, unpause, prune.

Pausing freezes the container's cgroup (cgroupfs ``Cgroup.freeze``: cgroup.freeze on v2 and
on hybrid hosts' unified mount, freezer.state on v1) and records ``State.Paused``; the
record's Status stays "running", as Docker stores it, and ``ps``/``inspect`` show "paused"
(Docker derives that word from Running + Paused too). The monitor clears Paused when it
records an exit or a new start.
"""

from __future__ import annotations

from ..cgroupfs import CgroupError
from .containers import alive
from .errors import Conflict, EngineError


def _running(engine, ref: str) -> dict:
    cid = engine.containers.resolve(ref)
    rec = engine.containers.load(cid)
    st = rec["State"]
    if st["Status"] != "running" or not alive(st.get("Owner")):
        raise Conflict(f"Container {cid} is not running")
    return rec


def _set_paused(engine, cid: str, paused: bool) -> None:
    rec = engine.containers.load(cid)
    rec["State"]["Paused"] = paused
    engine.containers.save(rec)


def pause(engine, ref: str) -> None:
    cid = engine.containers.resolve(ref)
    with engine.containers.lock(cid):  # not between a stop's check and its SIGKILL
        rec = _running(engine, cid)
        if rec["State"].get("Paused"):
            raise Conflict(f"Container {rec['Id']} is already paused")
        try:
            engine.container_cgroup(rec).freeze()
        except CgroupError as e:
            raise EngineError(f"Cannot pause container {rec['Id']}: {e}") from None
        _set_paused(engine, rec["Id"], True)
        from . import events

        events.container(engine.root, rec, "pause")


def unpause(engine, ref: str) -> None:
    cid = engine.containers.resolve(ref)
    with engine.containers.lock(cid):
        rec = _running(engine, cid)
        cg = engine.container_cgroup(rec)
        if not rec["State"].get("Paused") and not cg.frozen():
            raise Conflict(f"Container {rec['Id']} is not paused")
        try:
            cg.thaw()
        except CgroupError as e:
            raise EngineError(f"Cannot unpause container {rec['Id']}: {e}") from None
        _set_paused(engine, rec["Id"], False)
        from . import events

        events.container(engine.root, rec, "unpause")


def _until(value: str) -> float:
    """A prune ``until=`` value as a Unix time: a duration ago (10m, 2h30m) or a timestamp."""
    import re
    import time

    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", value):
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
        secs = sum(
            float(n) * scale[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|ms|s|m|h)", value)
        )
        return time.time() - secs
    try:
        return float(value)
    except ValueError:
        pass
    import datetime

    try:
        dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EngineError(f"invalid filter 'until={value}'") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return dt.timestamp()


class PruneFilter:
    """Docker's prune filters (``until=``, ``label=``, ``label!=``; AND across them), as
    container and network prune take them: ``matches(created, labels)``."""

    def __init__(self, filters: list[str]) -> None:
        self.until: float | None = None
        self.labels: list[tuple[str, bool]] = []
        for f in filters:
            key, eq, value = f.partition("=")
            if key == "until" and eq:
                self.until = _until(value)
            elif key == "label" and eq:
                self.labels.append((value, True))
            elif key == "label!" and eq:
                self.labels.append((value, False))
            else:
                raise EngineError(f"invalid filter '{key}'")

    def matches(self, created: str, labels: dict[str, str] | None) -> bool:
        from .containers import parse_time

        if self.until is not None:
            when = parse_time(created or "")
            if when is None or when.timestamp() >= self.until:
                return False
        have = labels or {}
        return all(_label_holds(have, spec) == want for spec, want in self.labels)


def prune(engine, filters: list[str]) -> tuple[list[str], int]:
    """Remove every stopped container (created, exited, dead) that the filters keep;
    returns the removed ids and the bytes their writable layers used."""
    from ..drivers.base import DriverError

    keep = PruneFilter(filters)
    engine.reconcile()
    removed: list[str] = []
    reclaimed = 0
    for rec in engine.containers.all():
        st = rec["State"]
        if rec.get("Creating") or st["Status"] == "running" or alive(st.get("Owner")):
            continue  # running, or being created or started by a live pydock right now
        if not keep.matches(rec["Created"], rec["Config"].get("Labels")):
            continue
        try:
            driver = engine.driver(rec["Driver"])
            size = driver.usage(rec["Id"]).size if driver.exists(rec["Id"]) else 0
            engine.remove(rec["Id"])
        except (EngineError, DriverError, OSError) as e:
            print(f"pydock: removing container {rec['Id'][:12]}: {e}")
            continue
        removed.append(rec["Id"])
        reclaimed += size
    return removed, reclaimed


def _label_holds(labels: dict[str, str], spec: str) -> bool:
    k, eq, v = spec.partition("=")
    return k in labels and (not eq or labels[k] == v)
