"""Volume commands: ``volume create|ls|inspect|rm|prune`` (Docker's "local" driver)."""

from __future__ import annotations

import argparse
import json
import sys

from .cliutil import add_command, confirm, eprint
from .engine import Engine
from .errors import EngineError, InvalidInput
from .volumes import ANON_LABEL, VolumeStore, users_of


def _labels(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidInput(f"invalid label '{item}': empty name")
        out[key] = value
    return out


def _filters(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or key not in ("dangling", "name", "label", "label!", "driver"):
            raise InvalidInput(f"invalid filter '{item}'")
        out.setdefault(key, []).append(value)
    return out


def _matches(info: dict, filters: dict[str, list[str]], in_use: bool) -> bool:
    for value in filters.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidInput(f"invalid filter 'dangling={value}'")
        if (value.lower() in ("true", "1")) == in_use:
            return False
    names = filters.get("name", [])
    if names and not any(n in info["Name"] for n in names):
        return False
    drivers = filters.get("driver", [])
    if drivers and info["Driver"] not in drivers:
        return False
    for label in filters.get("label", []):
        key, eq, value = label.partition("=")
        if key not in info["Labels"] or (eq and info["Labels"][key] != value):
            return False
    for label in filters.get("label!", []):  # Docker: the volume must not carry it
        key, eq, value = label.partition("=")
        if key in info["Labels"] and (not eq or info["Labels"][key] == value):
            return False
    return True


def cmd_volume(engine: Engine, a: argparse.Namespace) -> int:
    store = VolumeStore(engine.root)
    store.ensure()
    if a.vol_cmd == "create":
        if a.driver != "local":
            raise EngineError(f"volume driver {a.driver!r} is not available: only local")
        if a.opt:
            raise EngineError("local volume options (-o) are not supported by this engine")
        if a.name and a.name_opt and a.name != a.name_opt:
            raise InvalidInput("conflicting options: either specify --name or provide a name")
        with store.lock:
            name, _ = store.create(a.name or a.name_opt, _labels(a.label))
        print(name)
        return 0
    if a.vol_cmd in ("ls", "list"):
        filters = _filters(a.filter)
        used = users_of(engine.containers.all())
        infos = [store.inspect(n) for n in store.names()]
        infos = [i for i in infos if _matches(i, filters, i["Name"] in used)]
        if a.quiet:
            for i in infos:
                print(i["Name"])
        else:
            sys.stdout.write(_ls_format(a.format, infos))
        return 0
    if a.vol_cmd == "inspect":
        out, failed = [], False
        for name in a.volumes:
            try:
                out.append(store.inspect(name))
            except EngineError as e:
                eprint(f"Error response from daemon: {e}")
                failed = True
        if a.format:
            from . import apitypes
            from .cmd_system import print_inspect

            failed = print_inspect(a.format, out, lambda _o: apitypes.VOLUME) or failed
        else:
            print(json.dumps(out, indent=4))
        return 1 if failed else 0
    if a.vol_cmd in ("rm", "remove"):
        failed = False
        with store.lock:
            used = users_of(engine.containers.all())
            for name in a.volumes:
                try:
                    store.remove(name, used.get(name, []))
                    print(name)
                except EngineError as e:
                    if not (a.force and "no such volume" in str(e)):
                        eprint(f"Error response from daemon: {e}")
                        failed = True
        return 1 if failed else 0
    if a.vol_cmd == "prune":
        return _prune(engine, store, a)
    raise EngineError("usage: pydock volume create|ls|inspect|rm|prune")


#: Docker's volume formatter (cli/command/formatter/volume.go): headers and default table
LS_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
               "Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS"}  # fmt: skip
_LS_DEFAULT = r"table {{.Driver}}\t{{.Name}}"


def row(info: dict, *, links: str = "N/A", size: str = "N/A"):
    """One volume as Docker's formatter sees it (``*formatter.volumeContext``); ``links``
    and ``size`` are known only to ``system df -v``."""
    from .gotemplate import Func, Struct

    labels = info.get("Labels") or {}
    doc = {"Name": info["Name"], "Driver": info["Driver"], "Scope": info.get("Scope", "local"),
           "Mountpoint": info.get("Mountpoint", ""), "Size": size, "Links": links,
           "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
           "Group": "", "Availability": "N/A", "Status": "N/A"}  # fmt: skip
    label = Func(lambda key, labels=labels: labels.get(key, ""), ("string",))
    return Struct("*formatter.volumeContext", doc, methods={"Label": label},
                  json_value=dict(sorted(doc.items())))  # fmt: skip


def _ls_format(fmt: str | None, infos: list[dict]) -> str:
    from .gotemplate import format_list

    fmt = _LS_DEFAULT if not fmt or fmt == "table" else fmt
    return format_list(fmt, [row(i) for i in infos], LS_HEADERS)


def _prune(engine: Engine, store: VolumeStore, a: argparse.Namespace) -> int:
    """Docker 23+: unused anonymous volumes, or every unused volume with ``--all``."""
    from .format import human_size

    if not a.force:
        what = "local volumes" if a.all else "anonymous local volumes"
        if not confirm(
            f"WARNING! This will remove {what} not used by at least one container.\n"
            "Are you sure you want to continue?"
        ):
            print("Total reclaimed space: 0B")  # Docker 20.10 still prints its total, exit 0
            return 0
    reclaimed, output = run_prune(engine, a.all, a.filter)
    if output:
        print(output)
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def run_prune(engine: Engine, all_volumes: bool, filters: list[str]) -> tuple[int, str]:
    """Docker's volume.RunPrune: (bytes reclaimed, the report), no question asked;
    ``system prune --volumes`` runs it (with every unused volume, as 20.10 pruned)."""
    store = VolumeStore(engine.root)
    store.ensure()
    wanted = _filters(filters)
    deleted, reclaimed = [], 0
    with store.lock:
        used = users_of(engine.containers.all())
        for name in store.names():
            info = store.inspect(name)
            if name in used or (not all_volumes and ANON_LABEL not in info["Labels"]):
                continue
            if not _matches(info, wanted, False):
                continue
            size = store.size(name)
            store.remove(name, [])
            deleted.append(name)
            reclaimed += size
    if not deleted:
        return 0, ""
    return reclaimed, "Deleted Volumes:\n" + "".join(f"{n}\n" for n in deleted)


def setup(sub) -> None:
    v = add_command(sub, "volume", cmd_volume)
    vs = v.add_subparsers(dest="vol_cmd")
    c = vs.add_parser("create")
    c.add_argument("name", nargs="?")
    c.add_argument("--name", dest="name_opt")
    c.add_argument("-d", "--driver", default="local")
    c.add_argument("-o", "--opt", action="append", default=[])
    c.add_argument("--label", action="append", default=[])
    for word in ("ls", "list"):
        ls = vs.add_parser(word)
        ls.add_argument("-q", "--quiet", action="store_true")
        ls.add_argument("-f", "--filter", action="append", default=[])
        ls.add_argument("--format")
    i = vs.add_parser("inspect")
    i.add_argument("-f", "--format")
    i.add_argument("volumes", nargs="+")
    for word in ("rm", "remove"):
        r = vs.add_parser(word)
        r.add_argument("-f", "--force", action="store_true")
        r.add_argument("volumes", nargs="+")
    p = vs.add_parser("prune")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--filter", action="append", default=[])
