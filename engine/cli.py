"""``pydock``: Docker's command grammar, output columns and exit codes.

Only the standard library and pydock's own modules are imported here; anything heavier is
imported inside the command that needs it, so ``pydock run`` starts fast (ARCHITECTURE.md).
Errors are printed as one line, ``pydock: <message>``, with Docker's exit codes: 125 for
engine errors and flag errors on ``run``/``create``, 126/127 when the container's command
cannot be invoked or found, 1 for failures of the other commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from .. import __version__
from ..drivers.base import DriverError
from .engine import DEFAULT_ROOT, Engine
from .errors import Conflict, EngineError, InvalidInput, NotFound

API_VERSION = "1.41"


class ArgError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as Docker does (one line, exit 125)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArgError(f"{message}. See '{self.prog} --help'.")


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- run / create / start -------------------------------------------------------------------
def _add_create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-h", "--hostname")
    p.add_argument("--entrypoint")
    p.add_argument(
        "--network",
        "--net",
        default="none",
        help="none (loopback only) or host; bridge networking is not built yet",
    )
    p.add_argument("--cgroup-parent")
    p.add_argument("--rm", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _run_options(a: argparse.Namespace):
    from .spec import RunOptions

    if a.tty:
        raise InvalidInput("-t/--tty is not supported yet (no pty support in this build)", 125)
    if a.network not in ("none", "host"):
        raise InvalidInput(
            f"network {a.network} is not supported yet: use --network none or host", 125
        )
    return RunOptions(
        command=a.command,
        entrypoint=a.entrypoint,
        env=a.env,
        workdir=a.workdir,
        user=a.user,
        hostname=a.hostname,
        network=a.network,
        cgroup_parent=a.cgroup_parent,
    )


def cmd_run(engine: Engine, a: argparse.Namespace) -> int:
    from . import monitor

    opts = _run_options(a)
    rec = engine.create(
        a.image, opts, name=a.name, auto_remove=a.rm, progress=eprint, keep_mounted=True
    )
    if a.detach:
        monitor.start_detached(engine, rec, mounted=True)
        print(rec["Id"])
        return 0
    return monitor.run_attached(engine, rec, interactive=a.interactive, mounted=True)


def cmd_create(engine: Engine, a: argparse.Namespace) -> int:
    rec = engine.create(a.image, _run_options(a), name=a.name, auto_remove=a.rm, progress=eprint)
    print(rec["Id"])
    return 0


def cmd_start(engine: Engine, a: argparse.Namespace) -> int:
    from . import monitor

    engine.reconcile()
    failed = False
    for ref in a.containers:
        try:
            rec = engine.containers.load(engine.containers.resolve(ref))
            if rec["State"]["Status"] == "running":
                print(ref)
                continue
            if a.attach:
                return monitor.run_attached(engine, rec, interactive=a.interactive)
            monitor.start_detached(engine, rec)
            print(ref)
        except EngineError as e:
            eprint(f"Error response from daemon: {e}")
            failed = True
    if failed:
        eprint("Error: failed to start containers: " + " ".join(a.containers))
    return 1 if failed else 0


# -- containers -----------------------------------------------------------------------------
def _status(rec: dict) -> str:
    from .containers import parse_time
    from .format import since

    st = rec["State"]
    if st["Status"] == "running":
        return f"Up {since(parse_time(st['StartedAt']))}"
    if st["Status"] == "exited":
        return f"Exited ({st['ExitCode']}) {since(parse_time(st['FinishedAt']))} ago"
    return st["Status"].capitalize()


def cmd_ps(engine: Engine, a: argparse.Namespace) -> int:
    from .containers import parse_time
    from .format import ellipsis, since, table

    engine.reconcile()
    recs = [r for r in engine.containers.all() if a.all or r["State"]["Status"] == "running"]
    recs.sort(key=lambda r: r["Created"], reverse=True)
    if a.quiet:
        for r in recs:
            print(r["Id"] if a.no_trunc else r["Id"][:12])
        return 0
    rows = []
    for r in recs:
        cmd = " ".join([r["Path"], *r["Args"]])
        rows.append(
            [
                r["Id"] if a.no_trunc else r["Id"][:12],
                r["Config"]["Image"],
                json.dumps(cmd if a.no_trunc else ellipsis(cmd, 20), ensure_ascii=False),
                f"{since(parse_time(r['Created']))} ago",
                _status(r),
                "",
                r["Name"].lstrip("/"),
            ]
        )
    print(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows))
    return 0


def cmd_rm(engine: Engine, a: argparse.Namespace) -> int:
    engine.reconcile()
    failed = False
    for ref in a.containers:
        try:
            print(engine.remove(ref, force=a.force))
        except (EngineError, DriverError) as e:
            eprint(f"Error response from daemon: {e}")
            failed = True
    return 1 if failed else 0


def cmd_logs(engine: Engine, a: argparse.Namespace) -> int:
    import time

    rec = engine.containers.load(engine.containers.resolve(a.container))
    try:
        f = open(rec["LogPath"], "rb")  # noqa: SIM115 - followed below
    except FileNotFoundError:
        return 0
    with f:
        lines = f.readlines()
        if a.tail not in (None, "all"):
            n = int(a.tail)
            lines = lines[-n:] if n > 0 else []
        while True:
            for raw in lines:
                entry = json.loads(raw)
                out = sys.stdout if entry["stream"] == "stdout" else sys.stderr
                out.write((entry["time"] + " " if a.timestamps else "") + entry["log"])
                out.flush()
            if not a.follow:
                break
            lines = f.readlines()
            if not lines:
                rec = engine.containers.load(rec["Id"])
                if rec["State"]["Status"] != "running":
                    lines = f.readlines()
                    if not lines:
                        break
                time.sleep(0.1)
    return 0


# -- images ---------------------------------------------------------------------------------
def cmd_images(engine: Engine, a: argparse.Namespace) -> int:
    from .containers import parse_time
    from .format import human_size, since, table

    rows = []
    for img in engine.images.images():
        created = img.config.get("created", "")
        when = f"{since(parse_time(created))} ago" if created else "N/A"
        tags = img.tags or ["<none>:<none>"]
        for t in tags:
            repo, _, tag = t.rpartition(":")
            shown = img.id if a.no_trunc else img.id[7:19]
            rows.append([repo, tag, shown, when, human_size(img.size), created])
    rows.sort(key=lambda r: r[5], reverse=True)
    if a.quiet:
        seen = []
        for r in rows:
            if r[2] not in seen:
                seen.append(r[2])
        print("\n".join(seen))
        return 0
    print(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], [r[:5] for r in rows]))
    return 0


def cmd_rmi(engine: Engine, a: argparse.Namespace) -> int:
    failed = False
    for ref in a.images:
        try:
            _rmi_one(engine, ref, a.force)
        except EngineError as e:
            eprint(f"Error response from daemon: {e}")
            failed = True
    return 1 if failed else 0


def _rmi_one(engine: Engine, ref: str, force: bool) -> None:
    from .images import short_id
    from .reference import normalize

    engine.reconcile()
    store = engine.images
    with store.lock:
        image_id = store.resolve(ref)
        tags = store.tags_of(image_id)
        by_tag = False
        try:
            by_tag = normalize(ref) in tags
        except EngineError:
            pass
        users = engine.image_in_use(image_id)
        if users and not force:
            what = f'repository reference "{ref}"' if by_tag else f"image {short_id(image_id)}"
            verb = "remove" if by_tag else "delete"
            raise Conflict(
                f"conflict: unable to {verb} {what} (must force) - container "
                f"{users[0][:12]} is using its referenced image {short_id(image_id)}"
            )
        if not by_tag and len(tags) > 1 and not force:
            raise Conflict(
                f"conflict: unable to delete {short_id(image_id)} (must be forced) - image is "
                "referenced in multiple repositories"
            )
        for t in [normalize(ref)] if by_tag else tags:
            store.untag(t)
            print(f"Untagged: {t}")
        if store.tags_of(image_id) or users:
            return  # still tagged, or kept (dangling) for the containers that use it
        removed = store.delete_image(image_id, engine.driver)
        print(f"Deleted: {image_id}")
        for chain in removed:
            print(f"Deleted: {chain}")


def cmd_load(engine: Engine, a: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from .load import load

    path = a.input
    spool = None
    if path in (None, "-"):
        if sys.stdin.isatty():
            raise InvalidInput("requested load from stdin, but stdin is empty")
        spool = tempfile.NamedTemporaryFile(dir=engine.root, prefix=".load-")  # noqa: SIM115
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        path = spool.name
    try:
        driver = engine.driver()
        with engine.images.lock:
            lines = load(engine.images, driver, path, (lambda _m: None) if a.quiet else eprint)
    finally:
        if spool:
            spool.close()
    for line in lines:
        print(line)
    return 0


def cmd_image(engine: Engine, a: argparse.Namespace) -> int:
    if a.image_cmd == "bootstrap":
        image_id = engine.ensure_default_image("busybox", eprint)
        if image_id is None:
            return 1
        print(image_id)
        return 0
    if a.image_cmd == "ls":
        return cmd_images(engine, a)
    if a.image_cmd == "rm":
        return cmd_rmi(engine, a)
    return cmd_inspect(engine, a)


def cmd_inspect(engine: Engine, a: argparse.Namespace) -> int:
    out = []
    failed = False
    for ref in a.objects:
        try:
            out.append(_inspect_one(engine, ref, getattr(a, "type", None)))
        except EngineError as e:
            eprint(f"Error: No such object: {ref}" if isinstance(e, NotFound) else f"Error: {e}")
            failed = True
    if a.format:
        for obj in out:
            print(_go_template(a.format, obj))
    else:
        print(json.dumps(out, indent=4))
    return 1 if failed else 0


def _go_template(fmt: str, obj: dict) -> str:
    """The ``{{.A.B}}`` and ``{{json .A}}`` subset of Docker's --format templates."""
    import re

    def value(path: str) -> object:
        cur: object = obj
        for part in [p for p in path.split(".") if p]:
            cur = cur.get(part) if isinstance(cur, dict) else None
        return cur

    def sub(m: re.Match) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(value(expr[5:].strip()))
        v = value(expr)
        if isinstance(v, bool):
            return str(v).lower()
        return "<no value>" if v is None else str(v)

    return re.sub(r"\{\{(.*?)\}\}", sub, fmt)


def _inspect_one(engine: Engine, ref: str, kind: str | None) -> dict:
    if kind in (None, "container"):
        try:
            rec = engine.containers.load(engine.containers.resolve(ref))
        except NotFound:
            if kind == "container":
                raise
        else:
            rec = {k: v for k, v in rec.items() if k not in ("Creating", "Parent")}
            rec["State"] = {k: v for k, v in rec["State"].items() if k != "Owner"}
            drv = engine.driver(rec["Driver"])
            rec["GraphDriver"] = {"Name": rec["Driver"], "Data": drv.metadata(rec["Id"])}
            return rec
    image_id = engine.images.resolve(ref)
    config = engine.images.config(image_id)
    chain = engine.images.layer_chain(image_id)
    return {
        "Id": image_id,
        "RepoTags": engine.images.tags_of(image_id),
        "RepoDigests": [],
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


# -- system ---------------------------------------------------------------------------------
def cmd_version(engine: Engine | None, a: argparse.Namespace) -> int:
    import platform

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
            why = reason or "usable"
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
    return 0


# -- parser ---------------------------------------------------------------------------------
COMMANDS: dict[str, Callable[[Engine, argparse.Namespace], int]] = {}


def build_parser() -> Parser:
    p = Parser(prog="pydock", description="A container engine in Python.")
    p.add_argument(
        "--root",
        default=os.environ.get("PYDOCK_ROOT", DEFAULT_ROOT),
        help=f"root of pydock's stores (default {DEFAULT_ROOT})",
    )
    p.add_argument("-s", "--storage-driver", default=os.environ.get("PYDOCK_STORAGE_DRIVER"))
    p.add_argument("--storage-opt", action="append", default=[])
    p.add_argument(
        "-l", "--log-level", default="info", choices=["debug", "info", "warn", "error", "fatal"]
    )
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="cmd", parser_class=Parser)

    def add(name: str, fn: Callable, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, aliases=list(aliases), add_help=name not in ("run", "create"))
        if name in ("run", "create"):
            sp.add_argument("--help", action="help")
        for n in (name, *aliases):
            COMMANDS[n] = fn
        return sp

    r = add("run", cmd_run)
    r.add_argument("-d", "--detach", action="store_true")
    _add_create_flags(r)
    _add_create_flags(add("create", cmd_create))
    s = add("start", cmd_start)
    s.add_argument("-a", "--attach", action="store_true")
    s.add_argument("-i", "--interactive", action="store_true")
    s.add_argument("containers", nargs="+")
    ps = add("ps", cmd_ps)
    ps.add_argument("-a", "--all", action="store_true")
    ps.add_argument("-q", "--quiet", action="store_true")
    ps.add_argument("--no-trunc", action="store_true")
    rm = add("rm", cmd_rm)
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("containers", nargs="+")
    lg = add("logs", cmd_logs)
    lg.add_argument("-f", "--follow", action="store_true")
    lg.add_argument("-t", "--timestamps", action="store_true")
    lg.add_argument("-n", "--tail")
    lg.add_argument("container")
    ins = add("inspect", cmd_inspect)
    ins.add_argument("-f", "--format")
    ins.add_argument("--type", choices=["container", "image"])
    ins.add_argument("objects", nargs="+")
    im = add("images", cmd_images)
    _add_images_flags(im)
    rmi = add("rmi", cmd_rmi)
    rmi.add_argument("-f", "--force", action="store_true")
    rmi.add_argument("images", nargs="+")
    ld = add("load", cmd_load)
    ld.add_argument("-i", "--input")
    ld.add_argument("-q", "--quiet", action="store_true")
    add("version", cmd_version)
    add("info", cmd_info)
    img = add("image", cmd_image)
    isub = img.add_subparsers(dest="image_cmd", parser_class=Parser, required=True)
    isub.add_parser("bootstrap", help="build busybox:latest from the host's static busybox")
    _add_images_flags(isub.add_parser("ls"))
    irm = isub.add_parser("rm")
    irm.add_argument("-f", "--force", action="store_true")
    irm.add_argument("images", nargs="+")
    iins = isub.add_parser("inspect")
    iins.add_argument("-f", "--format")
    iins.add_argument("objects", nargs="+")
    iins.set_defaults(type="image")
    return p


def _add_images_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")


def _storage_opts(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq:
            raise ArgError(f"invalid storage option {item!r}: want key=value")
        for prefix in ("overlay2.", "overlay.", "vfs.", "fuse-union."):
            k = k.removeprefix(prefix)
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except ArgError as e:
        eprint(f"pydock: {e}")
        return 125
    if a.version:
        print(f"pydock version {__version__}")
        return 0
    if not a.cmd:
        parser.print_help()
        return 0
    if a.cmd == "version":
        return cmd_version(None, a)
    code_for_engine_errors = 125 if a.cmd in ("run", "create") else 1
    try:
        engine = Engine(a.root, a.storage_driver, _storage_opts(a.storage_opt))
        return COMMANDS[a.cmd](engine, a)
    except ArgError as e:
        eprint(f"pydock: {e}")
        return 125
    except EngineError as e:
        eprint(f"pydock: {e}")
        code = e.exit_code
        return code if code in (125, 126, 127) or code_for_engine_errors == 1 else 125
    except DriverError as e:
        eprint(f"pydock: {e}")
        return code_for_engine_errors
    except PermissionError as e:
        eprint(f"pydock: permission denied: {e.filename or e} (pydock runs as root)")
        return code_for_engine_errors
    except OSError as e:
        eprint(f"pydock: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        return code_for_engine_errors
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if a.log_level == "debug":
            raise
        eprint(f"pydock: {type(e).__name__}: {e}" if not str(e) else f"pydock: {e}")
        return 125 if a.cmd in ("run", "create") else 1


if __name__ == "__main__":
    raise SystemExit(main())
