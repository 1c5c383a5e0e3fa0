"""``network ls`` and ``network inspect`` of the predefined networks (host, none): ids as
Docker's daemon gives every network, the same in every listing. No bridge is made."""

from __future__ import annotations

import json
import re


def test_host_and_none_have_ids_that_ls_and_inspect_agree_on(pd) -> None:
    p = pd
    rows = [line.split() for line in p.out("network", "ls").splitlines()]
    assert rows[0] == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    by_name = {r[1]: r for r in rows[1:]}
    assert by_name["host"][2:] == ["host", "local"] and by_name["none"][2:] == ["null", "local"]
    names = [r[1] for r in rows[1:]]
    assert names == sorted(names)  # Docker's CLI sorts by name
    quiet = p.out("network", "ls", "-q")
    assert "\n\n" not in quiet and not quiet.startswith("\n")
    short = quiet.split()
    assert all(re.fullmatch("[0-9a-f]{12}", i) for i in short) and len(short) == len(names)
    full = dict(
        line.split()
        for line in p.out(
            "network", "ls", "--no-trunc", "--format", "{{.Name}} {{.ID}}"
        ).splitlines()
    )
    assert all(re.fullmatch("[0-9a-f]{64}", i) for i in full.values())
    for name in ("host", "none"):
        assert full[name][:12] == by_name[name][0]
        info = json.loads(p.out("network", "inspect", name))[0]
        assert info["Id"] == full[name] and info["Name"] == name
        assert info["Driver"] == ("null" if name == "none" else "host")
        # by id prefix too, and the same id on every call
        assert p.out("network", "inspect", "-f", "{{.Name}}", full[name][:12]).strip() == name
    assert p.out("network", "ls", "-q") == quiet


#: types.NetworkResource of Docker 20.10 (moby v20.10.24 api/types/types.go), without
#: its omitempty Peers and Services
NETWORK_KEYS = [
    "Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal",
    "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels",
]  # fmt: skip


def test_host_network_inspect_lists_its_running_containers(pd) -> None:
    p = pd
    p("run", "-d", "--network", "host", "--name", "hn", "busybox", "sleep", "60", check=True)
    p("create", "--network", "host", "--name", "idle", "busybox", check=True)
    info = json.loads(p.out("network", "inspect", "host"))[0]
    assert list(info) == NETWORK_KEYS
    assert info["IPAM"] == {"Driver": "default", "Options": None, "Config": []}
    cid = p.out("inspect", "-f", "{{.Id}}", "hn").strip()
    assert list(info["Containers"]) == [cid]  # running ones only, as Docker's endpoints
    ep = info["Containers"][cid]
    assert list(ep) == ["Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address"]
    assert ep["Name"] == "hn" and ep["IPv4Address"] == ""
    fmt = "{{.NetworkSettings.Networks.host.EndpointID}}"
    assert ep["EndpointID"] == p.out("inspect", "-f", fmt, "hn").strip()
    p("rm", "-f", "hn", "idle", check=True)
