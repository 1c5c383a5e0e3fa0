"""The container a start worker prepared before its ``run`` arrived (engine/starter.py).

A worker makes a container id, its cgroup and its PID 1 (:func:`pydock.nsutil.spawn.prefork`,
already moved into the cgroup) while idle; the ``run`` it then serves takes them through
this module: :func:`container_id` for the record, :func:`take` for the start. Anything the
run did not use is undone by the worker. In a process that is not a worker, ``current`` is
None and both fall back to the ordinary path. Stdlib only: this is on the start path.
"""

from __future__ import annotations

import os

MAX_POOL = 16
DEFAULT_IDLE = 1800.0


class Prepared:
    """A container id with its cgroup (``pydock.cgroupfs.Cgroup``) and held init."""

    __slots__ = ("cid", "cgroup", "held", "id_taken")

    def __init__(self, cid: str, cgroup, held) -> None:
        self.cid = cid
        self.cgroup = cgroup
        self.held = held  # pydock.nsutil.spawn.Held, None once handed to spawn()
        self.id_taken = False

    def discard(self) -> None:
        """Kill the unused init and remove the unused cgroup."""
        if self.held is not None:
            self.held.discard()
            self.held = None
        if self.cgroup is not None:
            self.cgroup.destroy()
            self.cgroup = None

    def forget(self) -> None:
        """In a forked copy of the worker: close the init's channels without touching it
        (it belongs to the worker)."""
        if self.held is not None:
            self.held.chan.close()
            os.close(self.held.err_r)
            os.close(self.held.sync_w)
            self.held = None
        self.cgroup = None


#: what this process's worker prepared, if it is one
current: Prepared | None = None

#: set by a worker while it serves: ``answer_early(engine, rec, code, cgroup)`` gives
#: the client the exit code of its ``run --rm`` once the container's record is gone,
#: before the teardown (engine/monitor.py calls it; engine/starter.py journals it first)
answer_early = None
#: whether the teardown that followed an early answer completed
torn_down = False


def alive(key: str) -> bool:
    """Whether worker ``<pid>-<start>`` runs. A zombie does not: a worker killed after its
    creator exited waits for init (or a subreaper) to reap it, which may take a while,
    and meanwhile the pool must count it out and ``--stop`` need not wait for it."""
    pid, _, start = key.partition("-")
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            stat = f.read()
    except (OSError, ValueError):
        return False
    fields = stat[stat.rindex(b")") + 2 :].split()
    return fields[0] != b"Z" and fields[19].decode() == start


def settle_teardowns(root: str, timeout: float = 10.0) -> None:
    """Wait until no container layer of ``root`` is still being torn down after an early
    answer (engine/starter.py), and finish the teardowns of workers that died: an image
    layer must not be removed from under them (overlay2 refuses while a child exists).
    Called before image layers are removed; the common case is one listdir."""
    import time

    d = os.path.join(root, "starters")
    deadline = time.monotonic() + timeout
    while True:
        try:
            keys = [n[: -len(".teardown")] for n in os.listdir(d) if n.endswith(".teardown")]
        except OSError:
            return
        if not keys:
            return
        if not any(alive(k) for k in keys):
            from .starter import sweep

            sweep(root)
            return
        if time.monotonic() >= deadline:
            return
        time.sleep(0.005)


def pool_settings(root: str) -> tuple[int, float]:
    """(start-pool size, idle seconds) from ``<root>/daemon.json``: no pool when absent
    or invalid (engine/starter.py)."""
    import json

    try:
        with open(os.path.join(root, "daemon.json"), "rb") as f:
            cfg = json.load(f)
        want = int(cfg.get("start-pool") or 0)
        idle = float(cfg.get("start-pool-idle") or DEFAULT_IDLE)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0, DEFAULT_IDLE
    return max(0, min(want, MAX_POOL)), max(idle, 1.0)


def pool_size(root: str) -> int:
    return pool_settings(root)[0]


def container_id() -> str:
    """A new container id: the prepared one, once, else 32 random bytes in hex (what
    secrets.token_hex does, without its imports)."""
    p = current
    if p is not None and not p.id_taken:
        p.id_taken = True
        return p.cid
    return os.urandom(32).hex()


def drop() -> None:
    """Undo what was prepared before a start that happens in another process (a monitor,
    for ``run -d``/``-t``): that process makes the container's cgroup itself, by the same
    name.

    A worker's signals, held back for the container's proxy (starter._serve), are its
    own again: a ``-t`` relay resizes on SIGWINCH, and a monitor forked now would keep the
    blocked mask for life (it survives execve, signal(7)).
    """
    if current is not None:
        current.discard()
        import signal

        from .runtime import FORWARDED_SIGNALS

        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)


def take(cgroups_path: str, spec: dict, pdeathsig: int | None):
    """The prepared ``(cgroup, held init or None)`` if ``spec`` names the prepared cgroup
    (its id's, no --cgroup-parent), else None.

    An init that does not suit the spec's namespaces is discarded here (the start forks a
    fresh one into the same, already made cgroup). One under a memory limit serves: the
    pages it owns ahead (nsutil/memory.py) were taken before the worker moved it into the
    cgroup, so they are charged to the worker's (spawn.prefork), not to the container's.
    """
    p = current
    if p is None or p.cgroup is None or p.cgroup.path != cgroups_path:
        return None
    held, p.held = p.held, None
    if held is not None and not held.usable_for(spec, pdeathsig):
        held.discard()
        held = None
    cg, p.cgroup = p.cgroup, None
    return cg, held
