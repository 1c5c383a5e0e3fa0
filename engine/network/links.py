"""Bridges, veth pairs, addresses and routes through pyroute2 (netlink), and named netns.

A container's network namespace is made here, before its process exists, and bind-mounted
on ``<root>/netns/<id>`` (what ``ip netns add`` does under /run/netns): the spec then joins
it by path, which needs no change to the runtime's fork/exec protocol, keeps the
namespace alive for ``--network container:NAME`` joiners and lets teardown find it after a
crash. The veth pair is created with its peer directly inside that namespace, already
named eth0 (IFLA_NET_NS_FD in the peer's attributes), so there is no move or rename.

Configuring a device inside the namespace uses a netlink socket opened while this
thread sat in that namespace: a socket stays bound to the namespace it was created in
(network_namespaces(7)), so one setns() round trip is enough and no helper process is
forked (pyroute2's NetNS would fork one).

pyroute2's package ``__init__`` imports every module it has (≈130 ms); only
``pyroute2.iproute.linux`` is needed, so :func:`_iproute_class` loads that one module
under an empty package object when nothing else in the process imported pyroute2 yet.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import sys

from ...nsutil import namespaces
from ...nsutil import syscalls as sc
from ..errors import EngineError


def _iproute_class():
    if "pyroute2" not in sys.modules:
        import importlib.util
        import types

        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.submodule_search_locations:
            pkg = types.ModuleType("pyroute2")
            pkg.__path__ = list(spec.submodule_search_locations)
            pkg.__spec__ = spec
            sys.modules["pyroute2"] = pkg
    from pyroute2.iproute.linux import IPRoute

    return IPRoute


def preload() -> None:
    """Import the netlink modules now (the pool's background refill does this before it
    takes any lock)."""
    _iproute_class()
    _netlink_error()


def _netlink_error():
    from pyroute2.netlink.exceptions import NetlinkError

    return NetlinkError


def mac_for(ip: str) -> str:
    """A locally administered MAC derived from the address, like Docker's 02:42:<ip>: a
    re-used address keeps its MAC, so peers' ARP caches stay right."""
    b = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{x:02x}" for x in b)


def _sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class Links:
    """A netlink session in the host namespace (one socket for a whole start or stop)."""

    def __init__(self) -> None:
        self.ipr = _iproute_class()()
        self.NetlinkError = _netlink_error()

    def close(self) -> None:
        self.ipr.close()

    def index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    # -- bridges -----------------------------------------------------------------------
    def ensure_bridge(self, net: dict, ip_forward: bool) -> None:
        """The network's bridge, up, with its gateway address and MTU; idempotent."""
        name = net["Bridge"]
        idx = self.index(name)
        if idx is None:
            try:
                self.ipr.link("add", ifname=name, kind="bridge", mtu=net["MTU"])
            except self.NetlinkError as e:
                raise EngineError(f"cannot create bridge {name}: {e}", 125) from None
            idx = self.index(name)
        subnet = ipaddress.IPv4Network(net["Subnet"])
        have = {a.get_attr("IFA_ADDRESS") for a in self.ipr.get_addr(index=idx, family=2)}
        if net["Gateway"] not in have:
            self.ipr.addr("add", index=idx, address=net["Gateway"], prefixlen=subnet.prefixlen)
        self.ipr.link("set", index=idx, state="up", mtu=net["MTU"])
        # Published ports answer on 127.0.0.1 by DNAT in the output hook; the rewritten
        # packet leaves through the bridge with a 127/8 source, which the kernel drops as
        # martian unless route_localnet is set on that device (ip-sysctl.rst).
        _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
        if ip_forward:
            with open("/proc/sys/net/ipv4/ip_forward") as f:
                if f.read().strip() != "1":
                    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")

    def names(self) -> list[str]:
        """Every link name in the host namespace (one netlink dump)."""
        return [link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links()]

    def delete_link(self, name: str) -> None:
        idx = self.index(name)
        if idx is None:
            return
        try:
            self.ipr.link("del", index=idx)
        except self.NetlinkError as e:
            if e.code != errno.ENODEV:
                raise

    # -- containers --------------------------------------------------------------------
    def add_endpoint(
        self, net: dict, nsfd: int, ns_ipr, host_veth: str, ifname: str, ip: str, gateway: bool
    ) -> str:
        """A veth pair: ``host_veth`` on the bridge, ``ifname`` inside the namespace with
        the address, MTU and (for the first network) the default route. Returns the MAC."""
        br = self.index(net["Bridge"])
        if br is None:
            raise EngineError(f"bridge {net['Bridge']} of network {net['Name']} is gone", 125)
        mac = mac_for(ip)
        try:
            self.ipr.link(
                "add",
                ifname=host_veth,
                kind="veth",
                mtu=net["MTU"],
                peer={"ifname": ifname, "net_ns_fd": nsfd, "mtu": net["MTU"], "address": mac},
            )
        except self.NetlinkError as e:
            raise EngineError(f"cannot create veth {host_veth}: {e}", 125) from None
        idx = self.index(host_veth)
        self.ipr.link("set", index=idx, master=br, state="up")
        inner = ns_ipr.link_lookup(ifname=ifname)[0]
        prefix = ipaddress.IPv4Network(net["Subnet"]).prefixlen
        ns_ipr.addr("add", index=inner, address=ip, prefixlen=prefix)
        ns_ipr.link("set", index=inner, state="up")
        if gateway:
            ns_ipr.route("add", dst="0.0.0.0/0", gateway=net["Gateway"])
        return mac


def make_netns(path: str) -> None:
    """A new network namespace bound on ``path`` (a file), with lo up.

    unshare(CLONE_NEWNET) moves only the calling thread (unshare(2)); after the bind
    mount pins the namespace, setns() brings the thread back.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.unshare(sc.lib.CLONE_NEWNET)
        try:
            sc.mount("/proc/thread-self/ns/net", path, None, sc.lib.MS_BIND, None)
            namespaces.loopback_up()
        finally:
            sc.setns(saved, sc.lib.CLONE_NEWNET, "host network namespace")
    except BaseException:
        remove_netns(path)
        raise
    finally:
        os.close(saved)


def open_in_netns(path: str):
    """An IPRoute whose socket lives in the namespace at ``path``."""
    cls = _iproute_class()
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(target, sc.lib.CLONE_NEWNET, path)
        try:
            return cls()
        finally:
            sc.setns(saved, sc.lib.CLONE_NEWNET, "host network namespace")
    finally:
        os.close(target)
        os.close(saved)


def remove_netns(path: str) -> None:
    """Unmount and delete a named namespace file; missing is fine (idempotent)."""
    try:
        sc.umount(path, sc.lib.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
