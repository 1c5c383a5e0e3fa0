"""A container as ``docker inspect`` shows it: Docker 20.10's types.ContainerJSON filled
from pydock's record, its OCI bundle and its network state.

The record keeps what the flags said (Config, HostConfig as given); the rest of Docker's
shape is derived here, when someone asks, never on the start path: the settings Docker's
CLI and daemon fill in for every container (LogConfig, IpcMode, ShmSize, MaskedPaths...)
from the bundle pydock actually ran, the image's Cmd, Volumes and ExposedPorts merged as
Docker's create merges them (daemon/commit.go merge), the /etc files' paths, and
NetworkSettings from the network store. apitypes.complete then lays the type over it:
every field Docker writes, in its order, with Docker's zero values for what pydock has
not.
"""

from __future__ import annotations

from . import apitypes
from .containers import alive
from .errors import NotFound

#: record keys that are pydock's bookkeeping, not Docker's
PRIVATE = ("Creating", "Parent", "MonitorCgroup")
#: Docker's /etc files of a container, by the inspect key naming their path
ETC_PATHS = (("ResolvConfPath", "resolv.conf"), ("HostnamePath", "hostname"),
             ("HostsPath", "hosts"))  # fmt: skip
#: what Docker's CLI sends for a ``run`` without the flags (cli/command/container/opts.go:
#: empty lists, not null) and the daemon's defaults (json-file logs, restart "no")
CLI_DEFAULTS = {
    "LogConfig": {"Type": "json-file", "Config": {}},
    "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "Dns": [], "DnsOptions": [], "DnsSearch": [], "BlkioWeightDevice": [], "Devices": [],
    "OomKillDisable": False,
    # pydock's own runtime (nsutil + cgroupfs) runs every container, not runc
    "Runtime": "pydock",
}  # fmt: skip


def container_json(engine, rec: dict, size: bool = False) -> dict:
    """``docker inspect``'s object for record ``rec`` (``size``: SizeRw and SizeRootFs)."""
    from . import pslist

    out = {k: v for k, v in rec.items() if k not in PRIVATE}
    out["State"] = {k: v for k, v in rec["State"].items() if k != "Owner"}
    out["State"]["Status"] = pslist.state_word(rec)
    out["Platform"] = "linux"
    try:
        bundle = engine.bundle(rec)
    except (OSError, ValueError):
        bundle = {}  # still being created, or its bundle was lost: the record's values
    image = _image_config(engine, rec)
    out["Config"] = config(rec, image)
    out["HostConfig"] = host_config(rec, bundle)
    cdir = engine.containers.path(rec["Id"])
    for key, name in ETC_PATHS:
        out[key] = str(cdir / name) if (cdir / name).exists() else ""
    drv = engine.driver(rec["Driver"])
    out["GraphDriver"] = {
        "Data": drv.metadata(rec["Id"]) if drv.exists(rec["Id"]) else {},
        "Name": rec["Driver"],
    }
    if size:
        out["SizeRw"], out["SizeRootFs"] = pslist.sizes(engine, rec)
    out["NetworkSettings"] = network_settings(engine.root, rec, image)
    return apitypes.complete(out, apitypes.CONTAINER)


def _image_config(engine, rec: dict) -> dict:
    try:
        return engine.images.config(rec["Image"]).get("config") or {}
    except (NotFound, OSError, ValueError):
        return {}  # deleted under the container (rmi -f): the record's values alone


def config(rec: dict, image: dict) -> dict:
    """Config as Docker stores it: the image's Cmd when the run gave none (and kept the
    image's entrypoint), its Volumes, ExposedPorts and StopSignal."""
    cfg = dict(rec.get("Config") or {})
    if cfg.get("Cmd") is None and cfg.get("Entrypoint") == image.get("Entrypoint"):
        cfg["Cmd"] = image.get("Cmd")
    for key in ("Volumes", "ExposedPorts", "StopSignal", "Healthcheck", "OnBuild", "Shell"):
        if cfg.get(key) is None and image.get(key) is not None:
            cfg[key] = image[key]
    if image.get("ExposedPorts") and cfg.get("ExposedPorts") is not image.get("ExposedPorts"):
        cfg["ExposedPorts"] = {**image["ExposedPorts"], **(cfg.get("ExposedPorts") or {})}
    return cfg


def host_config(rec: dict, bundle: dict) -> dict:
    """HostConfig: the record's values over what Docker fills in for every container,
    read from the bundle pydock ran (namespaces, /dev/shm's size, masked paths)."""
    import copy

    hc = copy.deepcopy(CLI_DEFAULTS)
    linux = bundle.get("linux") or {}
    spaces = {n.get("type"): n for n in linux.get("namespaces") or []}
    if bundle:
        # Docker's words: IpcMode/CgroupnsMode "private", PidMode/UTSMode "" for a
        # namespace of the container's own, "host" for the host's
        hc["IpcMode"] = "private" if "ipc" in spaces else "host"
        hc["CgroupnsMode"] = "private" if "cgroup" in spaces else "host"
        hc["PidMode"] = "" if "pid" in spaces else "host"
        hc["UTSMode"] = "" if "uts" in spaces else "host"
        hc["ShmSize"] = _shm_size(bundle)
        if not (rec.get("HostConfig") or {}).get("Privileged"):
            # Docker's daemon writes the defaults it applies; --privileged has none (nil)
            hc["MaskedPaths"] = linux.get("maskedPaths")
            hc["ReadonlyPaths"] = linux.get("readonlyPaths")
    hc.update(rec.get("HostConfig") or {})
    return hc


def _shm_size(bundle: dict) -> int:
    """/dev/shm's tmpfs size= in bytes (Docker's ShmSize, 64 MiB by default)."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    for m in bundle.get("mounts") or []:
        if m.get("destination") != "/dev/shm":
            continue
        for o in m.get("options") or []:
            if o.startswith("size="):
                v = o[5:].lower()
                try:
                    return int(v[:-1]) * units[v[-1]] if v[-1] in units else int(v)
                except (ValueError, IndexError):
                    return 0
    return 0


# -- NetworkSettings --------------------------------------------------------------------------


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def sandbox_id(rec: dict) -> str:
    """The id of the container's network stack for this run. pydock keeps no sandbox
    object: the id is derived from the container and its start, so it is stable while
    it runs and new at each start, as Docker's."""
    return _digest(f"sandbox:{rec['Id']}:{rec['State'].get('StartedAt', '')}")


def endpoint_id(rec: dict, network_id: str) -> str:
    """The id of the container's endpoint on one network for this run (see sandbox_id)."""
    return _digest(f"endpoint:{rec['Id']}:{rec['State'].get('StartedAt', '')}:{network_id}")


def is_running(rec: dict) -> bool:
    st = rec["State"]
    return bool(st.get("Running")) and st.get("Status") == "running" and alive(st.get("Owner"))


def network_settings(root, rec: dict, image: dict) -> dict:
    """NetworkSettings as Docker 20.10 writes them: a running container's sandbox,
    endpoints and ports; a stopped one keeps only the ids of its networks (Docker's
    releaseNetwork clears the rest, daemon/container_operations.go)."""
    from .network import config as netconfig
    from .network import manager

    mode = (rec.get("HostConfig") or {}).get("NetworkMode") or ""
    running = is_running(rec)
    ns: dict = {"Bridge": "", "Ports": {}, "Networks": {}}
    if mode.startswith("container:"):  # another container's stack: Docker shows none
        return ns
    if mode in ("", "default"):
        mode = netconfig.DEFAULT_NETWORK
    cfg = netconfig.load(root)
    store = manager.NetworkStore(cfg)
    if mode in netconfig.SPECIAL_MODES:
        nets = {mode: store.predefined()[mode]}
        entry = None
    else:
        state = store.read()
        entry = state.containers.get(rec["Id"]) if running else None
        names = [mode, *((entry or {}).get("Endpoints") or {})]
        nets = {n: state.networks.get(n) or {} for n in dict.fromkeys(names)}
    for name, net in nets.items():
        ns["Networks"][name] = {"NetworkID": net.get("Id", "")}
    if not running:
        return ns
    ns["SandboxID"] = sandbox_id(rec)
    ns["SandboxKey"] = (entry or {}).get("NetNS") or f"/proc/{rec['State']['Pid']}/ns/net"
    endpoints = (entry or {}).get("Endpoints") or {}
    for name, net in nets.items():
        ep = ns["Networks"][name]
        ep["EndpointID"] = endpoint_id(rec, net.get("Id", ""))
        lease = endpoints.get(name)
        if lease is None:
            continue  # host, none: an endpoint without addresses
        ep.update(
            Gateway=net.get("Gateway", ""),
            IPAddress=lease["IPAddress"],
            IPPrefixLen=int(net["Subnet"].rpartition("/")[2]) if net.get("Subnet") else 0,
            MacAddress=lease.get("MacAddress", ""),
        )
    if entry is not None:
        ns["Ports"] = _ports(rec, image, entry.get("Ports") or [])
    bridge = ns["Networks"].get(netconfig.DEFAULT_NETWORK)
    if bridge is not None:  # Docker's DefaultNetworkSettings: the "bridge" endpoint's copy
        for key in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress"):
            if key in bridge:
                ns[key] = bridge[key]
    return ns


def _ports(rec: dict, image: dict, leases: list[dict]) -> dict:
    """nat.PortMap: every exposed port, null when unpublished, else its host bindings
    (HostPort a string, "0.0.0.0" for all addresses, as Docker writes them)."""
    out: dict[str, list | None] = {}
    exposed = [*((rec.get("Config") or {}).get("ExposedPorts") or {}),
               *(image.get("ExposedPorts") or {}),
               *((rec.get("HostConfig") or {}).get("PortBindings") or {})]  # fmt: skip
    for key in exposed:
        out.setdefault(key if "/" in key else f"{key}/tcp", None)
    for p in leases:
        key = f"{p['ContainerPort']}/{p['Proto']}"
        binding = {"HostIp": p.get("HostIp") or "0.0.0.0", "HostPort": str(p["HostPort"])}
        out[key] = [*(out.get(key) or []), binding]
    return out
