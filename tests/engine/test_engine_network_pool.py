"""The namespace pool ("netns-pool" in daemon.json, engine/network/pool.py): a start
claims a ready namespace without importing pyroute2, the pool refills in the background,
concurrent starts beyond the pool still get distinct addresses, and ``network prune`` /
``network rm`` leave no link, netns, lease, pool entry or nftables table behind, also
after a refill that died half-way. Only the test's own subnets are contacted."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import VENV_BIN
from netfix import (
    configure,
    force_clean,
    free_subnet,
    leftovers,
    pool_links,
    start_detached,
    state,
    table_exists,
)

POOL = 2


class Seen:
    """Pool veths the test saw in the state file, for the leftover check at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links: set[str] = set()

    def note(self) -> None:
        self.links |= pool_links(self.root)


@pytest.fixture
def pooled(overlay_pydock):
    p = overlay_pydock
    p.network = None  # pydock's default network (bridge), not the fixture's "none"
    cfg = configure(p.root, pool=POOL)
    bridges = [cfg["bridge"]]
    seen = Seen(p.root)
    try:
        yield p, cfg, bridges, seen
    finally:
        p.cleanup()
        seen.note()
        p("network", "prune", "-f")
        cids = list(state(p.root).get("containers", {}))
        left = leftovers(p.root, bridges, cids, seen.links)
        if left:
            force_clean(p.root, bridges)
        assert left == [], f"network leftovers: {left}"


def ready(root: Path, network: str = "bridge") -> list[dict]:
    net = state(root).get("networks", {}).get(network) or {}
    return [e for e in net.get("Pool") or [] if not e.get("Pending")]


def wait_pool(root: Path, seen: Seen, network: str = "bridge", n: int = POOL) -> list[dict]:
    """The pool's complete entries once it holds ``n`` (the refill runs in background)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen.note()
        entries = ready(root, network)
        if len(entries) >= n and state(root)["networks"][network].get("PoolDebt", 0) == 0:
            return entries
        time.sleep(0.05)
    raise AssertionError(f"pool of {network} never refilled: {state(root)}")


def endpoint(root: Path, cid: str, network: str = "bridge") -> dict:
    return state(root)["containers"][cid]["Endpoints"][network]


PROBE = """
import json, os, sys
spawned = []
def _no(*a, **k):  # the start path runs no program (fork for the refill is fine)
    spawned.append(repr(a[:2]))
    raise AssertionError("subprocess on the start path")
os.posix_spawn = os.posix_spawnp = _no
import _posixsubprocess
_posixsubprocess.fork_exec = _no
from pydock.engine.cli import main
code = main(sys.argv[1:])
mods = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"code": code, "mods": mods, "spawned": spawned}))
"""


def test_pooled_start_imports_no_pyroute2(pooled, scratch):
    p, cfg, _, seen = pooled

    def probe(*cmd: str) -> tuple[str, dict]:
        res = subprocess.run(
            [str(VENV_BIN / "python"), "-c", PROBE, "--root", str(p.root), "--storage-driver",
             "overlay2", "run", "--rm", "--network", "bridge", "busybox", *cmd],
            capture_output=True, cwd=scratch, timeout=60,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        out = res.stdout.decode()
        report = json.loads(out.strip().splitlines()[-1])
        assert report["code"] == 0 and report["spawned"] == []
        return out, report

    _, report = probe("true")  # empty pool: today's path (netlink), then a refill
    assert "pyroute2" in report["mods"]
    before = wait_pool(p.root, seen)
    out, report = probe("sh", "-c", "ip -4 addr show eth0; ip route; cat /sys/class/net/eth0/mtu")
    assert "pyroute2" not in report["mods"]
    # it ran in one of the pooled namespaces: that entry's address, route and MTU
    used = [e for e in before if f"inet {e['IPAddress']}/24" in out]
    assert len(used) == 1, out
    assert f"default via {cfg['gateway']} dev eth0" in out
    assert "\n1500\n" in out
    # the container could change nothing in its namespace: teardown gave it back as it was
    after = wait_pool(p.root, seen)
    assert used[0] in after
    assert state(p.root)["containers"] == {}


def pool_set(root: Path, seen: Seen) -> set[str]:
    return {e["NetNS"] for e in wait_pool(root, seen)}


def test_namespace_given_back_only_if_nothing_of_the_container_is_left(pooled):
    p, _, _, seen = pooled
    p.out("run", "--rm", "busybox", "true")
    before = pool_set(p.root, seen)
    p.out("run", "--rm", "busybox", "true")
    assert pool_set(p.root, seen) == before  # given back: nothing made, nothing destroyed
    # NET_ADMIN may change links, routes, rules or sysctls: destroyed, a refill replaces it
    p.out("run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "ip", "link", "set", "eth0",
          "mtu", "1400")  # fmt: skip
    after = pool_set(p.root, seen)
    gone = before - after
    assert len(gone) == 1 and len(after) == POOL and not Path(gone.pop()).exists()
    # a TCP connection's TIME_WAIT socket outlives the container (and would hold its
    # port): not given back either (loopback inside the container only)
    before = after
    out = p.out("run", "--rm", "busybox", "sh", "-c",
                "mkdir /w && echo hi > /w/i && httpd -p 127.0.0.1:8000 -h /w && "
                "wget -q -O- http://127.0.0.1:8000/i")  # fmt: skip
    assert out.strip() == "hi"
    after = pool_set(p.root, seen)
    gone = before - after
    assert len(gone) == 1 and len(after) == POOL and not Path(gone.pop()).exists()
    # a container that shared its namespace (--network container:) may have a joiner
    # still in it: its namespace never goes back to the pool. Checked on an unwritten
    # copy of the state with room in the pool (the -d start's refill filled the real one)
    cid = p.out("run", "-d", "--name", "host1", "busybox", "sleep", "60").strip()
    p.out("run", "--rm", "--network", "container:host1", "busybox", "true")
    from pydock.engine.network import config, pool
    from pydock.engine.network.store import NetworkStore

    ncfg = config.load(p.root)
    st = NetworkStore(ncfg).read()
    entry = st.containers[cid]
    assert entry["Shared"] is True and entry["Recycle"] is True
    st.networks["bridge"]["Pool"].pop()
    try:
        assert not pool.give_back(ncfg, st, entry)
        del entry["Shared"]
        assert pool.give_back(ncfg, st, entry)  # the joiner was the only reason
    finally:
        pool._wanted.clear()
    p.out("rm", "-f", "host1")
    assert len(pool_set(p.root, seen)) == POOL


def test_pool_refills_survives_last_container_and_prune_drains(pooled):
    p, cfg, bridges, seen = pooled
    p.out("run", "--rm", "busybox", "true")
    before = wait_pool(p.root, seen)
    cid = p.out("run", "-d", "--name", "aa", "busybox", "sleep", "60").strip()
    ep = endpoint(p.root, cid)
    assert ep["IPAddress"] in {e["IPAddress"] for e in before}
    assert ep["HostVeth"].startswith("vp")
    assert Path(state(p.root)["containers"][cid]["NetNS"]).name.startswith("pool-")
    # run -d forked the refill: the pool is full again while a runs, with new addresses
    entries = wait_pool(p.root, seen)
    assert ep["IPAddress"] not in {e["IPAddress"] for e in entries}
    out = p.out("run", "--rm", "busybox", "ping", "-c1", "-W2", ep["IPAddress"])
    assert "1 packets received" in out
    wait_pool(p.root, seen)
    p.out("rm", "-f", "aa")
    assert state(p.root)["containers"] == {}
    # a's veth, namespace and lease are gone; what is left is the pool's
    assert leftovers(p.root, [], [cid], {ep["HostVeth"]}) == [
        f"pool entry {e['NetNS']}" for e in ready(p.root)
    ] + [str(x) for x in (p.root / "netns").iterdir()] + [f"nft table {netconfig_table(p.root)}"]
    assert sorted(str(x) for x in (p.root / "netns").iterdir()) == sorted(
        e["NetNS"] for e in ready(p.root)
    )
    # a non-empty pool keeps the default bridge up without containers (pool.py) ...
    assert Path(f"/sys/class/net/{cfg['bridge']}").exists()
    # ... until network prune drains it: then nothing of the store is left
    seen.note()
    p.out("network", "prune", "-f")
    assert leftovers(p.root, bridges, [cid], seen.links) == []
    assert not table_exists(p.root)
    assert state(p.root)["networks"]["bridge"]["Up"] is False


def netconfig_table(root: Path) -> str:
    from pydock.engine.network import config

    return config.load(root).table


def test_twenty_concurrent_starts_with_a_pool_of_two(pooled):
    p, cfg, bridges, seen = pooled
    p.out("run", "--rm", "busybox", "true")
    wait_pool(p.root, seen)
    n = 20
    cids: list[str] = []
    start_detached(p.root, n, cids)
    st = state(p.root)
    addrs = [st["containers"][c]["Endpoints"]["bridge"]["IPAddress"] for c in cids]
    pooled_now = [e["IPAddress"] for e in st["networks"]["bridge"].get("Pool") or []]
    assert len(set(addrs)) == n
    assert not set(addrs) & set(pooled_now)  # a pooled address is leased too
    assert all(ipaddress.IPv4Address(a) in cfg["subnet"] for a in addrs)
    assert cfg["gateway"] not in addrs
    from_pool = [
        c for c in cids if st["containers"][c]["Endpoints"]["bridge"]["HostVeth"][:2] == "vp"
    ]
    assert 1 <= len(from_pool) <= n  # the warm pool served some, the others fell back
    seen.note()
    wait_pool(p.root, seen)
    p.out("rm", "-f", *cids)
    assert state(p.root)["containers"] == {}
    seen.note()
    p.out("network", "prune", "-f")
    assert leftovers(p.root, bridges, cids, seen.links) == []


def test_user_network_pool_filled_at_create_and_removed_with_it(pooled):
    p, _, bridges, seen = pooled
    br = bridges[0][:-1] + "u"
    bridges.append(br)
    sub = free_subnet()
    p.out("network", "create", "--subnet", str(sub), "--bridge-name", br, "app")
    entries = ready(p.root, "app")
    assert len(entries) == POOL  # filled by network create itself
    seen.note()
    cid = p.out("run", "-d", "--name", "db", "--network", "app", "busybox", "sleep", "60").strip()
    assert endpoint(p.root, cid, "app")["IPAddress"] in {e["IPAddress"] for e in entries}
    out = p.out("run", "--rm", "--network", "app", "busybox", "ping", "-c1", "-W2", "db")
    assert "1 packets received" in out
    wait_pool(p.root, seen, "app")
    res = p("network", "rm", "app")
    assert res.returncode == 1 and b"active endpoints" in res.stderr
    p.out("rm", "-f", "db")
    seen.note()
    p.out("network", "rm", "app")
    assert "app" not in state(p.root)["networks"]
    assert leftovers(p.root, [br], [cid], seen.links) == []


def test_prune_reconciles_a_refill_that_died_half_way(pooled):
    """A refill killed after it leased an address and made the namespace, before the
    entry was complete: the pending entry and its namespace are destroyed, the address is
    free again, and a stray namespace file nobody names goes too."""
    p, _, bridges, seen = pooled
    p.out("run", "--rm", "busybox", "true")
    wait_pool(p.root, seen)
    script = f"""
import os, sys
from pydock.engine.network import pool
from pydock.engine.network.config import load
from pydock.engine.network.links import make_netns
from pydock.engine.network.store import NetworkStore
cfg = load({str(p.root)!r})
with pool.pool_lock(cfg), NetworkStore(cfg).locked() as st:
    entry = pool._new_entry(cfg, st, st.networks["bridge"])
make_netns(entry["NetNS"])
make_netns(str(cfg.netns_dir / "stray"))
print(entry["IPAddress"], entry["NetNS"])
os._exit(0)  # dies here: no completion, no cleanup
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    ip, path = res.stdout.decode().split()
    pend = [e for e in state(p.root)["networks"]["bridge"]["Pool"] if e.get("Pending")]
    assert [e["NetNS"] for e in pend] == [path]
    seen.note()
    p.out("network", "prune", "-f")
    assert not Path(path).exists() and not (p.root / "netns" / "stray").exists()
    assert leftovers(p.root, bridges, [], seen.links) == []
    # the address is free again: the next container (today's path) may take it
    assert ip not in json.dumps(state(p.root)["networks"]["bridge"].get("Pool", []))


def test_pool_is_on_by_default_for_the_default_root_only(scratch, monkeypatch):
    from pydock.engine.network import config

    assert config.load(scratch).pool_size == 0  # a throwaway root leaves nothing idle
    (scratch / "daemon.json").write_text('{"netns-pool": 3}')
    assert config.load(scratch).pool_size == 3
    monkeypatch.setattr(config, "DEFAULT_ROOT", str(scratch.resolve()))  # as if it were
    assert config.load(scratch).pool_size == 3
    (scratch / "daemon.json").write_text('{"netns-pool": 0}')
    assert config.load(scratch).pool_size == 0
    (scratch / "daemon.json").unlink()
    assert config.load(scratch).pool_size == config.DEFAULT_POOL == 2


def test_recyclable_rules_on_runtime_specs():
    from pydock.engine.network.pool import recyclable
    from pydock.engine.spec import DEFAULT_MOUNTS, READONLY_PATHS

    def spec(caps=("CAP_NET_RAW", "CAP_CHOWN"), ro=READONLY_PATHS, mounts=(), sysctl=None):
        return {
            "process": {"capabilities": {"bounding": list(caps), "effective": list(caps)}},
            "mounts": [dict(m) for m in DEFAULT_MOUNTS] + list(mounts),
            "linux": {"readonlyPaths": list(ro), "sysctl": sysctl or {}},
        }

    assert recyclable(spec())
    assert not recyclable(spec(caps=("CAP_NET_ADMIN",)))
    assert not recyclable(spec(caps=("CAP_SYS_ADMIN",)))
    assert not recyclable(spec(ro=[]))  # --privileged, systempaths=unconfined
    assert not recyclable(spec(sysctl={"net.ipv4.ip_forward": "1"}))
    assert recyclable(spec(sysctl={"kernel.msgmax": "65536"}))
    bind = {"type": "bind", "options": ["rbind"]}
    assert not recyclable(spec(mounts=[dict(bind, source="/proc", destination="/hp")]))
    assert not recyclable(spec(mounts=[dict(bind, source="/", destination="/host")]))
    assert not recyclable(spec(mounts=[dict(bind, source="/proc/sys/", destination="/s")]))
    assert not recyclable(spec(mounts=[{"type": "proc", "source": "proc", "destination": "/p2"}]))
    assert recyclable(spec(mounts=[dict(bind, source="/var/tmp/data", destination="/data")]))


SOCKET_LEFT = """
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname()); a, _ = s.accept()
c.sendall(b"x" * 100000); a.recv(100000)
c.close(); time.sleep(0.1); a.close(); s.close()  # the client's side stays in TIME_WAIT
"""

SERVER = """
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 8000)); s.listen(); print("ready", flush=True)
a, _ = s.accept(); a.sendall(b"x" * 100000); a.close(); s.close()  # TIME_WAIT stays here
"""

CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 8000)); n = 0
while (d := c.recv(65536)): n += len(d)
c.close(); print(n)  # passive close: nothing left here, but the metrics are cached
"""


def test_scrub_refuses_sockets_and_flushes_tcp_metrics():
    """Two namespaces of the test's own joined by a veth pair (10.x addresses inside
    them only): ``_scrub`` refuses a namespace with a TIME_WAIT socket, and flushes the
    TCP metrics of one whose connections are closed."""
    from pydock.engine.network import pool

    tag = os.urandom(3).hex()
    a, b = f"pdtest-{tag}a", f"pdtest-{tag}b"
    subnet = free_subnet()
    ip_a, ip_b = (str(h) for h in list(subnet.hosts())[:2])

    def run(*argv: str, ns: str | None = None, **kw) -> str:
        pre = ["ip", "netns", "exec", ns] if ns else []
        res = subprocess.run([*pre, *argv], capture_output=True, text=True, check=True,
                             timeout=30, **kw)  # fmt: skip
        return res.stdout

    run("ip", "netns", "add", a)
    try:
        run("ip", "netns", "add", b)
        run("ip", "link", "add", "va", "netns", a, "type", "veth", "peer", "vb", "netns", b)
        for ns, dev, ip in ((a, "va", ip_a), (b, "vb", ip_b)):
            run("ip", "addr", "add", f"{ip}/{subnet.prefixlen}", "dev", dev, ns=ns)
            run("ip", "link", "set", dev, "up", ns=ns)
            run("ip", "link", "set", "lo", "up", ns=ns)
        assert pool._scrub(f"/run/netns/{a}", 0) == 0  # fresh: fit, nothing to flush
        server = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-c", SERVER,
                                   ip_b], stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert server.stdout.readline().strip() == "ready"
            assert run(sys.executable, "-c", CLIENT, ip_b, ns=a).strip() == "100000"
        finally:
            server.wait(timeout=30)
        assert ip_b in run("ip", "tcp_metrics", "show", ns=a)
        assert pool._scrub(f"/run/netns/{b}", 0) is None  # the server's TIME_WAIT
        assert pool._scrub(f"/run/netns/{a}", 0) == 1  # fit: one connection, flushed
        assert run("ip", "tcp_metrics", "show", ns=a) == ""
        run(sys.executable, "-c", SOCKET_LEFT, ns=a)
        assert pool._scrub(f"/run/netns/{a}", 1) is None  # TIME_WAIT on loopback
    finally:
        subprocess.run(["ip", "netns", "del", a], check=False)
        subprocess.run(["ip", "netns", "del", b], check=False)
