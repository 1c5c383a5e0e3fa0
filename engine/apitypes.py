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


def opt(spec: Any) -> tuple[str, Any]:
    """A field tagged ``json:",omitempty"``: left out of the JSON when empty (nil, "",
    0, false, an empty slice or map), still a field templates can name."""
    return ("?", spec)


def _bare(spec: Any) -> Any:
    return spec[1] if isinstance(spec, tuple) and spec[0] == "?" else spec


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
    **_fields("Status", ""), **_fields("Running Paused Restarting OOMKilled Dead", False),
    "Pid": 0, "ExitCode": 0, **_fields("Error StartedAt FinishedAt", ""),
    "Health": opt(ptr(HEALTH)),
})  # fmt: skip
HEALTHCHECK = ("container.HealthConfig", {"Test": LIST, **_fields("Interval Timeout "
               "StartPeriod StartInterval Retries", opt(0))})  # fmt: skip
CONFIG = ("container.Config", {
    **_fields("Hostname Domainname User", ""),
    **_fields("AttachStdin AttachStdout AttachStderr", False), "ExposedPorts": opt(MAP),
    **_fields("Tty OpenStdin StdinOnce", False), **_fields("Env Cmd", LIST),
    "Healthcheck": opt(ptr(HEALTHCHECK)), "ArgsEscaped": opt(False), "Image": "",
    "Volumes": MAP, "WorkingDir": "", "Entrypoint": LIST, "NetworkDisabled": opt(False),
    "MacAddress": opt(""), "OnBuild": LIST, "Labels": SMAP, "StopSignal": opt(""),
    "StopTimeout": opt(ANY), "Shell": opt(LIST),
})  # fmt: skip
LOGCONFIG = ("container.LogConfig", {"Type": "", "Config": SMAP})
RESTARTPOLICY = ("container.RestartPolicy", {"Name": "", "MaximumRetryCount": 0})
#: container.HostConfig with its embedded container.Resources, in Go's field order (the
#: order of the JSON): 65 keys always present, 5 more (omitempty) when set
HOSTCONFIG = ("container.HostConfig", {
    "Binds": LIST, "ContainerIDFile": "", "LogConfig": LOGCONFIG, "NetworkMode": "",
    "PortBindings": MAP, "RestartPolicy": RESTARTPOLICY, "AutoRemove": False,
    "VolumeDriver": "", **_fields("VolumesFrom CapAdd CapDrop", LIST), "CgroupnsMode": "",
    **_fields("Dns DnsOptions DnsSearch ExtraHosts GroupAdd", LIST),
    **_fields("IpcMode Cgroup", ""), "Links": LIST, "OomScoreAdj": 0, "PidMode": "",
    **_fields("Privileged PublishAllPorts ReadonlyRootfs", False), "SecurityOpt": LIST,
    **_fields("StorageOpt Tmpfs", opt(SMAP)), **_fields("UTSMode UsernsMode", ""),
    "ShmSize": 0, "Sysctls": opt(SMAP), "Runtime": opt(""), "ConsoleSize": [0, 0],
    "Isolation": "",
    # container.Resources
    **_fields("CpuShares Memory NanoCpus", 0), "CgroupParent": "", "BlkioWeight": 0,
    **_fields("BlkioWeightDevice BlkioDeviceReadBps BlkioDeviceWriteBps BlkioDeviceReadIOps "
              "BlkioDeviceWriteIOps", LIST),
    **_fields("CpuPeriod CpuQuota CpuRealtimePeriod CpuRealtimeRuntime", 0),
    **_fields("CpusetCpus CpusetMems", ""),
    **_fields("Devices DeviceCgroupRules DeviceRequests", LIST),
    **_fields("KernelMemory KernelMemoryTCP MemoryReservation MemorySwap", 0),
    **_fields("MemorySwappiness OomKillDisable PidsLimit", ANY), "Ulimits": LIST,
    **_fields("CpuCount CpuPercent IOMaximumIOps IOMaximumBandwidth", 0),
    # container.HostConfig again
    "Mounts": opt(LIST), **_fields("MaskedPaths ReadonlyPaths", LIST), "Init": opt(ANY),
})  # fmt: skip
MOUNT = ("types.MountPoint", {
    "Type": opt(""), "Name": opt(""), **_fields("Source Destination", ""), "Driver": opt(""),
    "Mode": "", "RW": False, "Propagation": "",
})  # fmt: skip
ENDPOINT = ("network.EndpointSettings", {
    "IPAMConfig": ANY, **_fields("Links Aliases", LIST),
    **_fields("NetworkID EndpointID Gateway IPAddress", ""), "IPPrefixLen": 0,
    **_fields("IPv6Gateway GlobalIPv6Address", ""), "GlobalIPv6PrefixLen": 0,
    "MacAddress": "", "DriverOpts": SMAP,
    "DNSNames": opt(LIST),  # API 1.44: named by templates, absent from 20.10's JSON
})  # fmt: skip
NETSETTINGS = ("types.NetworkSettings", {
    # types.NetworkSettingsBase
    **_fields("Bridge SandboxID", ""), "HairpinMode": False, "LinkLocalIPv6Address": "",
    "LinkLocalIPv6PrefixLen": 0, "Ports": MAP, "SandboxKey": "",
    **_fields("SecondaryIPAddresses SecondaryIPv6Addresses", LIST),
    # types.DefaultNetworkSettings: the "bridge" network's endpoint, for old clients
    **_fields("EndpointID Gateway GlobalIPv6Address", ""), "GlobalIPv6PrefixLen": 0,
    "IPAddress": "", "IPPrefixLen": 0, **_fields("IPv6Gateway MacAddress", ""),
    "Networks": mapof(ptr(ENDPOINT)),
})  # fmt: skip
GRAPHDRIVER = ("types.GraphDriverData", {"Data": SMAP, "Name": ""})
#: types.ContainerJSON (ContainerJSONBase, then Mounts, Config, NetworkSettings)
CONTAINER = ("types.ContainerJSON", {
    **_fields("Id Created Path", ""), "Args": LIST, "State": ptr(STATE),
    **_fields("Image ResolvConfPath HostnamePath HostsPath LogPath Name", ""),
    "RestartCount": 0,
    **_fields("Driver Platform MountLabel ProcessLabel AppArmorProfile", ""),
    "ExecIDs": LIST, "HostConfig": ptr(HOSTCONFIG), "GraphDriver": GRAPHDRIVER,
    **_fields("SizeRw SizeRootFs", opt(ANY)), "Mounts": listof(MOUNT),
    "Config": ptr(CONFIG), "NetworkSettings": ptr(NETSETTINGS),
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
IPAM_CONFIG = ("network.IPAMConfig", {**_fields("Subnet IPRange Gateway", opt("")),
                                      "AuxiliaryAddresses": opt(SMAP)})  # fmt: skip
#: types.NetworkResource (network inspect), in Go's order
NETWORK = ("types.NetworkResource", {
    **_fields("Name Id Created Scope Driver", ""), "EnableIPv6": False,
    "EnableIPv4": opt(False),  # API 1.47: named by templates, absent from 20.10's JSON
    "IPAM": ("network.IPAM", {"Driver": "", "Options": SMAP, "Config": listof(IPAM_CONFIG)}),
    **_fields("Internal Attachable Ingress", False),
    "ConfigFrom": ("network.ConfigReference", {"Network": ""}), "ConfigOnly": False,
    "Containers": mapof(("types.EndpointResource", _fields(
        "Name EndpointID MacAddress IPv4Address IPv6Address", ""))),
    "Options": SMAP, "Labels": SMAP, "Peers": opt(LIST), "Services": opt(MAP),
})  # fmt: skip


def _zero(spec: Any) -> Any:
    from .gotemplate import NilMap, NilPtr, NilSlice, StrMap, Struct

    spec = _bare(spec)
    if isinstance(spec, list):
        return list(spec)  # an array ([2]uint): its zero has every element
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

    spec = _bare(spec)
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


def complete(value: Any, spec: Any) -> Any:
    """``value`` (decoded JSON) as Docker's encoding/json writes the Go value of type
    ``spec``: every field of a struct in the struct's order, the ones the value lacks as
    their zero (``null`` for slices, maps and pointers), omitempty ones only when set.
    Keys the value has beyond the type's fields follow them. The JSON twin of ``typed``:
    one schema serves ``inspect``'s output and its ``--format``."""
    spec = _bare(spec)
    if not isinstance(spec, tuple):
        return value
    tag, inner = spec
    if tag in ("*", "[]", "map"):
        if value is None:
            return None
        if tag == "*":
            return complete(value, inner)
        if tag == "[]" and isinstance(value, list):
            return [complete(v, inner) for v in value]
        if tag == "map" and isinstance(value, dict):
            return {k: complete(v, inner) for k, v in value.items()}
        return value
    if value is None:
        value = {}  # a struct held by value is never null
    if not isinstance(value, dict):
        return value
    out = {}
    for key, field in inner.items():
        v = complete(value[key], field) if key in value else _json_zero(field)
        if not (isinstance(field, tuple) and field[0] == "?" and _empty(v, field[1])):
            out[key] = v
    out.update((k, v) for k, v in value.items() if k not in inner)
    return out


def _json_zero(spec: Any) -> Any:
    spec = _bare(spec)
    if isinstance(spec, list):
        return list(spec)
    if isinstance(spec, tuple):
        return None if spec[0] in ("*", "[]", "map") else complete({}, spec)
    return None if spec in (LIST, SMAP, MAP, ANY) else spec


def _empty(v: Any, spec: Any) -> bool:
    """Go's omitempty test: nil, "", 0, false, an empty slice or map. A pointer (``ptr``,
    ``ANY``) is empty only when nil: ``SizeRw`` 0 is written."""
    if v is None:
        return True
    if spec == ANY or (isinstance(spec, tuple) and spec[0] == "*"):
        return False
    return v in ("", 0, [], {})  # False == 0
