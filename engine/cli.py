"""``pydock``: Docker's command grammar, output columns and exit codes.

Commands live in small modules (cmd_containers, cmd_images, cmd_system, ...), each
registering its own subcommands. Only the module of the command being run is imported and
only its subparsers are built, so ``pydock run`` pays for nothing else (ARCHITECTURE.md's
start-path rules); ``pydock --help`` and an unknown command load them all.

Errors are printed as one line, ``pydock: <message>``, with Docker's exit codes: 125 for
engine errors and flag errors on ``run``/``create``, 126/127 when the container's command
cannot be invoked or found, 1 for failures of the other commands.
"""

from __future__ import annotations

import importlib
import os
import sys

from .. import __version__
from ..drivers.base import DriverError
from .client import DEFAULT_ROOT, command_word
from .cliutil import HANDLERS, ArgError, Parser, eprint
from .engine import Engine
from .errors import EngineError

#: command word -> the module (in pydock.engine) that registers it
COMMAND_MODULES: dict[str, str] = {
    "run": "cmd_containers", "create": "cmd_containers", "start": "cmd_containers",
    "rm": "cmd_containers", "logs": "cmd_containers",
    "images": "cmd_images", "rmi": "cmd_images", "load": "cmd_images", "image": "cmd_images",
    "pull": "cmd_registry", "push": "cmd_registry", "login": "cmd_registry",
    "logout": "cmd_registry", "tag": "cmd_registry", "save": "cmd_registry",
    "history": "cmd_registry", "import": "cmd_registry",
    "search": "cmd_remote", "manifest": "cmd_remote",
    "inspect": "cmd_system", "version": "cmd_system", "info": "cmd_system",
    "network": "cmd_network", "port": "cmd_network",
    "volume": "cmd_volume",
    "ps": "cmd_manage", "top": "cmd_manage", "stats": "cmd_manage", "pause": "cmd_manage",
    "unpause": "cmd_manage", "rename": "cmd_manage", "diff": "cmd_manage",
    "commit": "cmd_manage", "cp": "cmd_manage", "container": "cmd_manage",
    "export": "cmd_manage", "update": "cmd_manage",
    "stop": "cmd_lifecycle", "kill": "cmd_lifecycle", "restart": "cmd_lifecycle",
    "wait": "cmd_lifecycle", "attach": "cmd_lifecycle", "exec": "cmd_lifecycle",
    "system": "cmd_lifecycle",
    "events": "cmd_events",
}  # fmt: skip


def build_parser(command: str | None = None) -> Parser:
    """The parser with the global options and the subcommands of ``command``'s module
    (every module when ``command`` is None or unknown, for help and error messages)."""
    p = Parser(prog="pydock", description="A container engine in Python.")
    # Environment defaults are applied in main(), not here: a start worker builds the
    # parser once, before it knows its client's environment.
    p.add_argument("--root", help=f"root of pydock's stores ($PYDOCK_ROOT, default {DEFAULT_ROOT})")
    p.add_argument("-s", "--storage-driver", help="$PYDOCK_STORAGE_DRIVER, default automatic")
    p.add_argument("--storage-opt", action="append", default=[])
    p.add_argument(
        "-l", "--log-level", default="info", choices=["debug", "info", "warn", "error", "fatal"]
    )
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="cmd", parser_class=Parser)
    wanted = COMMAND_MODULES.get(command or "")
    modules = [wanted] if wanted else list(dict.fromkeys(COMMAND_MODULES.values()))
    for name in modules:
        importlib.import_module(f"pydock.engine.{name}").setup(sub)
    return p


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


def main(argv: list[str] | None = None, parser: Parser | None = None) -> int:
    """Run one command line; ``parser``: one built ahead by build_parser() for this
    command word (a start worker's), else it is built here."""
    argv = sys.argv[1:] if argv is None else argv
    # pydock's stores must not depend on who started it or how: every directory and
    # record it makes gets its mode from here and the explicit modes it asks for. Files
    # the caller names (save -o) are made as the caller's umask says.
    caller_umask = os.umask(0o022)
    if parser is None:
        parser = build_parser(command_word(argv))
    try:
        a = parser.parse_args(argv)
    except ArgError as e:
        eprint(f"pydock: {e}")
        return e.code
    if a.root is None:
        a.root = os.environ.get("PYDOCK_ROOT", DEFAULT_ROOT)
    if a.storage_driver is None:
        a.storage_driver = os.environ.get("PYDOCK_STORAGE_DRIVER")
    if a.version:
        print(f"pydock version {__version__}")
        return 0
    if not a.cmd:
        parser.print_help()
        return 0
    if a.cmd == "version":
        try:
            return HANDLERS["version"](None, a)
        except EngineError as e:  # a --format template that fails
            eprint(f"pydock: {e}")
            return e.exit_code
    code_for_engine_errors = 125 if a.cmd in ("run", "create") else 1
    if os.geteuid() != 0:
        eprint(f"pydock: must run as root (it manages mounts, namespaces and cgroups); "
               f"this is uid {os.geteuid()}")  # fmt: skip
        return code_for_engine_errors
    a.caller_umask = caller_umask
    try:
        engine = Engine(a.root, a.storage_driver, _storage_opts(a.storage_opt))
        return HANDLERS[a.cmd](engine, a)
    except ArgError as e:
        eprint(f"pydock: {e}")
        return e.code
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


def finish(main_fn) -> int:
    """Run ``main_fn`` as the process's command: its exit code, with argparse's exits
    turned into codes, atexit handlers run and stdio flushed (the caller then os._exit()s).

    CPython's finalization (module teardown, garbage collection of everything) takes
    around 10 ms at the end of ``pydock run`` and releases nothing the kernel would not.
    """
    try:
        code = main_fn()
    except SystemExit as e:  # argparse's --help and friends
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            eprint(e.code)
    import atexit

    atexit._run_exitfuncs()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass  # a closed or broken pipe: nothing more can be written anyway
    return code


def entry() -> None:
    """:func:`main` as a program, without interpreter teardown (see :func:`finish`). The
    console script is engine/client.py's, which first tries a start worker."""
    os._exit(finish(main))


if __name__ == "__main__":
    entry()
