"""Networks and endpoints: what ``run``, teardown and ``pydock network`` ask for.

A container on a bridge network gets, at start: an address lease and port leases in the
store, a named network namespace, a veth pair (host end on the bridge, ``eth0`` inside),
DNAT rules for its published ports and its /etc files; at teardown (exit, ``rm``, or
``reconcile`` after a crash) all of it goes, by names derived from its id, so a
half-made start is undone as completely as a finished one. Store and kernel changes
happen under the store lock: a concurrent last teardown cannot delete a bridge that a
start just found up.

The default network ``bridge`` is made on first use and its device and NAT rules come
down with its last container (as podman's netavark does), so a store with nothing
running leaves nothing in the host's network stack; user-defined networks keep their
bridge from ``network create`` to ``network rm``, as Docker's do. The root's nftables
table goes away with its last rule.

With a namespace pool (``"netns-pool"`` in daemon.json, see pool.py) a start claims a
ready namespace instead and imports no netlink code, and teardown gives it back when the
container cannot have changed it; teardown is stdlib-only either way (umount of the
namespace, which takes the veth pair with it; rtnl.py for a bridge). A non-empty pool
keeps the default bridge up after its last container: ``network prune`` drains the pools
and brings idle bridges down.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

from .. import trace
from ..errors import Conflict, EngineError, InvalidInput, NotFound
from . import config, etcfiles, rtnl
from .store import NetState, NetworkStore, choose_subnet, host_lock, host_routes, parse_subnet

MAX_ENDPOINTS = 10

#: containers whose network this process has released (teardown runs twice on the way
#: out, from finish and from the record's removal: the second needs no store read)
_released: set[str] = set()


def host_veth(cid: str, k: int) -> str:
    """The host end of endpoint ``k``: 15 characters, IFNAMSIZ's limit."""
    return f"veth{cid[:10]}{k}"


def is_networked(mode: str | None) -> bool:
    """Whether a NetworkMode needs this package at all (none/host never do)."""
    return bool(mode) and mode not in config.SPECIAL_MODES


# -- ports ---------------------------------------------------------------------------------
def parse_publish(spec: str) -> tuple[str, str, str]:
    """``[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`` -> ("PORT/proto", host ip, host port)."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidInput(f"invalid proto: {proto}", 125)
    parts = rest.rsplit(":", 2)
    ip, host = "", ""
    if len(parts) == 3:
        ip, host, cport = parts
    elif len(parts) == 2:
        host, cport = parts
    else:
        (cport,) = parts
    for p in (cport, host):
        if p and (not p.isdigit() or not 0 < int(p) < 65536):
            raise InvalidInput(f"invalid port {p!r} in --publish {spec}", 125)
    if not cport:
        raise InvalidInput(f"no container port in --publish {spec}", 125)
    if ip:
        try:
            ipaddress.IPv4Address(ip.strip("[]"))
        except ValueError:
            raise InvalidInput(f"invalid IPv4 address {ip!r} in --publish {spec}", 125) from None
    return f"{int(cport)}/{proto}", ip, host


def port_bindings(publish: list[str]) -> dict[str, list[dict]]:
    """Docker's HostConfig.PortBindings from ``-p`` values."""
    out: dict[str, list[dict]] = {}
    for spec in publish:
        key, ip, host = parse_publish(spec)
        out.setdefault(key, []).append({"HostIp": ip, "HostPort": host})
    return out


def _wanted_ports(rec: dict, image_config) -> dict[str, list[dict]]:
    """``image_config`` is a callable: the image's config is read only for ``-P``."""
    hc = rec["HostConfig"]
    wanted = {k: list(v) for k, v in (hc.get("PortBindings") or {}).items()}
    if hc.get("PublishAllPorts"):
        # the record's (image + --expose); an older record without them: the image's
        exposed = rec["Config"].get("ExposedPorts")
        if exposed is None:
            exposed = (image_config().get("config") or {}).get("ExposedPorts") or {}
        for key in exposed:
            if "/" not in key:
                key += "/tcp"
            wanted.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    return wanted


def _lease_ports(st: NetState, wanted: dict[str, list[dict]], out: list[dict]) -> None:
    """Lease host ports into ``out`` (the container's entry, so later checks see them)."""
    for key, binds in wanted.items():
        cport, _, proto = key.partition("/")
        for b in binds:
            ip = b.get("HostIp") or ""
            if b.get("HostPort"):
                hport = int(b["HostPort"])
                st.check_port(ip, hport, proto)
            else:
                hport = st.free_port(ip, proto)
            lease = {"HostIp": ip, "HostPort": hport, "ContainerPort": int(cport), "Proto": proto}
            out.append(lease)


# -- the engine's hooks ----------------------------------------------------------------------
class _Session:
    """Lazily opened netlink and nftables handles for one start or teardown."""

    def __init__(self, cfg: config.NetConfig) -> None:
        self.cfg = cfg
        self._links = None
        self._nft = None
        self.nft_dirty = False  # a rule was removed: the table may be empty now

    @property
    def links(self):
        if self._links is None:
            from .links import Links

            self._links = Links()
        return self._links

    @property
    def nft(self):
        if self._nft is None:
            from .nft import Nft

            self._nft = Nft()
        return self._nft

    def close(self) -> None:
        if self._links is not None:
            self._links.close()
        if self._nft is not None:
            self._nft.close()

    # -- networks ----------------------------------------------------------------------
    def bring_up(self, st: NetState, net: dict) -> None:
        from . import nft

        with host_lock():
            if not net["Up"] and self.links.index(net["Bridge"]) is None:
                subnet = ipaddress.IPv4Network(net["Subnet"])
                clash = [r for r in host_routes() if r.overlaps(subnet)]
                if clash and net.get("Default") and self.cfg.bip is None:
                    subnet = choose_subnet(st, exclude=net["Name"])
                    net["Subnet"], net["Gateway"] = str(subnet), str(next(subnet.hosts()))
                elif clash:
                    raise Conflict(
                        f"subnet {subnet} of network {net['Name']} overlaps host route {clash[0]}"
                    )
            self.links.ensure_bridge(net, self.cfg.ip_forward)
        nft.add_network(self.nft, self.cfg.table, net)
        net["Up"] = True

    def bring_down(self, net: dict, pending_too: bool = False) -> None:
        """The bridge and its NAT rules go, with the pool's entries (stdlib netlink)."""
        from . import nft, pool

        pool.drain(net, pending_too)
        rtnl.delete_link(net["Bridge"])
        nft.remove_tag(self.nft, self.cfg.table, f"net:{net['Id'][:12]}")
        net["Up"] = False
        self.nft_dirty = True

    def settle(self, st: NetState) -> None:
        """Bring down idle default networks, unless a pool keeps one up; drop the table
        once nothing uses it (libnftables is loaded only if some rule went)."""
        from . import pool

        for net in st.networks.values():
            if not net.get("Default") or st.endpoints_on(net["Name"]):
                continue
            if self.cfg.pool_size <= 0 and net.get("Pool"):
                pool.drain(net, pending_too=False)  # the pool was switched off
            if pool.keeps_up(net, self.cfg):
                continue
            if net["Up"] or rtnl.link_exists(net["Bridge"]):
                self.bring_down(net)
        if self.nft_dirty:
            from . import nft

            nft.drop_table_if_unused(self.nft, self.cfg.table)

    # -- endpoints ---------------------------------------------------------------------
    def add_endpoint(self, st: NetState, cid: str, net: dict, netns: str, ns_ipr, k: int) -> dict:
        entry = st.containers[cid]
        if k >= MAX_ENDPOINTS:
            raise Conflict(f"a container can join at most {MAX_ENDPOINTS} networks")
        if not net["Up"]:
            self.bring_up(st, net)
        ip = str(st.allocate_address(net["Name"]))
        ep = {"IPAddress": ip, "MacAddress": "", "HostVeth": host_veth(cid, k), "Ifname": f"eth{k}"}
        entry["Endpoints"][net["Name"]] = ep  # leased before the kernel work: teardown finds it
        has_route = any(e.get("Gateway") for e in entry["Endpoints"].values())
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            ep["MacAddress"] = self.links.add_endpoint(
                net, fd, ns_ipr, ep["HostVeth"], ep["Ifname"], ip, gateway=not has_route
            )
        finally:
            os.close(fd)
        ep["Gateway"] = net["Gateway"] if not has_route else ""
        return ep


def _store(root: Path) -> tuple[config.NetConfig, NetworkStore]:
    cfg = config.load(root)
    return cfg, NetworkStore(cfg)


def _refresh_hosts(root: Path, st: NetState, networks: list[str], skip: str | None = None) -> None:
    """Rewrite the hosts file of every container on ``networks`` (user-defined ones)."""
    seen: set[str] = set()
    for name in networks:
        net = st.networks.get(name)
        if net is None or net.get("Default"):
            continue
        for cid, _, _ in st.endpoints_on(name):
            if cid in seen or cid == skip:
                continue
            seen.add(cid)
            path = root / "containers" / cid / "hosts"
            if path.exists():
                etcfiles.write_inplace(path, hosts_for(st, cid))


def host_gateway(root: Path, extra: list[str], st: NetState | None = None,
                 store: NetworkStore | None = None) -> list[str]:  # fmt: skip
    """``--add-host NAME:host-gateway`` entries with the default bridge's gateway address,
    the host as the containers see it (Docker's default for host-gateway is docker0's
    address). The default network is recorded on first use, as a start would; ``st``
    and ``store``: the state the caller has locked."""
    if not any(e.endswith(":host-gateway") for e in extra):
        return extra
    if st is None or store is None:
        _, store = _store(root)
        with store.locked() as state:
            gateway = store.default_network(state)["Gateway"]
    else:
        gateway = store.default_network(st)["Gateway"]
    return [e.removesuffix(":host-gateway") + ":" + gateway if e.endswith(":host-gateway")
            else e for e in extra]  # fmt: skip


def hosts_for(st: NetState, cid: str) -> str:
    entry = st.containers[cid]
    own = [(ep["IPAddress"], entry["Hostname"]) for ep in entry["Endpoints"].values()]
    peers: list[tuple[str, str]] = []
    for name in entry["Endpoints"]:
        if st.networks.get(name, {}).get("Default"):
            continue  # the default bridge has no name resolution, as in Docker
        for other, oentry, ep in st.endpoints_on(name):
            if other != cid:
                peers.append((ep["IPAddress"], oentry["Name"]))
    return etcfiles.hosts_text(own, peers, entry.get("ExtraHosts"))


def resolve_mode(root: Path, mode: str) -> str:
    """Validate a NetworkMode at create time (stdlib only): bridge, container:X or a
    user network of this root."""
    if mode in ("default", ""):
        return config.DEFAULT_NETWORK
    if mode in (*config.SPECIAL_MODES, config.DEFAULT_NETWORK) or mode.startswith("container:"):
        if mode == "container:":
            raise InvalidInput("--network container: needs a container name", 125)
        return mode
    _, store = _store(root)
    try:
        return store.read().network(mode)["Name"]
    except NotFound:
        raise NotFound(f"network {mode} not found", 125) from None


def setup(engine, rec: dict, bundle: dict) -> dict:
    """Give a starting container its network; returns the bundle to run (joined netns,
    /etc files bind-mounted). Undone completely on failure."""
    from .. import spec as specmod

    mode = rec["HostConfig"]["NetworkMode"]
    cid = rec["Id"]
    cdir = engine.containers.path(cid)
    if mode.startswith("container:"):
        return _join_container(engine, rec, bundle, mode.partition(":")[2])
    cfg, store = _store(engine.root)
    cfg.netns_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    netns = str(cfg.netns_dir / cid)
    _released.discard(cid)
    sess = _Session(cfg)
    try:
        with store.locked() as st:
            net = store.default_network(st) if mode == config.DEFAULT_NETWORK else st.network(mode)
            ports: list[dict] = []
            st.containers[cid] = {
                "Name": rec["Name"].lstrip("/"),
                "Hostname": rec["Config"]["Hostname"],
                "NetNS": netns,
                "Ports": ports,
                "Endpoints": {},
            }
            if rec["HostConfig"].get("ExtraHosts"):  # kept for rewrites when peers change
                extra = host_gateway(engine.root, rec["HostConfig"]["ExtraHosts"], st, store)
                st.containers[cid]["ExtraHosts"] = extra
            _lease_ports(st, _wanted_ports(rec, lambda: engine.images.config(rec["Image"])), ports)
            pooled = None
            if cfg.pool_size > 0 and net["Up"]:
                from . import pool

                recycle = pool.recyclable(bundle)
                pooled = pool.claim(net, cfg, recycle)
            if pooled is not None:
                netns = st.containers[cid]["NetNS"] = pooled["NetNS"]
                ep = {
                    "IPAddress": pooled["IPAddress"],
                    "MacAddress": pooled["MacAddress"],
                    "HostVeth": pooled["HostVeth"],
                    "Ifname": "eth0",
                    "Gateway": net["Gateway"],
                }
                st.containers[cid]["Endpoints"][net["Name"]] = ep
                st.containers[cid]["Pooled"] = pooled  # for give_back at teardown
                st.containers[cid]["Recycle"] = recycle
            else:
                from .links import make_netns, open_in_netns

                make_netns(netns)
                ns_ipr = open_in_netns(netns)
                try:
                    ep = sess.add_endpoint(st, cid, net, netns, ns_ipr, 0)
                finally:
                    ns_ipr.close()
                if cfg.pool_size > 0:
                    from . import pool

                    pool.want_full(net, cfg)
            if ports:
                from . import nft

                nft.add_ports(sess.nft, cfg.table, cid, ep["IPAddress"], ports)
            etcfiles.write_all(cdir, rec["Config"]["Hostname"], hosts_for(st, cid),
                               etcfiles.resolv_for(rec["HostConfig"]))  # fmt: skip
            _refresh_hosts(engine.root, st, [net["Name"]], skip=cid)
    except BaseException:
        sess.close()
        teardown(engine.root, rec, force=True)
        raise
    sess.close()
    trace.mark("network")
    return specmod.with_network(bundle, netns, {f: str(cdir / f) for f in etcfiles.FILES})


def _join_container(engine, rec: dict, bundle: dict, ref: str) -> dict:
    """``--network container:NAME``: the target's namespace and /etc files, as Docker
    shares them; the target must be running."""
    from .. import spec as specmod
    from ..containers import alive

    target = engine.containers.load(engine.containers.resolve(ref))
    st = target["State"]
    if st["Status"] != "running" or not alive(st.get("Owner")):
        raise Conflict(f"cannot join network of a non running container: {ref}", 125)
    tdir = engine.containers.path(target["Id"])
    _, store = _store(engine.root)
    entry = store.read().containers.get(target["Id"])
    if entry is not None and not entry.get("Shared"):
        with store.locked() as state:  # never given back to a pool: a joiner may outlive it
            entry = state.containers.get(target["Id"]) or entry
            entry["Shared"] = True
    netns = entry["NetNS"] if entry else f"/proc/{st['Pid']}/ns/net"
    files = {f: str(tdir / f) for f in etcfiles.FILES if (tdir / f).exists()}
    return specmod.with_network(bundle, netns, files)


def teardown(root: str | Path, rec: dict, force: bool = False) -> None:
    """Release everything a container's network holds; idempotent, crash-safe and
    stdlib-only (no pyroute2): the namespace is unmounted and unlinked, and the kernel
    frees it with the veth pair inside (veth(4)) once nothing holds it; libnftables is
    loaded only for a container with published ports or a network coming down.
    ``force`` skips the cheap "nothing left" check (a failed start's state was never
    written, yet it may have brought a bridge up)."""
    mode = rec["HostConfig"].get("NetworkMode")
    if not is_networked(mode) or mode.startswith("container:"):
        return
    cid = rec["Id"]
    if cid in _released and not force:
        return  # this process released it already (finish, then the record's removal)
    cfg, store = _store(Path(root))
    netns = cfg.netns_dir / cid
    peek = store.read()
    gone = cid not in peek.containers and not os.path.lexists(netns)
    if gone and not _idle_default(peek, cfg) and not force:
        return  # nothing of it left, nothing idle to bring down: no netlink needed
    sess = _Session(cfg)
    try:
        with store.locked() as st:
            entry = st.containers.pop(cid, None)
            if entry is None or force:
                # a start that died before its state was written: its veth may sit on a
                # bridge with the namespace already gone; names are derived from the id
                prefix = host_veth(cid, 0)[:-1]
                for name in os.listdir("/sys/class/net"):
                    if name.startswith(prefix) and len(name) == len(prefix) + 1:
                        rtnl.delete_link(name)
            if entry is None or force or entry.get("Ports"):
                from . import nft  # ctypes + libnftables: ~5 ms, only when rules exist

                nft.remove_tag(sess.nft, cfg.table, f"ctr:{cid[:12]}")
                sess.nft_dirty = True
            entry = entry or {"Endpoints": {}}
            if os.path.lexists(netns):
                from .links import remove_netns

                remove_netns(str(netns))
            own = entry.get("NetNS") or ""
            if own.startswith(str(cfg.netns_dir) + "/"):
                from . import pool

                if force or not pool.give_back(cfg, st, entry):
                    from .links import remove_netns

                    remove_netns(own)  # a pooled namespace keeps its pool-<hex> name
            _refresh_hosts(Path(root), st, list(entry["Endpoints"]))
            sess.settle(st)
    finally:
        sess.close()
    _released.add(cid)
    if "pydock.engine.network.pool" in sys.modules:  # a claimed entry did not come back
        sys.modules["pydock.engine.network.pool"].refill_after_start()
    trace.mark("network_released")


def _idle_default(st: NetState, cfg: config.NetConfig) -> bool:
    """An up default network without containers (and without a pool keeping it up)."""
    from .pool import keeps_up

    return any(
        n.get("Default") and n["Up"] and not keeps_up(n, cfg) and not st.endpoints_on(n["Name"])
        for n in st.networks.values()
    )


# -- `pydock network` ------------------------------------------------------------------------
def create_network(
    root: Path,
    name: str,
    subnet: str | None,
    gateway: str | None,
    bridge: str | None,
    mtu: int | None,
) -> dict:
    from ..containers import valid_name

    reserved = (*config.SPECIAL_MODES, config.DEFAULT_NETWORK, "default")
    if not valid_name(name, 1) or name in reserved:
        raise InvalidInput(f"invalid or reserved network name: {name}")
    cfg, store = _store(root)
    sess = _Session(cfg)
    try:
        with store.locked() as st, host_lock():
            if subnet:
                net_, gw = parse_subnet(subnet, gateway)
                clash = [r for r in host_routes() if r.overlaps(net_)]
                if clash:
                    raise Conflict(f"subnet {net_} overlaps host route {clash[0]}")
            else:
                net_ = choose_subnet(st)
                gw = next(net_.hosts())
            net = st.add_network(name, bridge or "", net_, gw, mtu or cfg.mtu)
            net["Bridge"] = bridge or f"br-{net['Id'][:12]}"
            if len(net["Bridge"]) > 15:
                raise InvalidInput(f"bridge name {net['Bridge']!r} is longer than 15 characters")
            try:
                sess.links.ensure_bridge(net, cfg.ip_forward)
                from . import nft

                nft.add_network(sess.nft, cfg.table, net)
            except BaseException:
                sess.links.delete_link(net["Bridge"])
                raise
            net["Up"] = True
            net["PoolDebt"] = cfg.pool_size
    finally:
        sess.close()
    if cfg.pool_size > 0:  # not a start: the pool is filled right away, in this process
        from . import pool

        pool.refill(root, only=name)
    from .. import events

    events.emit(root, "network", "create", net["Id"], {"name": name, "type": "bridge"})
    return net


def remove_network(root: Path, ref: str) -> str:
    """``network rm``: the bridge, its rules and its pool go. The pool lock waits for a
    refill in flight, so no entry is being built on the bridge while it goes."""
    from .pool import pool_lock

    cfg, store = _store(root)
    sess = _Session(cfg)
    try:
        with pool_lock(cfg), store.locked() as st:
            net = st.network(ref)
            users = st.endpoints_on(net["Name"])
            if users:
                names = ", ".join(c["Name"] for _, c, _ in users)
                raise Conflict(
                    f"error while removing network: network {net['Name']} has active "
                    f"endpoints ({names})"
                )
            sess.bring_down(net, pending_too=True)
            del st.networks[net["Name"]]
            sess.settle(st)
        from .. import events

        events.emit(root, "network", "destroy", net["Id"], {"name": net["Name"],
                                                            "type": "bridge"})  # fmt: skip
        return net["Name"]
    finally:
        sess.close()


def prune_networks(root: Path, keep=None) -> list[str]:  # noqa: ANN001
    """``network prune``: every network without containers loses its pool and its
    bridge; user networks are deleted (Docker's prune), the default one keeps its record
    and comes back up on next use. Also the reconcile pass of the pools (pool.py).
    ``keep(net)``: the prune filters (False leaves a user network alone). Returns the
    deleted user networks' names."""
    from . import pool

    cfg, store = _store(root)
    sess = _Session(cfg)
    removed: list[str] = []
    try:
        with pool.pool_lock(cfg), store.locked() as st:
            pool.reconcile_locked(cfg, st)
            for net in list(st.networks.values()):
                if st.endpoints_on(net["Name"]):
                    continue
                if keep is not None and not net.get("Default") and not keep(net):
                    continue
                pool.drain(net, pending_too=True)
                if not net.get("Default"):
                    sess.bring_down(net, pending_too=True)
                    del st.networks[net["Name"]]
                    removed.append(net["Name"])
                elif net["Up"] or rtnl.link_exists(net["Bridge"]):
                    sess.bring_down(net, pending_too=True)
            sess.nft_dirty = True
            sess.settle(st)
    finally:
        sess.close()
    return removed


def connect(engine, ref: str, container: str) -> None:
    """Add an endpoint on network ``ref`` to a running container (eth1, eth2...)."""
    from ..containers import alive

    rec = engine.containers.load(engine.containers.resolve(container))
    if rec["State"]["Status"] != "running" or not alive(rec["State"].get("Owner")):
        raise Conflict(
            f"container {container} is not running (connect works on running containers)"
        )
    mode = rec["HostConfig"]["NetworkMode"]
    if mode == "host" or mode.startswith("container:"):
        raise Conflict(f"container {container} shares another network stack ({mode})")
    cfg, store = _store(engine.root)
    sess = _Session(cfg)
    cid = rec["Id"]
    try:
        with store.locked() as st:
            from .links import open_in_netns

            net = st.network(ref)
            entry = st.containers.setdefault(
                cid,
                {"Name": rec["Name"].lstrip("/"), "Hostname": rec["Config"]["Hostname"],
                 "NetNS": f"/proc/{rec['State']['Pid']}/ns/net", "Ports": [], "Endpoints": {}},
            )  # fmt: skip
            if net["Name"] in entry["Endpoints"]:
                raise Conflict(
                    f"container {container} is already attached to network {net['Name']}"
                )
            used = {int(ep["HostVeth"][-1]) for ep in entry["Endpoints"].values()}
            k = min(set(range(MAX_ENDPOINTS + 1)) - used)
            ns_ipr = open_in_netns(entry["NetNS"])
            try:
                sess.add_endpoint(st, cid, net, entry["NetNS"], ns_ipr, k)
            except BaseException:
                sess.links.delete_link(host_veth(cid, k))
                raise
            finally:
                ns_ipr.close()
            _refresh_hosts(engine.root, st, [net["Name"]])
    finally:
        sess.close()


def disconnect(engine, ref: str, container: str) -> None:
    cid = engine.containers.resolve(container)
    cfg, store = _store(engine.root)
    sess = _Session(cfg)
    try:
        with store.locked() as st:
            net = st.network(ref)
            entry = st.containers.get(cid)
            if not entry or net["Name"] not in entry["Endpoints"]:
                raise NotFound(f"container {container} is not connected to network {net['Name']}")
            ep = entry["Endpoints"].pop(net["Name"])
            sess.links.delete_link(ep["HostVeth"])
            _refresh_hosts(engine.root, st, [net["Name"]])
            path = engine.containers.path(cid) / "hosts"
            if path.exists():
                etcfiles.write_inplace(path, hosts_for(st, cid))
            sess.settle(st)
    finally:
        sess.close()


def list_networks(root: Path) -> list[dict]:
    """Every network, ``host`` and ``none`` with their ids, in the order of Docker's CLI
    (natural order of the names, cli/command/network/list.go)."""
    _, store = _store(root)
    special = list(store.predefined().values())
    nets = [dict(n, Scope="local") for n in store.read().networks.values()] + special
    return sorted(nets, key=lambda n: natural_key(n["Name"]))


def natural_key(name: str) -> list:
    """Digit runs compare as numbers (moby's sortorder.NaturalLess): net2 < net10."""
    import re

    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def find_network(root: Path, ref: str) -> dict:
    """A network by name, full id or unique id prefix, ``host`` and ``none`` included:
    the bridge record, or the predefined one (Driver host or null)."""
    _, store = _store(root)
    special = store.predefined()
    if ref in special:
        return special[ref]
    st = store.read()
    if ref in st.networks:
        return st.networks[ref]
    hits = [
        n for n in [*st.networks.values(), *special.values()] if ref and n["Id"].startswith(ref)
    ]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise InvalidInput(f"network {ref} is ambiguous ({len(hits)} matches found based on ID)")
    raise NotFound(f"network {ref} not found")


def inspect_network(root: Path, ref: str) -> dict:
    net = find_network(root, ref)
    if net["Driver"] != "bridge":  # host, none: no addresses, no options (Docker's)
        return {"Name": net["Name"], "Id": net["Id"], "Created": net["Created"],
                "Scope": "local", "Driver": net["Driver"],
                "IPAM": {"Driver": "default", "Options": None, "Config": []},
                "Containers": {}, "Options": {}, "Labels": {}}  # fmt: skip
    _, store = _store(root)
    st = store.read()
    prefix = ipaddress.IPv4Network(net["Subnet"]).prefixlen
    return {
        "Name": net["Name"],
        "Id": net["Id"],
        "Created": net["Created"],
        "Scope": "local",
        "Driver": "bridge",
        "IPAM": {
            "Driver": "default",
            "Config": [{"Subnet": net["Subnet"], "Gateway": net["Gateway"]}],
        },
        "Options": {
            "com.docker.network.bridge.name": net["Bridge"],
            "com.docker.network.driver.mtu": str(net["MTU"]),
        },
        "Containers": {
            cid: {
                "Name": c["Name"],
                "MacAddress": ep["MacAddress"],
                "IPv4Address": f"{ep['IPAddress']}/{prefix}",
            }
            for cid, c, ep in st.endpoints_on(net["Name"])
        },
    }


def container_ports(root: Path, cid: str) -> list[dict]:
    _, store = _store(root)
    entry = store.read().containers.get(cid)
    return list(entry["Ports"]) if entry else []


def container_endpoints(root: Path, cid: str) -> dict:
    _, store = _store(root)
    entry = store.read().containers.get(cid)
    return dict(entry["Endpoints"]) if entry else {}


__all__ = ["EngineError", "setup", "teardown"]
