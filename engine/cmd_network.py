"""Network commands: ``network create|ls|inspect|rm|prune|connect|disconnect``, ``port``."""

from __future__ import annotations

import argparse
import json
import sys

from .cliutil import add_command, confirm, eprint
from .engine import Engine
from .errors import EngineError


def cmd_network(engine: Engine, a: argparse.Namespace) -> int:
    from .network import manager

    if a.net_cmd == "create":
        net = manager.create_network(engine.root, a.name, a.subnet, a.gateway, a.opt_bridge, a.mtu)
        print(net["Id"])
    elif a.net_cmd in ("ls", "list"):
        nets = manager.list_networks(engine.root)
        if a.quiet:
            for n in nets:
                print(n["Id"][:12] if not a.no_trunc else n["Id"])
        else:
            sys.stdout.write(_ls_format(a.format, nets, a.no_trunc))
    elif a.net_cmd == "inspect":
        out, failed = [], False
        for ref in a.networks:
            try:
                out.append(_network_json(engine, manager.inspect_network(engine.root, ref)))
            except EngineError as e:
                eprint(f"Error response from daemon: {e}")
                failed = True
        if a.format:
            from . import apitypes
            from .cmd_system import print_inspect

            failed = print_inspect(a.format, out, lambda _o: apitypes.NETWORK) or failed
        else:
            print(json.dumps(out, indent=4))
        return 1 if failed else 0
    elif a.net_cmd in ("rm", "remove"):
        failed = False
        for ref in a.networks:
            try:
                print(manager.remove_network(engine.root, ref))
            except EngineError as e:
                eprint(f"Error response from daemon: {e}")
                failed = True
        return 1 if failed else 0
    elif a.net_cmd == "prune":
        if not a.force and not confirm(
            "WARNING! This will remove all custom networks not used by at least one "
            "container.\nAre you sure you want to continue?"
        ):
            return 0  # Docker 20.10 prints nothing more
        output = run_prune(engine, a.filter)
        if output:
            print(output)  # and a blank line, as Docker's Fprintln of the report
    elif a.net_cmd == "connect":
        manager.connect(engine, a.network, a.container)
    elif a.net_cmd == "disconnect":
        manager.disconnect(engine, a.network, a.container)
    else:
        raise EngineError("usage: pydock network create|ls|inspect|rm|prune|connect|disconnect")
    return 0


def _network_json(engine: Engine, info: dict) -> dict:
    """``network inspect``'s object as Docker 20.10 writes types.NetworkResource: its
    endpoints with the ids container inspect shows, and on host and none the running
    containers that use them (endpoints without addresses, as Docker lists them)."""
    from . import apitypes, containerview

    recs = {r["Id"]: r for r in engine.containers.all()}
    containers = info.setdefault("Containers", {})
    for cid, ep in containers.items():
        rec = recs.get(cid)
        ep.setdefault("EndpointID", containerview.endpoint_id(rec, info["Id"]) if rec else "")
    if info["Driver"] in ("host", "null"):
        for cid, rec in recs.items():
            mode = rec["HostConfig"].get("NetworkMode")
            if mode == info["Name"] and containerview.is_running(rec):
                eid = containerview.endpoint_id(rec, info["Id"])
                containers[cid] = {"Name": rec["Name"].lstrip("/"), "EndpointID": eid}
    return apitypes.complete(info, apitypes.NETWORK)


def run_prune(engine: Engine, filters: list[str]) -> str:
    """Docker's network.RunPrune: the report of the user networks no container uses
    (``until=``, ``label=``, ``label!=`` filters), no question asked; ``system prune``
    runs it too."""
    from .manage import PruneFilter
    from .network import manager

    keep = PruneFilter(filters)
    removed = manager.prune_networks(
        engine.root, keep=lambda n: keep.matches(n.get("Created", ""), n.get("Labels"))
    )
    return "Deleted Networks:\n" + "".join(f"{n}\n" for n in removed) if removed else ""


#: Docker's network formatter (cli/command/network/formatter.go)
_LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "IPv6": "IPV6", "IPv4": "IPV4", "Internal": "INTERNAL", "Labels": "LABELS",
               "CreatedAt": "CREATED AT"}  # fmt: skip
_LS_DEFAULT = r"table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


def _ls_format(fmt: str | None, nets: list[dict], no_trunc: bool) -> str:
    from .gotemplate import Func, Struct, format_list

    rows = []
    for n in nets:
        labels = n.get("Labels") or {}
        doc = {"ID": n["Id"] if no_trunc else n["Id"][:12], "Name": n["Name"],
               "Driver": n["Driver"], "Scope": n["Scope"],
               "IPv6": str(bool(n.get("EnableIPv6"))).lower(),
               "IPv4": str(n.get("EnableIPv4", True)).lower(),
               "Internal": str(bool(n.get("Internal"))).lower(),
               "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
               "CreatedAt": n.get("Created", "")}  # fmt: skip
        label = Func(lambda key, labels=labels: labels.get(key, ""), ("string",))
        rows.append(Struct("*network.networkContext", doc, methods={"Label": label},
                           json_value=dict(sorted(doc.items()))))  # fmt: skip
    fmt = _LS_DEFAULT if not fmt or fmt == "table" else fmt
    return format_list(fmt, rows, _LS_HEADERS)


def cmd_port(engine: Engine, a: argparse.Namespace) -> int:
    """``pydock port NAME [PORT[/PROTO]]``: Docker's "8080/tcp -> 0.0.0.0:8080" lines."""
    from .network import manager

    cid = engine.containers.resolve(a.container)
    ports = manager.container_ports(engine.root, cid)
    want = None
    if a.port:
        p, _, proto = a.port.partition("/")
        want = (int(p), proto or "tcp")
    lines = []
    for p in sorted(ports, key=lambda p: (p["ContainerPort"], p["Proto"])):
        if want and (p["ContainerPort"], p["Proto"]) != want:
            continue
        host = f"{p['HostIp'] or '0.0.0.0'}:{p['HostPort']}"
        lines.append(host if want else f"{p['ContainerPort']}/{p['Proto']} -> {host}")
    if want and not lines:
        raise EngineError(f"no public port '{a.port}' published for {a.container}")
    for line in lines:
        print(line)
    return 0


def setup(sub) -> None:
    n = add_command(sub, "network", cmd_network)
    nsub = n.add_subparsers(dest="net_cmd")
    c = nsub.add_parser("create")
    c.add_argument("--subnet")
    c.add_argument("--gateway")
    c.add_argument("-d", "--driver", default="bridge", choices=["bridge"])
    c.add_argument("--mtu", type=int)
    c.add_argument("--bridge-name", dest="opt_bridge", help="the bridge device (default br-<id12>)")
    c.add_argument("name")
    for word in ("ls", "list"):
        ls = nsub.add_parser(word)
        ls.add_argument("-q", "--quiet", action="store_true")
        ls.add_argument("--no-trunc", action="store_true")
        ls.add_argument("--format")
    i = nsub.add_parser("inspect")
    i.add_argument("-f", "--format")
    i.add_argument("networks", nargs="+")
    for word in ("rm", "remove"):
        r = nsub.add_parser(word)
        r.add_argument("networks", nargs="+")
    pr = nsub.add_parser("prune", help="remove unused networks and drain namespace pools")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.add_argument("--filter", action="append", default=[], help="until=, label=, label!=")
    for word in ("connect", "disconnect"):
        cc = nsub.add_parser(word)
        cc.add_argument("network")
        cc.add_argument("container")
    p = add_command(sub, "port", cmd_port)
    p.add_argument("container")
    p.add_argument("port", nargs="?")
