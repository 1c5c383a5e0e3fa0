"""Shared setup for the network tests: a store root with its own bridge name and subnet
(daemon.json "bridge"/"bip"), so parallel sessions never share a device, a subnet or an
nftables table, and a check that everything the store made in the kernel is gone."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

from pydock.engine.network import config as netconfig
from pydock.engine.network.nft import Nft
from pydock.engine.network.store import host_routes


def start_detached(root: Path, n: int, cids: list[str]) -> None:
    """Start ``n`` containers ``c0``.. at once (``run -d`` on the default network, overlay2)
    and append their ids to ``cids`` as they report (so a caller can clean up after a
    failure); each must start."""
    from helpers import PYDOCK

    procs = [
        subprocess.Popen(
            [
                PYDOCK,
                "--root",
                str(root),
                "-s",
                "overlay2",
                "run",
                "-d",
                "--name",
                f"c{i}",
                "busybox",
                "sleep",
                "60",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for i in range(n)
    ]
    for pr in procs:
        out, err = pr.communicate(timeout=120)
        assert pr.returncode == 0, err.decode()
        cids.append(out.decode().strip())


def free_subnet() -> ipaddress.IPv4Network:
    """A random 10.2xx.y.0/24 that no host route touches."""
    routes = host_routes()
    for _ in range(200):
        net = ipaddress.IPv4Network(
            f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.0/24"
        )
        if not any(net.overlaps(r) for r in routes):
            return net
    raise RuntimeError("no free test subnet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure(root: Path, pool: int = 0) -> dict:
    """Write daemon.json for a test root (``pool``: its "netns-pool"); returns its
    settings."""
    root.mkdir(parents=True, exist_ok=True)
    subnet = free_subnet()
    gw = next(subnet.hosts())
    settings = {
        "bridge": f"pdt{secrets.token_hex(4)}",
        "bip": f"{gw}/{subnet.prefixlen}",
        "ip-forward": False,  # tests need no routing off the host; leave the sysctl alone
    }
    if pool:
        settings["netns-pool"] = pool
    (root / "daemon.json").write_text(json.dumps(settings))
    return dict(settings, subnet=subnet, gateway=str(gw))


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def table_exists(root: Path) -> bool:
    nft = Nft()
    try:
        return nft.rules(netconfig.load(root).table) is not None
    finally:
        nft.close()


def table_rules(root: Path) -> list[dict]:
    nft = Nft()
    try:
        return nft.rules(netconfig.load(root).table) or []
    finally:
        nft.close()


def state(root: Path) -> dict:
    try:
        return json.loads((root / "network" / "state.json").read_text())
    except FileNotFoundError:
        return {}


def pool_links(root: Path) -> set[str]:
    """Host veths of the namespace pools the state file lists now."""
    nets = state(root).get("networks", {}).values()
    return {e["HostVeth"] for n in nets for e in n.get("Pool") or []}


def _settled_links(names: set[str], timeout: float = 5.0) -> set[str]:
    """The links still there once the kernel had time to free them: a deleted network
    namespace takes its veth pairs along asynchronously (cleanup_net's work queue)."""
    deadline = time.monotonic() + timeout
    while True:
        left = names & links()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def leftovers(
    root: Path, bridges: list[str], cids: list[str], extra_links: set[str] = frozenset()
) -> list[str]:
    """What the store still holds in the kernel: links (``extra_links``: pool veths the
    test saw), netns files, pool entries and leases in the state, the table."""
    out = []
    have = links()
    mine = set(bridges) | set(extra_links)
    mine |= {n for n in have if any(n.startswith(f"veth{c[:10]}") for c in cids)}
    out += sorted(_settled_links(mine))
    for n in state(root).get("networks", {}).values():
        out += [f"pool entry {e['NetNS']}" for e in n.get("Pool") or []]
    nsdir = root / "netns"
    if nsdir.exists():
        out += [str(p) for p in nsdir.iterdir()]
    if table_exists(root):
        out.append(f"nft table {netconfig.load(root).table}")
    return out


def force_clean(root: Path, bridges: list[str]) -> None:
    """Last resort after a failed test: remove this store's links and table directly."""
    from pydock.engine.network.links import Links, remove_netns

    lk = Links()
    try:
        st = state(root)
        for c in st.get("containers", {}).values():
            for ep in c.get("Endpoints", {}).values():
                lk.delete_link(ep["HostVeth"])
        for n in st.get("networks", {}).values():
            for e in n.get("Pool") or []:
                lk.delete_link(e["HostVeth"])
        for b in bridges + [n["Bridge"] for n in st.get("networks", {}).values()]:
            lk.delete_link(b)
    finally:
        lk.close()
    nsdir = root / "netns"
    if nsdir.exists():
        for p in nsdir.iterdir():
            remove_netns(str(p))
    nft = Nft()
    try:
        table = netconfig.load(root).table
        if nft.rules(table) is not None:
            nft.run(f"delete table ip {table}\n")
    finally:
        nft.close()
