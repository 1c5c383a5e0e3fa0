"""The network store: networks, address leases and port leases of one root, in one file.

``<root>/network/state.json`` is read and replaced whole under an flock on
``<root>/network/lock``; every allocation (an address, a host port, a subnet) happens
inside that lock, so concurrent ``pydock run`` processes never hand out one address twice,
and the lock dies with a SIGKILLed holder. Shape::

    {"networks": {name: {Id, Name, Driver, Bridge, Subnet, Gateway, MTU, Created, Up,
                         Default, Pool: [{NetNS, HostVeth, IPAddress, MacAddress,
                                          Pending?}], PoolDebt}},
     "containers": {id: {Name, NetNS, Ports: [...],
                         Endpoints: {network: {IPAddress, MacAddress, HostVeth}},
                         Pooled?: {the pool entry it claimed}, Recycle?, Shared?}},
     "predefined": {"host" | "none": {Id, Created}}}

Subnets must not overlap the host's routes, which are host-wide: choosing one also holds
the host-wide lock :data:`HOST_LOCK`, so two roots bringing up bridges at once cannot pick
the same range.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..containers import now
from ..errors import Conflict, InvalidInput, NotFound
from ..fsutil import FileLock, read_json, write_json
from .config import DEFAULT_NETWORK, SPECIAL_MODES, NetConfig

HOST_LOCK = "/run/pydock-network.lock"


def candidate_pools() -> list[ipaddress.IPv4Network]:
    """Docker's default address pools: 172.17-31.0.0/16, then 192.168.x.0/20 (built on
    use: this module is on the start path, which only needs them for a new network)."""
    return [ipaddress.IPv4Network(f"172.{n}.0.0/16") for n in range(17, 32)] + [
        ipaddress.IPv4Network(f"192.168.{n}.0/20") for n in range(0, 256, 16)
    ]


class NetState:
    """The decoded state file plus the allocation rules that work on it."""

    def __init__(self, data: dict) -> None:
        self.networks: dict[str, dict] = data.get("networks") or {}
        self.containers: dict[str, dict] = data.get("containers") or {}
        #: ids of the networks that are no bridge (host, none): Docker's daemon gives
        #: every network an id when it makes it, these at its first start
        self.predefined: dict[str, dict] = data.get("predefined") or {}

    def dump(self) -> dict:
        return {
            "networks": self.networks,
            "containers": self.containers,
            "predefined": self.predefined,
        }

    # -- networks ----------------------------------------------------------------------
    def network(self, ref: str) -> dict:
        """A network by name, full id or unique id prefix."""
        if ref in self.networks:
            return self.networks[ref]
        hits = [n for n in self.networks.values() if ref and n["Id"].startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        raise NotFound(f"network {ref} not found")

    def endpoints_on(self, name: str) -> list[tuple[str, dict, dict]]:
        """(container id, container entry, endpoint) for every container on ``name``."""
        return [
            (cid, c, c["Endpoints"][name])
            for cid, c in self.containers.items()
            if name in c.get("Endpoints", {})
        ]

    def add_network(
        self,
        name: str,
        bridge: str,
        subnet: ipaddress.IPv4Network,
        gateway: ipaddress.IPv4Address,
        mtu: int,
        default: bool = False,
    ) -> dict:
        if name in self.networks:
            raise Conflict(f"network with name {name} already exists")
        for other in self.networks.values():
            if other["Bridge"] == bridge:
                raise Conflict(f"bridge {bridge} is already used by network {other['Name']}")
            if ipaddress.IPv4Network(other["Subnet"]).overlaps(subnet):
                raise Conflict(
                    f"subnet {subnet} overlaps network {other['Name']} ({other['Subnet']})"
                )
        net = {
            "Id": os.urandom(32).hex(),  # secrets.token_hex without its imports (start path)
            "Name": name,
            "Driver": "bridge",
            "Bridge": bridge,
            "Subnet": str(subnet),
            "Gateway": str(gateway),
            "MTU": mtu,
            "Created": now(),
            "Default": default,
            "Up": False,
        }
        self.networks[name] = net
        return net

    # -- addresses ---------------------------------------------------------------------
    def allocate_address(self, name: str) -> ipaddress.IPv4Address:
        """The lowest free host address of the network (gateway and leases excluded)."""
        net = self.networks[name]
        subnet = ipaddress.IPv4Network(net["Subnet"])
        taken = {ep["IPAddress"] for _, _, ep in self.endpoints_on(name)}
        taken.update(e["IPAddress"] for e in net.get("Pool") or ())  # pooled ones are leased
        taken.add(net["Gateway"])
        for addr in subnet.hosts():
            if str(addr) not in taken:
                return addr
        raise Conflict(f"no available IPv4 addresses on network {name} ({subnet})")

    # -- ports -------------------------------------------------------------------------
    def ports_in_use(self) -> list[dict]:
        return [p for c in self.containers.values() for p in c.get("Ports", [])]

    def check_port(self, host_ip: str, port: int, proto: str) -> None:
        """Refuse a host port that another container of this root, or a host socket, holds."""
        for p in self.ports_in_use():
            if p["Proto"] == proto and p["HostPort"] == port and _ips_overlap(p["HostIp"], host_ip):
                raise Conflict(
                    f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is already allocated"
                )
        if not _bindable(host_ip, port, proto):
            raise Conflict(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: address already in use")

    def free_port(self, host_ip: str, proto: str) -> int:
        """A host port for ``-P``: from the kernel's ephemeral range, as Docker picks."""
        lo, hi = _ephemeral_range()
        used = {p["HostPort"] for p in self.ports_in_use() if p["Proto"] == proto}
        start = lo + int.from_bytes(os.urandom(4), "big") % (hi - lo + 1)
        for i in range(hi - lo + 1):
            port = lo + (start - lo + i) % (hi - lo + 1)
            if port not in used and _bindable(host_ip, port, proto):
                return port
        raise Conflict("no free host port left in the ephemeral range")


def _ips_overlap(a: str, b: str) -> bool:
    return not a or not b or a == "0.0.0.0" or b == "0.0.0.0" or a == b


def _bindable(host_ip: str, port: int, proto: str) -> bool:
    import socket  # only for published ports: ~3 ms the plain bridge start does not need

    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError:
            return False
    return True


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def host_routes() -> list[ipaddress.IPv4Network]:
    """IPv4 destinations of the host's main routing table, from /proc/net/route
    (little-endian hex fields; proc(5)). The default route is skipped: every range is
    "inside" 0.0.0.0/0 and Docker does not count it as a collision either."""
    out = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                fields = line.split()
                dst = int(fields[1], 16).to_bytes(4, "little")
                mask = int(fields[7], 16).to_bytes(4, "little")
                net = ipaddress.IPv4Network(
                    (int.from_bytes(dst, "big"), bin(int.from_bytes(mask, "big")).count("1")),
                    strict=False,
                )
                if net.prefixlen:
                    out.append(net)
    except (OSError, StopIteration):
        pass
    return out


def choose_subnet(state: NetState, exclude: str | None = None) -> ipaddress.IPv4Network:
    """The first pool not overlapping a host route or another network of this root."""
    busy = host_routes() + [
        ipaddress.IPv4Network(n["Subnet"]) for n in state.networks.values() if n["Name"] != exclude
    ]
    for pool in candidate_pools():
        if not any(pool.overlaps(b) for b in busy):
            return pool
    raise Conflict("could not find an available, non-overlapping IPv4 address pool")


class NetworkStore:
    def __init__(self, cfg: NetConfig) -> None:
        self.cfg = cfg
        self.dir = cfg.state_dir
        self.file = self.dir / "state.json"

    def read(self) -> NetState:
        """The state without the lock: for ls/inspect/port and cheap checks only."""
        try:
            return NetState(read_json(self.file))
        except FileNotFoundError:
            return NetState({})

    @contextmanager
    def locked(self) -> Iterator[NetState]:
        """The state under the exclusive lock; written back when the block succeeds."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(self.dir / "lock"):
            state = self.read()
            yield state
            write_json(self.file, state.dump())

    def predefined(self) -> dict[str, dict]:
        """The records of ``host`` and ``none`` (Docker's drivers ``host`` and ``null``),
        their ids made once, on first need, and kept: ``ls`` and ``inspect`` agree."""
        state = self.read()
        if any(n not in state.predefined for n in SPECIAL_MODES):
            with self.locked() as state:
                for name in SPECIAL_MODES:
                    state.predefined.setdefault(
                        name, {"Id": os.urandom(32).hex(), "Created": now()}
                    )
        return {
            name: {"Id": state.predefined[name]["Id"], "Name": name,
                   "Driver": "null" if name == "none" else name,
                   "Created": state.predefined[name]["Created"], "Scope": "local"}
            for name in SPECIAL_MODES
        }  # fmt: skip

    def default_network(self, state: NetState) -> dict:
        """The default network's record, made on first use (its device comes up later)."""
        net = state.networks.get(DEFAULT_NETWORK)
        if net is not None:
            return net
        if self.cfg.bip is not None:
            subnet, gateway = self.cfg.bip.network, self.cfg.bip.ip
        else:
            subnet = choose_subnet(state)
            gateway = next(subnet.hosts())
        return state.add_network(
            DEFAULT_NETWORK, self.cfg.bridge, subnet, gateway, self.cfg.mtu, default=True
        )


def parse_subnet(
    subnet: str, gateway: str | None
) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Address]:
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as e:
        raise InvalidInput(f"invalid subnet {subnet}: {e}") from None
    if net.prefixlen > 30:
        raise InvalidInput(f"subnet {subnet} is too small for containers")
    if gateway:
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError as e:
            raise InvalidInput(f"invalid gateway {gateway}: {e}") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise InvalidInput(f"gateway {gateway} is not a host address of {subnet}")
    else:
        gw = next(net.hosts())
    return net, gw


def host_lock() -> FileLock:
    os.makedirs(os.path.dirname(HOST_LOCK), exist_ok=True)
    return FileLock(HOST_LOCK)
