"""``inspect`` of a container has Docker 20.10's shape (types.ContainerJSON: its keys, in
its order, Docker's zero values) and pydock's real values: the bundle's settings in
HostConfig, the /etc files' paths, and NetworkSettings from the network store, checked
against what the container itself sees. The expected key lists are written out from
Docker 20.10's api/types (moby v20.10.24: types.go, container/config.go,
container/host_config.go, network/network.go). Only the tests' own subnets are used."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from netfix import free_port, free_subnet


def words(text: str) -> list[str]:
    return text.split()


TOP = words(
    "Id Created Path Args State Image ResolvConfPath HostnamePath HostsPath LogPath Name "
    "RestartCount Driver Platform MountLabel ProcessLabel AppArmorProfile ExecIDs HostConfig "
    "GraphDriver Mounts Config NetworkSettings"
)
STATE = words(
    "Status Running Paused Restarting OOMKilled Dead Pid ExitCode Error StartedAt FinishedAt"
)
#: container.HostConfig with the embedded container.Resources: the 65 fields without
#: omitempty, and Runtime (omitempty, always set); StorageOpt, Tmpfs, Sysctls, Mounts and
#: Init appear only when set
HOSTCONFIG = words(
    "Binds ContainerIDFile LogConfig NetworkMode PortBindings RestartPolicy AutoRemove "
    "VolumeDriver VolumesFrom CapAdd CapDrop CgroupnsMode Dns DnsOptions DnsSearch ExtraHosts "
    "GroupAdd IpcMode Cgroup Links OomScoreAdj PidMode Privileged PublishAllPorts "
    "ReadonlyRootfs SecurityOpt UTSMode UsernsMode ShmSize Runtime ConsoleSize Isolation "
    "CpuShares Memory NanoCpus CgroupParent BlkioWeight BlkioWeightDevice BlkioDeviceReadBps "
    "BlkioDeviceWriteBps BlkioDeviceReadIOps BlkioDeviceWriteIOps CpuPeriod CpuQuota "
    "CpuRealtimePeriod CpuRealtimeRuntime CpusetCpus CpusetMems Devices DeviceCgroupRules "
    "DeviceRequests KernelMemory KernelMemoryTCP MemoryReservation MemorySwap "
    "MemorySwappiness OomKillDisable PidsLimit Ulimits CpuCount CpuPercent IOMaximumIOps "
    "IOMaximumBandwidth MaskedPaths ReadonlyPaths"
)
#: container.Config without its omitempty fields (ExposedPorts, Healthcheck, ArgsEscaped,
#: NetworkDisabled, MacAddress, StopSignal, StopTimeout, Shell)
CONFIG = words(
    "Hostname Domainname User AttachStdin AttachStdout AttachStderr Tty OpenStdin StdinOnce "
    "Env Cmd Image Volumes WorkingDir Entrypoint OnBuild Labels"
)
NETSETTINGS = words(
    "Bridge SandboxID HairpinMode LinkLocalIPv6Address LinkLocalIPv6PrefixLen Ports "
    "SandboxKey SecondaryIPAddresses SecondaryIPv6Addresses EndpointID Gateway "
    "GlobalIPv6Address GlobalIPv6PrefixLen IPAddress IPPrefixLen IPv6Gateway MacAddress "
    "Networks"
)
ENDPOINT = words(
    "IPAMConfig Links Aliases NetworkID EndpointID Gateway IPAddress IPPrefixLen IPv6Gateway "
    "GlobalIPv6Address GlobalIPv6PrefixLen MacAddress DriverOpts"
)


def inspect(p, name: str, *flags: str) -> dict:
    return json.loads(p.out("inspect", *flags, name))[0]


def test_inspect_has_docker_20_10_keys_in_order(pd) -> None:
    p = pd
    p("create", "--name", "cv", "busybox", check=True)
    obj = inspect(p, "cv")
    assert list(obj) == TOP
    assert list(obj["State"]) == STATE
    assert list(obj["HostConfig"]) == HOSTCONFIG and len(HOSTCONFIG) == 65
    assert list(obj["Config"]) == CONFIG
    assert list(obj["NetworkSettings"]) == NETSETTINGS
    assert list(obj["NetworkSettings"]["Networks"]) == ["none"]
    assert list(obj["NetworkSettings"]["Networks"]["none"]) == ENDPOINT
    assert list(obj["GraphDriver"]) == ["Data", "Name"]
    sized = inspect(p, "cv", "-s")
    assert list(sized) == [*TOP[:20], "SizeRw", "SizeRootFs", *TOP[20:]]
    assert sized["SizeRw"] == 0  # a pointer to 0 is written (omitempty leaves out nil only)


def test_inspect_values_come_from_what_pydock_runs(pd) -> None:
    p = pd
    p("run", "--name", "rv", "-v", "/data", "busybox", "true", check=True)
    obj = inspect(p, "rv")
    hc = obj["HostConfig"]
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    # Docker 20.10's default cgroup namespace: private on pure v2, the host's on v1/hybrid
    cgroupns = "private" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "host"
    assert (hc["IpcMode"], hc["CgroupnsMode"], hc["PidMode"], hc["UTSMode"]) == (
        "private", cgroupns, "", "")  # fmt: skip
    assert hc["ShmSize"] == 64 * 1024 * 1024  # the bundle's /dev/shm size=65536k
    assert "/proc/kcore" in hc["MaskedPaths"] and "/proc/sys" in hc["ReadonlyPaths"]
    assert (hc["Dns"], hc["Devices"], hc["Links"], hc["ConsoleSize"]) == ([], [], None, [0, 0])
    assert hc["NetworkMode"] == "none" and "Mounts" not in hc  # omitempty, no --mount
    cdir = p.root / "containers" / obj["Id"]
    assert obj["HostsPath"] == str(cdir / "hosts")
    assert obj["HostnamePath"] == str(cdir / "hostname")
    assert obj["ResolvConfPath"] == str(cdir / "resolv.conf")
    assert Path(obj["HostnamePath"]).read_text().strip() == obj["Config"]["Hostname"]
    assert obj["LogPath"] == str(cdir / f"{obj['Id']}-json.log")
    assert obj["Config"]["Cmd"] is None or obj["Config"]["Cmd"] == ["true"]
    assert [m["Destination"] for m in obj["Mounts"]] == ["/data"]
    assert "MonitorCgroup" not in obj and "Parent" not in obj
    # the image's Cmd when the run names none, as Docker's create merges it
    p("create", "--name", "dv", "busybox", check=True)
    assert inspect(p, "dv")["Config"]["Cmd"] == ["sh"]
    # --privileged: Docker writes no masked or read-only paths (nil)
    p("create", "--name", "priv", "--privileged", "busybox", check=True)
    hc = inspect(p, "priv")["HostConfig"]
    assert hc["MaskedPaths"] is None and hc["ReadonlyPaths"] is None and hc["Privileged"]
    fmt = "{{.HostConfig.KernelMemory}} {{.HostConfig.LogConfig.Type}} {{.NetworkSettings.Ports}}"
    assert p.out("inspect", "-f", fmt, "rv") == "0 json-file map[]\n"


@pytest.fixture
def net(bridge_net):
    return bridge_net


def inside(p, name: str, iface: str = "eth0") -> tuple[str, str]:
    """(address/prefix, MAC) of ``iface`` as the container sees them."""
    out = p.out("exec", name, "ip", "-4", "-o", "addr", "show", iface).split()
    mac = p.out("exec", name, "cat", f"/sys/class/net/{iface}/address").strip()
    return out[out.index("inet") + 1], mac


def test_network_settings_on_the_default_bridge(net) -> None:
    p, cfg, _ = net
    port = free_port()
    p("run", "-d", "--name", "web", "-p", f"{port}:80", "busybox", "sleep", "60", check=True)
    ns = inspect(p, "web")["NetworkSettings"]
    addr, mac = inside(p, "web")
    fmt = "{{.NetworkSettings.IPAddress}}/{{.NetworkSettings.IPPrefixLen}}"
    assert p.out("inspect", "-f", fmt, "web").strip() == addr
    assert ns["Gateway"] == cfg["gateway"] and ns["MacAddress"] == mac
    ports = json.loads(p.out("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"))
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    bridge = ns["Networks"]["bridge"]
    assert list(ns["Networks"]) == ["bridge"]
    net_id = json.loads(p.out("network", "inspect", "bridge"))[0]["Id"]
    assert bridge["NetworkID"] == net_id
    assert f"{bridge['IPAddress']}/{bridge['IPPrefixLen']}" == addr
    assert bridge["Gateway"] == cfg["gateway"] and bridge["MacAddress"] == mac
    assert bridge["EndpointID"] == ns["EndpointID"] and len(ns["EndpointID"]) == 64
    cid = inspect(p, "web")["Id"]
    listed = json.loads(p.out("network", "inspect", "bridge"))[0]["Containers"][cid]
    assert listed["EndpointID"] == ns["EndpointID"]  # network inspect agrees
    assert len(ns["SandboxID"]) == 64 and os.path.exists(ns["SandboxKey"])
    # the container's network namespace is the one SandboxKey names
    pid = inspect(p, "web")["State"]["Pid"]
    assert os.stat(ns["SandboxKey"]).st_ino == os.stat(f"/proc/{pid}/ns/net").st_ino
    p("stop", "-t", "1", "web", check=True)
    ns = inspect(p, "web")["NetworkSettings"]
    # Docker's releaseNetwork: operational data cleared, the network's id kept
    assert (ns["IPAddress"], ns["SandboxKey"], ns["Ports"], ns["EndpointID"]) == ("", "", {}, "")
    assert ns["Networks"]["bridge"]["NetworkID"] == net_id
    assert ns["Networks"]["bridge"]["IPAddress"] == ""


def test_network_settings_on_user_and_host_networks(net) -> None:
    p, _, bridges = net
    sub = free_subnet()
    bridges.append(bridges[0][:-1] + "u")
    nid = p.out(
        "network", "create", "--subnet", str(sub), "--bridge-name", bridges[1], "app"
    ).strip()
    p("run", "-d", "--name", "db", "--network", "app", "busybox", "sleep", "60", check=True)
    ns = inspect(p, "db")["NetworkSettings"]
    addr, mac = inside(p, "db")
    ep = ns["Networks"]["app"]
    assert list(ns["Networks"]) == ["app"] and ep["NetworkID"] == nid
    assert f"{ep['IPAddress']}/{ep['IPPrefixLen']}" == addr and ep["MacAddress"] == mac
    assert ep["Gateway"] == str(next(sub.hosts()))
    assert ns["IPAddress"] == "" and ns["Gateway"] == ""  # only "bridge" fills the old fields
    fmt = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{end}}"
    assert p.out("inspect", "-f", fmt, "db").strip() == f"app {addr.split('/')[0]}"
    p("run", "-d", "--name", "hv", "--network", "host", "busybox", "sleep", "60", check=True)
    ns = inspect(p, "hv")["NetworkSettings"]
    ids = dict(
        line.split()
        for line in p.out(
            "network", "ls", "--no-trunc", "--format", "{{.Name}} {{.ID}}"
        ).splitlines()
    )
    assert list(ns["Networks"]) == ["host"] and ns["Networks"]["host"]["NetworkID"] == ids["host"]
    assert ns["IPAddress"] == "" and ns["Ports"] == {}
    pid = inspect(p, "hv")["State"]["Pid"]
    assert os.stat(ns["SandboxKey"]).st_ino == os.stat("/proc/self/ns/net").st_ino
    assert ns["SandboxKey"] == f"/proc/{pid}/ns/net"
    p("rm", "-f", "db", "hv", check=True)
