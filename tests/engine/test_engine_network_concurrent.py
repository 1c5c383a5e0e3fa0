"""20 containers started at once on one bridge get 20 distinct addresses (the IPAM's
flock), and removing them all leaves no veth, lease, netns, rule or table behind."""

from __future__ import annotations

import ipaddress
import json

from netfix import configure, force_clean, leftovers, start_detached, state

N = 20


def test_twenty_concurrent_runs_get_distinct_addresses(overlay_pydock):
    p = overlay_pydock
    p.network = None  # pydock's default network (bridge)
    cfg = configure(p.root)
    cids: list[str] = []
    try:
        start_detached(p.root, N, cids)
        info = json.loads(p.out("network", "inspect", "bridge"))[0]
        addrs = {c["IPv4Address"].split("/")[0] for c in info["Containers"].values()}
        assert len(addrs) == N
        assert all(ipaddress.IPv4Address(a) in cfg["subnet"] for a in addrs)
        assert cfg["gateway"] not in addrs
        p.out("rm", "-f", *cids)
        assert state(p.root)["containers"] == {}
        assert leftovers(p.root, [cfg["bridge"]], cids) == []
    finally:
        p.cleanup()
        left = leftovers(p.root, [cfg["bridge"]], cids)
        if left:
            force_clean(p.root, [cfg["bridge"]])
