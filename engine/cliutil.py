"""What every command module shares: Docker-style argument errors, stderr lines, and the
table of commands each module fills in through ``add_command``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

API_VERSION = "1.41"

#: command name -> handler(engine, args) -> exit code, filled by the modules' setup()
HANDLERS: dict[str, Callable] = {}


class ArgError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as Docker does (one line, exit 125)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArgError(f"{message}. See '{self.prog} --help'.")


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def confirm(message: str) -> bool:
    """Ask before deleting, as docker/cli's command.PromptForConfirmation (20.10) does.

    The question goes to stdout followed by `` [y/N] ``; only ``y`` or ``Y`` on the first
    line proceeds. Anything else refuses, and so does no answer at all: end of input (``<
    /dev/null``, a closed pipe) or no stdin. Whether stdin is a terminal does not matter:
    ``echo n | pydock image prune`` must not delete. (Docker reads the line raw: ``yes`` or
    `` y`` refuse too.)
    """
    sys.stdout.write(f"{message} [y/N] ")
    sys.stdout.flush()
    try:
        answer = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return answer.removesuffix("\n").removesuffix("\r").lower() == "y"


# -- run / create / start -------------------------------------------------------------------


def add_command(sub, name: str, fn: Callable, aliases: tuple[str, ...] = ()) -> Parser:
    """A subparser for ``name``; ``run``/``create`` keep ``-h`` for ``--hostname`` as Docker."""
    takes_h = name in ("run", "create")
    sp = sub.add_parser(name, aliases=list(aliases), add_help=not takes_h)
    if takes_h:
        sp.add_argument("--help", action="help")
    for n in (name, *aliases):
        HANDLERS[n] = fn
    return sp
