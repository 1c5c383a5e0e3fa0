"""Docker's API types field by field, so ``inspect --format`` sees what Docker's does.

Docker's CLI runs an inspect template on typed Go structs first: a field the record lacks
still reads as its type's zero value (``{{.HostConfig.Memory}}`` is 0, ``{{.State.Health}}``
``<nil>``, ``{{.Config.Labels}}`` ``map[]``), and a name that is no field fails. Only then does
it retry on the raw JSON with missingkey=error (``map has no entry for key "X"``), see
gotemplate.inspect. pydock's records are JSON dicts, so ``typed`` lays these schemas over
them: only fields templates can name are listed (Docker's api/types, v1.41+); fields a
record has beyond them stay readable.

Schema values: ``""``/``0``/``False`` a scalar's zero; ``LIST`` a slice, ``SMAP`` a
``map[string]string``, ``MAP`` any other map, ``ANY`` an interface; ``(name, fields)`` a struct
held by value, ``ptr(...)`` a pointer to one (nil when absent); ``listof``/``mapof`` typed
elements.
"""

from __future__ import annotations

from typing import Any

LIST, SMAP, MAP, ANY = "[]", "map[string]string", "map", "any"


def ptr(struct: tuple[str, dict]) -> tuple[str, tuple[str, dict]]:
    return ("*", struct)


def listof(spec: Any) -> tuple[str, Any]:
    return ("[]", spec)


def mapof(spec: Any) -> tuple[str, Any]:
    return ("map", spec)


def _fields(names: str, zero: Any) -> dict[str, Any]:
    return dict.fromkeys(names.split(), zero)


HEALTH = ("types.Health", {"Status": "", "FailingStreak": 0, "Log": LIST})
STATE = ("types.ContainerState", {
    **_fields("Status Error StartedAt FinishedAt", ""),
    **_fields("Running Paused Restarting OOMKilled Dead", False),
    "Pid": 0, "ExitCode": 0, "Health": ptr(HEALTH),
})  # fmt: skip
HEALTHCHECK = ("container.HealthConfig", {"Test": LIST, **_fields("Interval Timeout "
               "StartPeriod StartInterval Retries", 0)})  # fmt: skip
CONFIG = ("container.Config", {
    **_fields("Hostname Domainname User Image WorkingDir MacAddress StopSignal", ""),
    **_fields("AttachStdin AttachStdout AttachStderr Tty OpenStdin StdinOnce ArgsEscaped "
              "NetworkDisabled", False),
    **_fields("Env Cmd Entrypoint OnBuild Shell", LIST),
    "ExposedPorts": MAP, "Volumes": MAP, "Labels": SMAP, "Healthcheck": ptr(HEALTHCHECK),
    "StopTimeout": ANY,
})  # fmt: skip
HOSTCONFIG = ("container.HostConfig", {
    **_fields("ContainerIDFile NetworkMode VolumeDriver CgroupnsMode IpcMode Cgroup PidMode "
              "UTSMode UsernsMode Runtime Isolation CgroupParent CpusetCpus CpusetMems", ""),
    **_fields("Binds VolumesFrom CapAdd CapDrop Dns DnsOptions DnsSearch ExtraHosts GroupAdd "
              "Links SecurityOpt Devices Ulimits MaskedPaths ReadonlyPaths ConsoleSize "
              "DeviceRequests BlkioWeightDevice", LIST),
    **_fields("AutoRemove Privileged PublishAllPorts ReadonlyRootfs", False),
    **_fields("OomScoreAdj ShmSize CpuShares Memory NanoCpus BlkioWeight CpuPeriod CpuQuota "
              "CpuRealtimePeriod CpuRealtimeRuntime MemoryReservation MemorySwap", 0),
    **_fields("MemorySwappiness OomKillDisable PidsLimit Init", ANY),
    "PortBindings": MAP, "StorageOpt": SMAP, "Tmpfs": SMAP, "Sysctls": SMAP,
    "LogConfig": ("container.LogConfig", {"Type": "", "Config": SMAP}),
    "RestartPolicy": ("container.RestartPolicy", {"Name": "", "MaximumRetryCount": 0}),
})  # fmt: skip
MOUNT = ("container.MountPoint", {
    **_fields("Type Name Source Destination Driver Mode Propagation", ""), "RW": False,
})  # fmt: skip
ENDPOINT = ("network.EndpointSettings", {
    **_fields("MacAddress NetworkID EndpointID Gateway IPAddress IPv6Gateway "
              "GlobalIPv6Address", ""),
    **_fields("IPPrefixLen GlobalIPv6PrefixLen", 0),
    **_fields("Links Aliases DNSNames", LIST), "DriverOpts": SMAP, "IPAMConfig": ANY,
})  # fmt: skip
NETSETTINGS = ("container.NetworkSettings", {
    **_fields("Bridge SandboxID SandboxKey LinkLocalIPv6Address Gateway IPAddress MacAddress "
              "GlobalIPv6Address IPv6Gateway EndpointID", ""),
    **_fields("LinkLocalIPv6PrefixLen IPPrefixLen GlobalIPv6PrefixLen", 0),
    "HairpinMode": False, "Ports": MAP, "SecondaryIPAddresses": LIST,
    "Networks": mapof(ptr(ENDPOINT)),
})  # fmt: skip
GRAPHDRIVER = ("storage.DriverData", {"Name": "", "Data": SMAP})
CONTAINER = ("container.InspectResponse", {
    **_fields("Id Created Path Image ResolvConfPath HostnamePath HostsPath LogPath Name "
              "Driver Platform MountLabel ProcessLabel AppArmorProfile", ""),
    "Args": LIST, "ExecIDs": LIST, "RestartCount": 0, "State": ptr(STATE),
    "HostConfig": ptr(HOSTCONFIG), "GraphDriver": GRAPHDRIVER, "SizeRw": ANY,
    "SizeRootFs": ANY, "Mounts": listof(MOUNT), "Config": ptr(CONFIG),
    "NetworkSettings": ptr(NETSETTINGS),
})  # fmt: skip
IMAGE = ("image.InspectResponse", {
    **_fields("Id Parent Comment Created DockerVersion Author Architecture Variant Os "
              "OsVersion", ""),
    "RepoTags": LIST, "RepoDigests": LIST, "Size": 0, "Config": ptr(CONFIG),
    "GraphDriver": GRAPHDRIVER,
    "RootFS": ("image.RootFS", {"Type": "", "Layers": LIST}),
    "Metadata": ("image.Metadata", {"LastTagTime": ""}),
})  # fmt: skip
VOLUME = ("volume.Volume", {
    **_fields("CreatedAt Driver Mountpoint Name Scope", ""),
    "Labels": SMAP, "Options": SMAP, "Status": MAP, "UsageData": ANY,
})  # fmt: skip
IPAM_CONFIG = ("network.IPAMConfig", {**_fields("Subnet IPRange Gateway", ""),
                                      "AuxiliaryAddresses": SMAP})  # fmt: skip
NETWORK = ("network.Inspect", {
    **_fields("Name Id Created Scope Driver", ""),
    **_fields("EnableIPv4 EnableIPv6 Internal Attachable Ingress ConfigOnly", False),
    "IPAM": ("network.IPAM", {"Driver": "", "Options": SMAP, "Config": listof(IPAM_CONFIG)}),
    "ConfigFrom": ("network.ConfigReference", {"Network": ""}),
    "Containers": mapof(("network.EndpointResource", _fields(
        "Name EndpointID MacAddress IPv4Address IPv6Address", ""))),
    "Options": SMAP, "Labels": SMAP, "Peers": LIST, "Services": MAP,
})  # fmt: skip


def _zero(spec: Any) -> Any:
    from .gotemplate import NilMap, NilPtr, NilSlice, StrMap, Struct

    if isinstance(spec, tuple):
        tag, inner = spec
        if tag == "*":
            return NilPtr("*" + inner[0])
        if tag == "[]":
            return NilSlice()
        if tag == "map":
            return NilMap()
        return Struct(tag, {}, {k: _zero(v) for k, v in inner.items()}, json_value={})
    if spec == LIST:
        return NilSlice()
    if spec == SMAP:
        return StrMap()
    if spec == MAP:
        return NilMap()
    if spec == ANY:
        return None
    return spec


def typed(value: Any, spec: Any) -> Any:
    """``value`` (decoded JSON) as the Go value of type ``spec``."""
    from .gotemplate import StrMap, Struct

    if value is None:
        return _zero(spec)
    if isinstance(spec, tuple):
        tag, inner = spec
        if tag == "*":
            return typed(value, inner)
        if tag == "[]" and isinstance(value, list):
            return [typed(v, inner) for v in value]
        if tag == "map" and isinstance(value, dict):
            return {k: typed(v, inner) for k, v in value.items()}
        if isinstance(value, dict) and isinstance(inner, dict):
            data = {k: typed(v, inner.get(k)) for k, v in value.items()}
            zero = {k: _zero(v) for k, v in inner.items()}
            zero.update(dict.fromkeys((k for k in data if k not in zero), None))
            return Struct(tag, data, zero, json_value=value)
        return value
    if spec == SMAP and isinstance(value, dict):
        return StrMap(value)
    return value
