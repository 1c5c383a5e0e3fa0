"""System commands: inspect (containers and images), version, info."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import __version__
from .cliutil import API_VERSION, add_command, eprint
from .engine import Engine
from .errors import EngineError, NotFound


def cmd_inspect(engine: Engine, a: argparse.Namespace) -> int:
    out = []
    failed = False
    for ref in a.objects:
        try:
            out.append(
                _inspect_one(engine, ref, getattr(a, "type", None), getattr(a, "size", False))
            )
        except EngineError as e:
            # Docker's words: container/image inspect name their kind, inspect says object
            kind = {"container": "container", "image": "image"}.get(getattr(a, "type", None) or "")
            eprint(f"Error: No such {kind or 'object'}: {ref}" if isinstance(e, NotFound)
                   else f"Error: {e}")  # fmt: skip
            failed = True
    if a.format:
        failed = print_inspect(a.format, out, _kind_of) or failed
    else:
        print(json.dumps(out, indent=4))
    return 1 if failed else 0


def _kind_of(obj: dict):
    from . import apitypes

    return apitypes.CONTAINER if "State" in obj else apitypes.IMAGE


def print_inspect(fmt: str, objects: list, spec) -> bool:  # noqa: ANN001
    """``--format`` of every inspect command: Docker's inspector (gotemplate.inspect) over
    the typed view (apitypes) and the raw record; ``spec(obj)`` is an object's API type.
    Prints the output, then each failure as one line; True when one failed."""
    from . import apitypes, gotemplate

    text, errors = gotemplate.inspect(
        fmt, [(apitypes.typed(obj, spec(obj)), obj) for obj in objects]
    )
    sys.stdout.write(text)
    sys.stdout.flush()
    for e in errors:
        eprint(f"pydock: {e}")
    return bool(errors)


def _inspect_one(engine: Engine, ref: str, kind: str | None, size: bool = False) -> dict:
    if kind in (None, "container"):
        try:
            rec = engine.containers.load(engine.containers.resolve(ref))
        except NotFound:
            if kind == "container":
                raise
        else:
            return _container(engine, rec, size)
    image_id = engine.images.resolve(ref)
    config = engine.images.config(image_id)
    chain = engine.images.layer_chain(image_id)
    return {
        "Id": image_id,
        "RepoTags": engine.images.tags_of(image_id),
        "RepoDigests": engine.images.repo_digests(image_id),
        "Created": config.get("created", ""),
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Config": config.get("config", {}),
        "RootFS": {"Type": "layers", "Layers": config.get("rootfs", {}).get("diff_ids", [])},
        "Size": engine.images.image_size(image_id),
        "GraphDriver": {
            "Name": ",".join(
                d
                for d in engine.images.drivers_with_layers()
                if engine.images.layer_record(d, chain[-1])
            )
            if chain
            else ""
        },
    }


def _container(engine: Engine, rec: dict, size: bool) -> dict:
    from .containerview import container_json

    return container_json(engine, rec, size)


# -- system ---------------------------------------------------------------------------------


def cmd_version(engine: Engine | None, a: argparse.Namespace) -> int:
    import platform

    if a.format:
        from . import gotemplate

        # docker version: template "version" over a versionInfo, through
        # tabwriter.NewWriter(out, 20, 1, 1, ' ', 0)
        sys.stdout.write(
            gotemplate.format_one(
                a.format, _version_info(), name="version", minwidth=20, padding=1
            )  # fmt: skip
        )
        return 0
    print("Client:")
    print(f" Version:           {__version__}")
    print(f" API version:       {API_VERSION}")
    print(f" Python version:    {platform.python_version()}")
    print(f" OS/Arch:           linux/{_arch()}")
    print()
    print("Server: pydock (daemonless)")
    print(" Engine:")
    print(f"  Version:          {__version__}")
    print(f"  API version:      {API_VERSION}")
    print(f"  Kernel Version:   {os.uname().release}")
    return 0


def _version_info():
    """docker version's template data: ``.Client`` and ``.Server`` as Docker names them."""
    import platform

    from .gotemplate import Struct

    client = {
        "Platform": Struct("struct { Name string }", {"Name": "pydock"}),
        "Version": __version__, "ApiVersion": API_VERSION, "DefaultAPIVersion": API_VERSION,
        "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
        "Arch": _arch(), "BuildTime": "", "Context": "default", "Experimental": True,
    }  # fmt: skip
    engine = {"Name": "Engine", "Version": __version__,
              "Details": {"ApiVersion": API_VERSION, "KernelVersion": os.uname().release,
                          "Os": "linux", "Arch": _arch()}}  # fmt: skip
    server = {
        "Platform": Struct("struct { Name string }", {"Name": "pydock (daemonless)"}),
        "Components": [Struct("types.ComponentVersion", engine)],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": API_VERSION,
        "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
        "Arch": _arch(), "KernelVersion": os.uname().release, "Experimental": False,
        "BuildTime": "",
    }  # fmt: skip
    return Struct(
        "system.versionInfo",
        {"Client": Struct("system.clientVersion", client),
         "Server": Struct("*system.serverVersion", server)},
        json_value={"Client": client, "Server": server},
    )  # fmt: skip


def _arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def cmd_info(engine: Engine, a: argparse.Namespace) -> int:
    from .. import cgroupfs
    from ..drivers import registry

    engine.reconcile()
    recs = engine.containers.all()
    running = sum(r["State"]["Status"] == "running" for r in recs)
    name = engine.driver_name()
    drv = engine.driver(name)
    if a.format:
        from . import gotemplate

        info = _info(engine, recs, running, name, drv)
        sys.stdout.write(gotemplate.format_one(a.format, info))
        return 0
    registry_lines = _registry_info(engine)  # a bad daemon.json fails before any output
    print(f"Containers: {len(recs)}")
    print(f" Running: {running}")
    print(" Paused: 0")
    print(f" Stopped: {len(recs) - running}")
    print(f"Images: {len(engine.images.image_ids())}")
    print(f"Storage Driver: {name}")
    for k, v in drv.status():
        print(f" {k}: {v}")
    print(" Available drivers:")
    for other in registry.names():
        reason = engine.choice_reasons.get(other)
        if other == name:
            why = "chosen" + (" (" + reason + ")" if reason else "")
        else:
            # not probed: a driver set explicitly, kept for its layers or ranked higher won
            why = reason or f"not tried ({name} was chosen first)"
        print(f"  {other}: {why}")
    for k, v in cgroupfs.describe():
        print(f"{k}: {v}")
    print(f"Kernel Version: {os.uname().release}")
    print(f"Architecture: {os.uname().machine}")
    print(f"CPUs: {os.cpu_count()}")
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        print(f"Total Memory: {kb / 1024 / 1024:.2f}GiB")
    except (OSError, ValueError, IndexError):
        pass
    print(f"Pydock Root Dir: {engine.root}")
    print("\n".join(registry_lines))
    return 0


def _registry_info(engine: Engine) -> list[str]:
    """docker info's registry lines: the index, the insecure registries (names, then
    networks, 127.0.0.0/8 always) and the mirrors Docker Hub's names are pulled from."""
    from .distribution.client import insecure_registries
    from .distribution.endpoints import registry_mirrors

    lines = ["Registry: https://index.docker.io/v1/", "Insecure Registries:"]
    marked = insecure_registries(engine.root)
    lines += [f" {m}" for m in marked if "/" not in m] + [f" {m}" for m in marked if "/" in m]
    if "127.0.0.0/8" not in marked:
        lines.append(" 127.0.0.0/8")
    mirrors = registry_mirrors(engine.root)
    if mirrors:
        lines += ["Registry Mirrors:"] + [f" {m.url()}/" for m in mirrors]
    return lines


def _info(engine: Engine, recs: list[dict], running: int, name: str, drv):  # noqa: ANN001
    """docker info's template data (system.Info's fields that pydock has)."""
    from .. import cgroupfs
    from .gotemplate import Struct

    paused = sum(bool(r["State"].get("Paused")) for r in recs)
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    cgroup = dict(cgroupfs.describe())
    info = {
        "ID": "", "Containers": len(recs), "ContainersRunning": running - paused,
        "ContainersPaused": paused, "ContainersStopped": len(recs) - running,
        "Images": len(engine.images.image_ids()), "Driver": name,
        "DriverStatus": [[str(k), str(v)] for k, v in drv.status()],
        "KernelVersion": os.uname().release, "OperatingSystem": "linux", "OSType": "linux",
        "Architecture": os.uname().machine, "NCPU": os.cpu_count() or 0, "MemTotal": mem,
        "DockerRootDir": str(engine.root), "Name": os.uname().nodename,
        "ServerVersion": __version__, "CgroupDriver": "cgroupfs",
        "CgroupVersion": str(cgroup.get("Cgroup Version", "")),
        "Labels": [], "Warnings": [],
    }  # fmt: skip
    client = {"Debug": False, "Context": "default", "Plugins": [], "Warnings": []}
    data = {**info, "ClientInfo": Struct("*system.clientInfo", client)}
    return Struct("system.dockerInfo", data, json_value={**info, "ClientInfo": client})


# -- parser ---------------------------------------------------------------------------------


def setup(sub) -> None:
    """Register inspect, version and info on the ``pydock`` subparsers."""
    ins = add_command(sub, "inspect", cmd_inspect)
    ins.add_argument("-f", "--format")
    ins.add_argument("--type", choices=["container", "image"])
    ins.add_argument("-s", "--size", action="store_true")
    ins.add_argument("objects", nargs="+")
    add_command(sub, "version", cmd_version).add_argument("-f", "--format")
    add_command(sub, "info", cmd_info).add_argument("-f", "--format")
