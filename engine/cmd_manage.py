"""Container management commands: ps, top, stats, pause, unpause, rename, diff, commit, cp,
export, update, and ``container SUBCOMMAND`` (Docker's management-command spelling of them all, plus
``container prune``). Output columns, messages and exit codes are Docker's."""

from __future__ import annotations

import argparse
import os
import sys

from .cliutil import add_command, confirm, each_container, eprint, outcomes
from .engine import Engine
from .errors import EngineError, InvalidInput

# -- ps ------------------------------------------------------------------------------------


def cmd_ps(engine: Engine, a: argparse.Namespace) -> int:
    from . import pslist

    filters = pslist.parse_filters(a.filter)
    engine.reconcile()
    recs = pslist.select(engine, engine.containers.all(), filters, a.all)
    if a.last is not None and a.last >= 0:
        recs = recs[: a.last] if a.last else recs
    if a.latest:
        recs = recs[:1]
    out = pslist.render(engine, recs, fmt=a.format, quiet=a.quiet, no_trunc=a.no_trunc, size=a.size)
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 0


def _ps_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("-n", "--last", type=int)
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("--no-trunc", action="store_true")


# -- pause / unpause / rename / prune --------------------------------------------------------


def cmd_pause(engine: Engine, a: argparse.Namespace) -> int:
    from . import manage

    return each_container(a.containers, lambda r: manage.pause(engine, r))


def cmd_unpause(engine: Engine, a: argparse.Namespace) -> int:
    from . import manage

    return each_container(a.containers, lambda r: manage.unpause(engine, r))


def cmd_rename(engine: Engine, a: argparse.Namespace) -> int:
    try:
        engine.rename(a.container, a.new_name)
    except EngineError as e:
        eprint(f"Error response from daemon: {e}")
        eprint(f"Error: failed to rename container named {a.container}")
        return 1
    return 0


def run_prune(engine: Engine, filters: list[str]) -> tuple[int, str]:
    """Docker's container.RunPrune: (bytes reclaimed, the report), no question asked;
    ``system prune`` runs it too."""
    from . import manage

    removed, reclaimed = manage.prune(engine, filters)
    if not removed:
        return 0, ""
    return reclaimed, "Deleted Containers:\n" + "".join(f"{cid}\n" for cid in removed)


def cmd_prune(engine: Engine, a: argparse.Namespace) -> int:
    from .format import human_size

    if not a.force and not confirm(
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"
    ):
        print("Total reclaimed space: 0B")  # Docker 20.10 still prints its total, exit 0
        return 0
    reclaimed, output = run_prune(engine, a.filter)
    if output:
        print(output)
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def _prune_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="until=, label=, label!=")


# -- top / stats -----------------------------------------------------------------------------


def cmd_top(engine: Engine, a: argparse.Namespace) -> int:
    from . import procinfo

    rec = engine.containers.load(engine.containers.resolve(a.container))
    cg = engine.container_cgroup(rec)
    try:
        titles, rows = procinfo.top(cg.procs(), a.ps_args)
    except ValueError as e:
        raise EngineError(str(e)) from None
    widths = [len(t) for t in titles]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    for row in [titles, *rows]:
        # Docker prints through a tabwriter with a minimum cell width of 20
        cells = [c.ljust(max(widths[i] + 3, 20)) for i, c in enumerate(row[:-1])]
        print(("".join(cells) + row[-1]).rstrip())
    return 0


_STATS_HEADERS = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def _bytes_binary(n: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits ("1.953MiB")."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{units[i]}"


class _Sample:
    def __init__(self, engine: Engine, rec: dict) -> None:
        from . import procinfo
        from .containers import alive

        self.rec = rec
        self.cg = None
        st = rec["State"]
        if st["Status"] == "running" and alive(st.get("Owner")):
            self.cg = engine.container_cgroup(rec)
        self.cpu0 = self._cpu()
        self.sys0 = procinfo.system_cpu_ns()

    def _cpu(self) -> int:
        if self.cg is None:
            return 0
        try:
            return self.cg.stats().cpu_usage_ns or 0
        except OSError:
            return 0

    def row(self, no_trunc: bool) -> dict[str, str]:
        from . import procinfo
        from .format import human_size

        rec = self.rec
        cid = rec["Id"] if no_trunc else rec["Id"][:12]
        name = rec["Name"].lstrip("/")
        cpu = mem = limit = cache = rx = tx = br = bw = pids = 0
        if self.cg is not None:
            try:
                s = self.cg.stats()
                cpu_delta = (s.cpu_usage_ns or 0) - self.cpu0
                sys_delta = procinfo.system_cpu_ns() - self.sys0
                if cpu_delta > 0 and sys_delta > 0:
                    cpu = cpu_delta / sys_delta * (os.cpu_count() or 1) * 100.0
                cache = procinfo.memory_cache(self.cg)
                mem = max((s.memory_usage or 0) - cache, 0)
                limit = s.memory_limit or procinfo.mem_total()
                br, bw = s.blkio_read_bytes or 0, s.blkio_write_bytes or 0
                pids = s.pids_current if s.pids_current is not None else len(self.cg.procs())
                if rec["HostConfig"].get("NetworkMode") != "host":
                    rx, tx = procinfo.net_io(rec["State"]["Pid"])
            except OSError:
                pass
        return {
            "Container": cid,
            "ID": cid,
            "Name": name,
            "CPUPerc": f"{cpu:.2f}%",
            "MemUsage": f"{_bytes_binary(mem)} / {_bytes_binary(limit)}",
            "MemPerc": f"{(100.0 * mem / limit) if limit else 0:.2f}%",
            "NetIO": f"{human_size(rx)} / {human_size(tx)}",
            "BlockIO": f"{human_size(br)} / {human_size(bw)}",
            "PIDs": str(pids),
        }


_STATS_DEFAULT = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}"
    "\t{{.BlockIO}}\t{{.PIDs}}"
)


def _stats_row(values: dict[str, str]):
    from .gotemplate import Struct

    return Struct("*container.statsContext", values, json_value=values)


def cmd_stats(engine: Engine, a: argparse.Namespace) -> int:
    import time

    from . import gotemplate, pslist

    engine.reconcile()
    if a.containers:
        recs = [engine.containers.load(engine.containers.resolve(r)) for r in a.containers]
    else:
        recs = pslist.select(engine, engine.containers.all(), {}, a.all)
    fmt = a.format or _STATS_DEFAULT
    while True:
        samples = [_Sample(engine, r) for r in recs]
        time.sleep(a.interval)
        rows = []
        for s, ref in zip(samples, a.containers or [None] * len(samples), strict=True):
            row = s.row(a.no_trunc)
            if ref is not None:
                row["Container"] = ref  # Docker shows what the user typed
            rows.append(row)
        out = gotemplate.format_list(fmt, [_stats_row(r) for r in rows], _STATS_HEADERS)
        if not a.no_stream:
            sys.stdout.write("\033[2J\033[H")  # Docker's redraw: clear, home
        sys.stdout.write(out)
        sys.stdout.flush()
        if a.no_stream:
            return 0
        recs = [engine.containers.load(r["Id"]) for r in recs]


# -- diff / commit / cp ------------------------------------------------------------------------


def cmd_diff(engine: Engine, a: argparse.Namespace) -> int:
    rec = engine.containers.load(engine.containers.resolve(a.container))
    driver = engine.driver(rec["Driver"])
    if not driver.exists(rec["Id"]):
        raise EngineError(f"container {rec['Id'][:12]} has no writable layer")
    from .layerstubs import visible_changes

    for ch in visible_changes(driver.changes(rec["Id"])):
        print(f"{ch.kind.letter} {ch.path}")
    return 0


def cmd_commit(engine: Engine, a: argparse.Namespace) -> int:
    from .commit import commit

    image_id = commit(
        engine,
        a.container,
        a.repository,
        author=a.author or "",
        message=a.message or "",
        changes=a.change,
        pause=a.pause.lower() not in ("false", "0", "no"),
    )
    print(image_id)
    return 0


def _split_container_path(arg: str) -> tuple[str | None, str]:
    """Docker's rule: ``NAME:PATH`` names a container unless the part before ':' holds a
    '/' (a local path with a colon); a local path with a colon needs a '/' or './'."""
    if arg == "-":
        return None, arg
    head, colon, tail = arg.partition(":")
    if not colon or "/" in head or not head:
        return None, arg
    return head, tail


def cmd_cp(engine: Engine, a: argparse.Namespace) -> int:
    from . import cpfs

    sc, spath = _split_container_path(a.src)
    dc, dpath = _split_container_path(a.dest)
    if (sc is None) == (dc is None):
        raise InvalidInput(
            "must specify at least one container source"
            if sc is None
            else "copying between containers is not supported"
        )
    ref = sc or dc
    assert ref is not None
    rec = engine.containers.load(engine.containers.resolve(ref))
    driver = engine.driver(rec["Driver"])
    if rec.get("Creating") or not driver.exists(rec["Id"]):
        raise EngineError(f"container {rec['Id'][:12]} has no root filesystem")
    rootfs = driver.get(rec["Id"])  # mounts a stopped container's layers; +1 ref if running
    try:
        with cpfs.Root(rootfs) as croot:
            if sc is not None:
                if dpath == "-":
                    cpfs.write_tar(croot, spath, sys.stdout.buffer, follow=a.follow_link)
                    sys.stdout.buffer.flush()
                else:
                    with cpfs.Root("/") as host:
                        cpfs.copy(
                            croot,
                            spath,
                            host,
                            _host_path(dpath),
                            follow=a.follow_link,
                            keep_owner=a.archive,
                        )
            elif spath == "-":
                cpfs.extract_tar(croot, dpath, sys.stdin.buffer, keep_owner=a.archive)
            else:
                with cpfs.Root("/") as host:
                    cpfs.copy(
                        host,
                        _host_path(spath),
                        croot,
                        dpath,
                        follow=a.follow_link,
                        keep_owner=a.archive,
                    )
    finally:
        driver.put(rec["Id"])
    return 0


def _host_path(path: str) -> str:
    """A host path made absolute, keeping Docker's trailing '/' and '/.' meanings."""
    tail = "/." if path.endswith("/.") or path == "." else "/" if path.endswith("/") else ""
    return os.path.abspath(path).rstrip("/") + tail


# -- export / update ---------------------------------------------------------------------------


def cmd_export(engine: Engine, a: argparse.Namespace) -> int:
    from .export import export

    if not a.output and sys.stdout.isatty():
        raise InvalidInput("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    export(engine, a.container, a.output)
    return 0


def cmd_update(engine: Engine, a: argparse.Namespace) -> int:
    """Docker's CLI: each container's ref printed as it is done, then the daemon's
    warnings, then every error (exit 1 if any)."""
    from .errors import NotFound
    from .update import parse, update

    req = parse(a)
    engine.reconcile()  # a container whose monitor died is not running any more
    errors: list[str] = []
    for ref, err in zip(a.containers, outcomes(a.containers, lambda r: update(engine, r, req)),
                        strict=True):  # fmt: skip
        if err is None:
            print(ref, flush=True)
        elif isinstance(err, NotFound):
            errors.append(f"Error response from daemon: No such container: {ref}")
        elif isinstance(err, EngineError):
            errors.append(f"Error response from daemon: {err}")
        else:
            raise err
    if req.warnings:
        print("\n".join(req.warnings))
    for line in errors:
        eprint(line)
    return 1 if errors else 0


# -- container SUBCOMMAND ----------------------------------------------------------------------

#: ``container X`` -> the top-level command word it runs
_CONTAINER_ALIASES = {"ls": "ps", "list": "ps", "remove": "rm"}


def cmd_container(engine: Engine, a: argparse.Namespace) -> int:
    """``container SUBCOMMAND ARGS``: the top-level command of that name with the same global
    options, so every container command (including other modules' run/stop/exec) works."""
    from . import cli

    if not a.rest:
        eprint("Usage:  pydock container COMMAND\n\nManage containers")
        return 1
    word, rest = a.rest[0], a.rest[1:]
    if word == "prune":
        from .cliutil import Parser

        p = Parser(prog="pydock container prune")
        _prune_flags(p)
        return cmd_prune(engine, p.parse_args(rest))
    if word == "inspect":
        rest = ["--type", "container", *rest]  # Docker's container inspect: containers only
    word = _CONTAINER_ALIASES.get(word, word)
    if word == "container" or word not in cli.COMMAND_MODULES:
        eprint(f'pydock: unknown container command "{a.rest[0]}"')
        return 1
    argv = ["--root", a.root, "--log-level", a.log_level]
    if a.storage_driver:
        argv += ["--storage-driver", a.storage_driver]
    for opt in a.storage_opt:
        argv += ["--storage-opt", opt]
    return cli.main([*argv, word, *rest])


# -- parser ------------------------------------------------------------------------------------


def setup(sub) -> None:
    """Register the management commands on the ``pydock`` subparsers."""
    _ps_flags(add_command(sub, "ps", cmd_ps))
    for name, fn in (("pause", cmd_pause), ("unpause", cmd_unpause)):
        p = add_command(sub, name, fn)
        p.add_argument("containers", nargs="+")
    rn = add_command(sub, "rename", cmd_rename)
    rn.add_argument("container")
    rn.add_argument("new_name")
    tp = add_command(sub, "top", cmd_top)
    tp.add_argument("container")
    tp.add_argument("ps_args", nargs=argparse.REMAINDER)
    st = add_command(sub, "stats", cmd_stats)
    st.add_argument("-a", "--all", action="store_true")
    st.add_argument("--no-stream", action="store_true")
    st.add_argument("--no-trunc", action="store_true")
    st.add_argument("--format")
    st.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
    st.add_argument("containers", nargs="*")
    df = add_command(sub, "diff", cmd_diff)
    df.add_argument("container")
    cm = add_command(sub, "commit", cmd_commit)
    cm.add_argument("-a", "--author")
    cm.add_argument("-m", "--message")
    cm.add_argument("-c", "--change", action="append", default=[])
    cm.add_argument("-p", "--pause", default="true", nargs="?", const="true")
    cm.add_argument("container")
    cm.add_argument("repository", nargs="?")
    cp = add_command(sub, "cp", cmd_cp)
    cp.add_argument("-a", "--archive", action="store_true")
    cp.add_argument("-L", "--follow-link", action="store_true")
    cp.add_argument("-q", "--quiet", action="store_true")
    cp.add_argument("src")
    cp.add_argument("dest")
    ex = add_command(sub, "export", cmd_export)
    ex.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    ex.add_argument("container")
    from .update import add_flags

    add_flags(add_command(sub, "update", cmd_update))
    ct = add_command(sub, "container", cmd_container)
    ct.add_argument("rest", nargs=argparse.REMAINDER)
