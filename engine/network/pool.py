"""A pool of ready network namespaces per bridge network, so a start needs no netlink.

Making a container's network costs ~25 ms of namespace and veth work plus ~100 ms of
pyroute2 imports. With ``"netns-pool": N`` in ``<root>/daemon.json`` each bridge network
keeps up to N entries made in advance: a named namespace ``<root>/netns/pool-<hex>`` with
lo up and ``eth0`` (address leased from the IPAM, MAC, MTU, default route), its veth peer
``vp<hex>0`` up on the bridge. A start claims one by moving its record from the network's
``Pool`` list to the container's entry under the store lock (stdlib only) and joins it by
path. At teardown the namespace goes back to the pool if the container can have left
nothing in it (:func:`recyclable`, :func:`give_back`): sequential starts then reuse a
few namespaces and nothing is made or destroyed. Otherwise a replacement is made by
:func:`refill`, in a background process forked once the container has started
(:func:`refill_after_start`) or after its teardown, which waits for the starting command
to exit before it works.

Crash safety. An entry is added to ``Pool`` with ``"Pending": true`` (its address leased,
so no start can take that address) before any kernel work, and loses the flag only after
its namespace is complete; starts never claim pending entries. Every pool writer
(:func:`refill`, ``network rm``, ``network prune``) first takes ``<root>/network/pool.lock``,
an flock the kernel drops with a dead holder: so whoever holds it knows that any pending
entry it sees belongs to a refill that died, and destroys it (:func:`reconcile_locked`),
along with namespace files under ``<root>/netns`` that no record names.

A claim adds one to the network's ``PoolDebt``, an entry given back takes one off, an
empty pool sets it to N. Refill makes entries only while there is debt and room, and
``prune``/``rm`` zero it, so a refill that runs after the pool was drained does not
bring it back.

Lifecycle: a non-empty pool keeps the default bridge up after its last container (else
every sequential ``run --rm`` would find it empty); ``pydock network prune`` drains every
pool and brings idle bridges down, ``network rm`` drains that network's pool.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..fsutil import FileLock
from . import rtnl
from .config import NetConfig

#: how long the background refill waits for a still running starter (seconds)
REFILL_DELAY = 1.0

#: network names a start in this process took from (or found empty) and wants refilled
_wanted: set[tuple[str, str]] = set()


def pool_lock(cfg: NetConfig) -> FileLock:
    cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return FileLock(cfg.state_dir / "pool.lock")


def entries(net: dict) -> list[dict]:
    return net.setdefault("Pool", [])


def destroy(entry: dict) -> None:
    """Unmount and unlink the entry's namespace: the kernel frees it with its veth pair
    (deleting a namespace deletes its veth devices and so their peers; veth(4))."""
    from .links import remove_netns

    remove_netns(entry["NetNS"])


def claim(net: dict, cfg: NetConfig, recycle: bool = False) -> dict | None:
    """Take a complete entry for a start (store lock held); None if the pool is empty.
    Entries whose devices vanished (a reboot, someone's ``ip link del``) are dropped.

    The claim is owed back (``PoolDebt``), but a refill is asked for only if the entry
    is not expected back (``recycle``: see :func:`recyclable`) or the pool fell below
    half: a sequence of short runs then reuses the same few namespaces and forks no
    refill at all; teardown asks for one if the entry did not come back after all."""
    pool = entries(net)
    while True:
        ready = [e for e in pool if not e.get("Pending")]
        if not ready:
            want_full(net, cfg)
            return None
        entry = ready[0]
        pool.remove(entry)
        if rtnl.link_exists(entry["HostVeth"]) and os.path.exists(entry["NetNS"]):
            net["PoolDebt"] = min(net.get("PoolDebt", 0) + 1, cfg.pool_size)
            if not recycle or len(ready) - 1 < max(1, cfg.pool_size // 2):
                _wanted.add((str(cfg.root), net["Name"]))
            return entry
        destroy(entry)


#: capabilities that let a container change its network namespace for whoever comes next:
#: links, addresses, routes, rules, sysctls (NET_ADMIN), or remount /proc/sys (SYS_ADMIN)
_NS_CHANGING_CAPS = ("CAP_NET_ADMIN", "CAP_SYS_ADMIN")


def recyclable(spec: dict) -> bool:
    """Whether a container run by ``spec`` leaves its network namespace as the pool made
    it, so teardown may hand it to the next start (:func:`give_back`).

    What outlives a container's processes in a namespace it does not own is what they
    configured: links, addresses, routes, neighbours, nftables/xfrm state and net.*
    sysctls, all of which need CAP_NET_ADMIN over the namespace's user namespace (the
    host's; a container's own user namespace grants nothing over it:
    user_namespaces(7)). The one exception is a net.* sysctl, whose file root may also
    write by its mode bits (net/sysctl_net.c net_ctl_permissions), so /proc/sys must be
    read-only and not remountable (no CAP_SYS_ADMIN), no other procfs may be reachable
    (a bind mount of the host's / or /proc: its sys/net files act on the writer's own
    namespace) and the spec must set no net.* sysctl itself. What the kernel learned
    from the container's traffic is checked or cleared at teardown (:func:`_scrub`):
    sockets left behind, TCP metrics. Neighbour entries stay: they hold bridge peers'
    addresses with MACs derived from them (links.mac_for), so they are never stale."""
    caps = (spec.get("process") or {}).get("capabilities") or {}
    if any(c in held for held in caps.values() for c in _NS_CHANGING_CAPS):
        return False
    linux = spec.get("linux") or {}
    if any(k.startswith("net.") or k.startswith("net/") for k in linux.get("sysctl") or {}):
        return False
    for m in spec.get("mounts") or ():
        source = os.path.normpath(m.get("source") or "")
        if m.get("type") == "proc" and m.get("destination") != "/proc":
            return False
        if source == "/" or source == "/proc" or source.startswith("/proc/"):
            return False
    return "/proc/sys" in (linux.get("readonlyPaths") or ())


def give_back(cfg: NetConfig, st, entry: dict) -> bool:
    """At teardown (store lock held): return a container's pooled namespace to its
    network's pool instead of destroying it, if nothing of the container can be left in
    it; True if it went back. If it was expected back (so :func:`claim` asked for no
    refill) and the pool is owed entries, a refill is wanted now: the caller forks it
    with :func:`refill_after_start` once the lock is released.

    Sequential starts thus reuse a handful of namespaces: none is made or destroyed for
    them, which would otherwise cost the kernel's asynchronous cleanup_net (it holds the
    RTNL lock, which the next start's v1 net_prio cgroup creation takes too:
    net/core/netprio_cgroup.c) and a background refill with pyroute2's imports, both
    competing with the next start for the CPU."""
    pooled = entry.get("Pooled")
    if not pooled or cfg.pool_size <= 0:
        return False
    if _recycle(cfg, st, entry, pooled):
        return True
    if not entry.get("Recycle"):
        return False
    for name in entry.get("Endpoints") or {}:
        net = st.networks.get(name)
        if net is not None and net.get("Up") and net.get("PoolDebt", 0) > 0:
            _wanted.add((str(cfg.root), name))
    return False


def _recycle(cfg: NetConfig, st, entry: dict, pooled: dict) -> bool:
    if not entry.get("Recycle") or entry.get("Shared"):
        return False
    if len(entry.get("Endpoints") or {}) != 1:
        return False  # `network connect` added devices this entry's record does not name
    ((name, ep),) = entry["Endpoints"].items()
    net = st.networks.get(name)
    if net is None or not net.get("Up") or ep.get("HostVeth") != pooled["HostVeth"]:
        return False
    if len(entries(net)) >= cfg.pool_size:
        return False
    if not (rtnl.link_exists(pooled["HostVeth"]) and os.path.exists(pooled["NetNS"])):
        return False
    opens = _scrub(pooled["NetNS"], pooled.get("TcpOpens", 0))
    if opens is None:
        return False
    back = {k: pooled[k] for k in ("NetNS", "HostVeth", "IPAddress", "MacAddress")}
    if opens:
        back["TcpOpens"] = opens
    entries(net).append(back)
    net["PoolDebt"] = max(net.get("PoolDebt", 0) - 1, 0)
    return True


def _scrub(netns: str, opens_before: int) -> int | None:
    """Make ``netns`` fit for the next container and return its count of TCP
    connections ever opened, or None if it is not fit.

    TCP sockets that outlived the container (TIME_WAIT, orphans in FIN_WAIT...) would
    hold its ports against the next one: the namespace's own counters in
    /proc/net/sockstat{,6} say so in O(1) ("inuse" counts hashed sockets, orphans
    included, "tw" the namespace's TIME_WAIT ones; /proc/net/tcp would walk the
    host-wide hash tables, ~2 ms). The TCP metrics it cached per destination, which
    anyone may read, are flushed (rtnl.flush_tcp_metrics), unless the namespace's
    ActiveOpens + PassiveOpens (/proc/net/snmp) did not move since it was last given
    back: without a connection no metrics are made. /proc/thread-self/net follows the
    calling thread's namespace (proc(5)), and a netlink socket stays in the one it was
    made in: one setns(2) there and back."""
    from ...nsutil import syscalls as sc

    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(target, sc.lib.CLONE_NEWNET, netns)
        try:
            text = {}
            for table in ("sockstat", "sockstat6", "snmp"):
                try:
                    with open(f"/proc/thread-self/net/{table}", "rb") as f:
                        text[table] = f.read()
                except FileNotFoundError:  # no IPv6 in this kernel
                    text[table] = b""
            if _tcp_sockets(text["sockstat"] + text["sockstat6"]):
                return None
            opens = _tcp_opens(text["snmp"])
            if opens < 0 or opens != opens_before:
                rtnl.flush_tcp_metrics()
        finally:
            sc.setns(saved, sc.lib.CLONE_NEWNET, "host network namespace")
    finally:
        os.close(target)
        os.close(saved)
    return opens


def _tcp_sockets(sockstat: bytes) -> bool:
    for line in sockstat.splitlines():
        fields = line.split()
        if fields[:1] in ([b"TCP:"], [b"TCP6:"]):
            counts = dict(zip(fields[1::2], fields[2::2], strict=False))
            if counts.get(b"inuse", b"0") != b"0" or counts.get(b"tw", b"0") != b"0":
                return True
    return False


def _tcp_opens(snmp: bytes) -> int:
    """ActiveOpens + PassiveOpens from /proc/net/snmp's "Tcp:" header and value lines
    (IPv6 connections count there too); -1 if absent, which forces a flush."""
    rows = [line.split() for line in snmp.splitlines() if line.startswith(b"Tcp:")]
    if len(rows) < 2:
        return -1
    counts = dict(zip(rows[0][1:], rows[1][1:], strict=False))
    try:
        return int(counts[b"ActiveOpens"]) + int(counts[b"PassiveOpens"])
    except (KeyError, ValueError):
        return -1


def want_full(net: dict, cfg: NetConfig) -> None:
    """Ask for a full pool (an empty one was found, or the bridge just came up)."""
    net["PoolDebt"] = cfg.pool_size
    _wanted.add((str(cfg.root), net["Name"]))


def keeps_up(net: dict, cfg: NetConfig) -> bool:
    """Whether the pool holds the (default) bridge up without containers: it has
    entries, or a refill is owed (its process waits for the starter to exit, after the
    starter's teardown has run)."""
    return bool(net.get("Pool")) or (cfg.pool_size > 0 and net.get("PoolDebt", 0) > 0)


def drain(net: dict, pending_too: bool) -> None:
    """Destroy the network's pooled entries (store lock held; ``pending_too`` only with
    the pool lock held, when pending entries are known to be orphans)."""
    keep = []
    for e in entries(net):
        if e.get("Pending") and not pending_too:
            keep.append(e)
        else:
            destroy(e)
    net["Pool"] = keep
    net["PoolDebt"] = 0


def reconcile_locked(cfg: NetConfig, st) -> None:
    """With the pool lock and the store lock held: destroy pending entries (their
    refill died) and namespace files that neither a container nor the pool names."""
    from .links import remove_netns

    for net in st.networks.values():
        pool = entries(net)
        for e in [e for e in pool if e.get("Pending")]:
            destroy(e)
            pool.remove(e)
    named = {c.get("NetNS") for c in st.containers.values()}
    named.update(e["NetNS"] for n in st.networks.values() for e in entries(n))
    try:
        files = os.listdir(cfg.netns_dir)
    except FileNotFoundError:
        return
    for f in files:
        path = str(cfg.netns_dir / f)
        if path not in named:
            remove_netns(path)


def _new_entry(cfg: NetConfig, st, net: dict) -> dict:
    from .links import mac_for

    tag = os.urandom(6).hex()
    ip = str(st.allocate_address(net["Name"]))
    entry = {
        "NetNS": str(cfg.netns_dir / f"pool-{tag}"),
        "HostVeth": f"vp{tag}0",  # 15 characters; the 0 is the endpoint slot (eth0)
        "IPAddress": ip,
        "MacAddress": mac_for(ip),
        "Pending": True,
    }
    entries(net).append(entry)
    return entry


def _build(net: dict, entry: dict) -> None:
    """The kernel side of an entry, with pyroute2 (this is the background process)."""
    from .links import Links, make_netns, open_in_netns

    make_netns(entry["NetNS"])
    links = Links()
    ns_ipr = open_in_netns(entry["NetNS"])
    fd = os.open(entry["NetNS"], os.O_RDONLY | os.O_CLOEXEC)
    try:
        links.add_endpoint(
            net, fd, ns_ipr, entry["HostVeth"], "eth0", entry["IPAddress"], gateway=True
        )
    finally:
        os.close(fd)
        ns_ipr.close()
        links.close()


def refill(root: str | Path, only: str | None = None) -> int:
    """Make pool entries until every network (or ``only``) has no debt or a full pool;
    returns how many were made. Serialised by the pool lock; crash-safe (module doc)."""
    from .config import load
    from .store import NetworkStore

    cfg = load(root)
    store = NetworkStore(cfg)
    made = 0
    if cfg.pool_size <= 0:
        return 0
    cfg.netns_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with pool_lock(cfg):
        with store.locked() as st:
            reconcile_locked(cfg, st)
        while True:
            with store.locked() as st:
                todo = [
                    n
                    for n in st.networks.values()
                    if (only is None or n["Name"] == only)
                    and n.get("Up")
                    and n.get("PoolDebt", 0) > 0
                    and rtnl.link_exists(n["Bridge"])
                ]
                for n in todo:
                    if len(entries(n)) >= cfg.pool_size:
                        n["PoolDebt"] = 0
                todo = [n for n in todo if n["PoolDebt"] > 0]
                if not todo:
                    return made
                net = dict(todo[0])
                entry = _new_entry(cfg, st, todo[0])
                todo[0]["PoolDebt"] -= 1
            try:
                _build(net, entry)
            except BaseException:
                destroy(entry)
                with store.locked() as st:
                    n = st.networks.get(net["Name"])
                    if n is not None:
                        n["Pool"] = [e for e in entries(n) if e["NetNS"] != entry["NetNS"]]
                raise
            with store.locked() as st:
                n = st.networks.get(net["Name"])
                mine = [e for e in entries(n) if e["NetNS"] == entry["NetNS"]] if n else []
                if mine:
                    del mine[0]["Pending"]
                    made += 1
                else:  # drained meanwhile (cannot happen under the pool lock; be safe)
                    destroy(entry)


def refill_if_owed(root: str | Path) -> None:
    """For a command whose container was started by another process (``run -d``: the
    monitor made the network and then exec'd): fork the refill if a pool is owed."""
    from .config import load
    from .store import NetworkStore

    cfg = load(root)
    if cfg.pool_size <= 0:
        return
    for net in NetworkStore(cfg).read().networks.values():
        if net.get("Up") and net.get("PoolDebt", 0) > 0:
            _wanted.add((str(cfg.root), net["Name"]))
    refill_after_start()


def refill_after_start() -> None:
    """Fork a detached process that refills the pools this process's starts drew from.

    Called once the container runs, so the fork and pyroute2's imports stay off the
    start path. One fork (a double fork would make this process wait ~2 ms for the
    middle one): the child calls setsid, waits until this process has exited (at most
    REFILL_DELAY s) and is then reparented and reaped by init; should it finish while a
    long foreground run still goes, this process reaps it at exit (atexit, WNOHANG).
    The child closes every inherited descriptor (a pipe a caller waits on for EOF, an
    flock held through a shared descriptor) and leaves with os._exit (no atexit
    handlers of the parent, such as its trace line).
    """
    if not _wanted:
        return
    wanted = sorted(_wanted)
    _wanted.clear()
    starter = os.pidfd_open(os.getpid())
    pid = os.fork()
    if pid:
        os.close(starter)
        import atexit

        atexit.register(_reap, pid)
        return
    code = 0
    try:
        os.setsid()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.dup2(starter, 3)
        os.closerange(4, os.sysconf("SC_OPEN_MAX"))
        # A short `run --rm` tears its network down right away: wait until the command
        # that started us is gone (its pidfd turns readable; pidfd_open(2)), at most
        # REFILL_DELAY s for a long-lived one, so the refill's ~100 ms of pyroute2
        # imports and its namespace and veth creation do not compete with that teardown
        # for the CPU; then run at the lowest priority for the same reason.
        import select

        select.select([3], [], [], REFILL_DELAY)
        os.close(3)
        wanted = [w for w in wanted if _owed(*w)]
        if not wanted:  # the starter's teardown gave its namespace back (give_back)
            return
        os.nice(19)
        from .links import preload

        preload()  # before any lock: the store lock is held only for short updates
        for root, name in wanted:
            try:
                refill(root, only=name)
            except BaseException as e:
                code = 1
                _log(root, f"refill of {name}: {e}")
    finally:
        os._exit(code)


def _owed(root: str, name: str) -> bool:
    """Whether network ``name`` of ``root`` still wants entries (read without a lock:
    refill decides again under it)."""
    from .config import load
    from .store import NetworkStore

    net = NetworkStore(load(root)).read().networks.get(name) or {}
    return bool(net.get("Up")) and net.get("PoolDebt", 0) > 0


def _reap(pid: int) -> None:
    """At exit: collect the refill child if it already finished (else init will)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _log(root: str, line: str) -> None:
    """The background refill has no terminal: its errors go to <root>/network/pool.log."""
    try:
        fd = os.open(
            os.path.join(root, "network", "pool.log"),
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass
