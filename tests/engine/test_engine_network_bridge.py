"""Bridge networking end to end: ping on the default bridge, names on a user network,
``--network none`` and ``container:NAME``, network commands, and a store that leaves no
link, netns or nftables table behind. Only the test's own subnets are contacted."""

from __future__ import annotations

import json
import time

import pytest
from netfix import free_subnet, state, table_exists


@pytest.fixture
def net(bridge_net):
    return bridge_net


def ip_of(p, network: str, name: str) -> str:
    info = json.loads(p.out("network", "inspect", network))[0]
    for c in info["Containers"].values():
        if c["Name"] == name:
            return c["IPv4Address"].split("/")[0]
    raise AssertionError(f"{name} not on {network}")


def wait_running(p, name: str) -> None:
    for _ in range(100):
        if name in p.out("ps"):
            return
        time.sleep(0.05)


def test_none_has_only_loopback(net):
    p, _, _ = net
    out = p.out("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert out.split() == ["lo"]


def test_default_bridge_ping_and_etc_files(net):
    p, cfg, _ = net
    p.out("run", "-d", "--name", "aa", "busybox", "sleep", "60")
    a_ip = ip_of(p, "bridge", "aa")
    out = p.out(
        "run", "--rm", "--name", "bb", "-h", "bee", "busybox", "sh", "-c",
        f"ping -c1 -W2 {a_ip} && ls /sys/class/net && cat /etc/hostname /etc/hosts "
        "&& ip route && cat /sys/class/net/eth0/mtu",
    )  # fmt: skip
    assert "1 packets received" in out
    assert "eth0" in out.split() and "lo" in out.split()
    assert "bee\n" in out
    assert f"default via {cfg['gateway']} dev eth0" in out
    assert "\n1500\n" in out
    # rm'd b gave its address back: the next container gets it again
    p.out("run", "--rm", "--name", "cc", "busybox", "true")
    assert len(state(p.root)["containers"]) == 1
    p.out("rm", "-f", "aa")
    assert not table_exists(p.root)  # the default bridge went down with its last container


def test_user_network_names_connect_and_removal(net):
    p, _, bridges = net
    sub = free_subnet()
    nid = p.out(
        "network", "create", "--subnet", str(sub), "--bridge-name", bridges[0][:-1] + "u", "app"
    ).strip()
    bridges.append(bridges[0][:-1] + "u")
    assert "app" in p.out("network", "ls")
    p.out("run", "-d", "--name", "db", "--network", "app", "busybox", "sleep", "60")
    out = p.out(
        "run", "--rm", "--name", "web", "--network", "app", "busybox", "sh", "-c", "ping -c1 -W2 db"
    )
    assert "1 packets received" in out
    # the hosts file of a running peer follows joins and leaves
    p.out("run", "-d", "--name", "cache", "--network", "app", "busybox", "sleep", "60")
    hosts = p.out("run", "--rm", "--network", "container:db", "busybox", "cat", "/etc/hosts")
    assert "\tcache\n" in hosts  # db's own file, rewritten when cache joined
    res = p("network", "rm", "app")
    assert res.returncode == 1 and b"active endpoints" in res.stderr
    # connect a default-bridge container to app: it gets eth1 and can reach db by name
    p.out("run", "-d", "--name", "xx", "busybox", "sleep", "60")
    p.out("network", "connect", "app", "xx")
    out = p.out(
        "run",
        "--rm",
        "--network",
        "container:xx",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; ping -c1 -W2 db",
    )
    assert "eth1" in out.split() and "1 packets received" in out
    p.out("network", "disconnect", "app", "xx")
    assert not any(
        c["Name"] == "xx"
        for c in json.loads(p.out("network", "inspect", nid[:12]))[0]["Containers"].values()
    )
    p.out("rm", "-f", "db", "cache", "xx")
    assert table_exists(p.root)  # app still exists
    p.out("network", "rm", "app")
    assert not table_exists(p.root)
    assert p("network", "inspect", "app").returncode == 1


def test_unknown_network_is_125(net):
    p, _, _ = net
    res = p("run", "--rm", "--network", "nosuch", "busybox", "true")
    assert res.returncode == 125 and b"network nosuch not found" in res.stderr


def test_restart_policy_on_the_default_bridge(net) -> None:
    """Each restart gets its network anew (was: ``File exists: <root>/netns/<id>`` and a
    container stuck in Restarting with no monitor); stop then ends it."""
    from lifecycle_helpers import inspect, wait_for

    p, _, _ = net
    p("run", "-d", "--name", "flappy", "--restart", "always", "busybox", "sh", "-c",
      "ip -4 addr show eth0 | grep -q inet && echo up; exit 1", check=True)  # fmt: skip
    wait_for(lambda: p.out("logs", "flappy").count("up") >= 3, what="three networked runs")
    info = inspect(p, "flappy")
    assert info["RestartCount"] >= 2 and info["State"]["Error"] == "", info["State"]
    p("stop", "-t", "1", "flappy", check=True)
    st = inspect(p, "flappy")["State"]
    assert (st["Status"], st["Restarting"], st["Running"]) == ("exited", False, False)
    p("run", "-d", "--name", "twice", "--restart", "on-failure:2", "busybox", "sh", "-c",
      "exit 3", check=True)  # fmt: skip

    def retried_twice() -> bool:
        info = inspect(p, "twice")
        return info["RestartCount"] == 2 and info["State"]["Status"] == "exited"

    wait_for(retried_twice, what="two retries")
    st = inspect(p, "twice")["State"]
    assert (st["ExitCode"], st["Restarting"], st["Error"]) == (3, False, "")
