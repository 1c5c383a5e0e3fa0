"""What every command module shares: Docker-style argument errors, stderr lines, and the
table of commands each module fills in through ``add_command``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator

API_VERSION = "1.41"

#: command name -> handler(engine, args) -> exit code, filled by the modules' setup()
HANDLERS: dict[str, Callable] = {}


class ArgError(Exception):
    """A command line pydock cannot take; ``code`` is Docker's exit status for it."""

    def __init__(self, message: str, code: int = 125) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse that reports bad command lines as Docker's CLI does (one line each).

    Docker's (cobra's) codes: an unknown or malformed flag is 125; a wrong number of
    arguments and an unknown command are 1. Flags are never abbreviated: argparse would
    take any unambiguous prefix (``--pid host`` as ``--pids-limit host``), pflag takes
    only whole names.
    """

    def __init__(self, *args, **kw) -> None:  # noqa: ANN002, ANN003 - argparse's own
        kw.setdefault("allow_abbrev", False)
        super().__init__(*args, **kw)

    def format_help(self) -> str:
        """argparse's help with pydock's lines filled in (see :mod:`.helptext`)."""
        from . import helptext

        helptext.fill(self)
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        if self._unknown_command(message):
            word = message.partition("invalid choice: ")[2].split(" (")[0].strip("'")
            top = self.prog.split()[0]
            raise ArgError(f"'{word}' is not a {top} command. See '{self.prog} --help'.", 1)
        if message.startswith("the following arguments are required: "):
            raise ArgError(f"{self._arity()}. See '{self.prog} --help'.", 1)
        raise ArgError(f"{message}. See '{self.prog} --help'.")

    def _unknown_command(self, message: str) -> bool:
        """Whether argparse refused a (sub)command word, not a flag's value: its message
        is "argument DEST: invalid choice: ..." with DEST a subcommand slot."""
        dest, sep, _ = message.removeprefix("argument ").partition(": invalid choice: ")
        slots = {a.dest for a in self._subparsers._group_actions} if self._subparsers else set()
        return bool(sep) and message.startswith("argument ") and dest in slots

    def _arity(self) -> str:
        """Docker's sentence for a missing argument: '"pydock rm" requires at least 1
        argument' (exactly, when every positional is a single value)."""
        positionals = [a for a in self._actions if not a.option_strings and a.nargs != 0]
        least = sum(0 if a.nargs in ("?", "*") else 1 for a in positionals)
        exact = all(a.nargs is None for a in positionals)
        n = f"{least} argument" + ("s" if least != 1 else "")
        return f'"{self.prog}" requires {"exactly" if exact else "at least"} {n}'


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def outcomes(refs: list[str], fn: Callable[[str], object], *,
             parallel: bool = False) -> Iterator[BaseException | None]:  # fmt: skip
    """``fn(ref)`` for every ref: what each raised (None: it succeeded), in the order
    given, each as soon as it and those before it are done. ``parallel``: all at once,
    in threads; only for work that never forks, since a fork from a threaded process
    copies locks other threads may hold."""
    results: list[BaseException | None] = [None] * len(refs)

    def one(i: int) -> None:
        try:
            fn(refs[i])
        except BaseException as e:  # noqa: BLE001 - handed to the caller, in its thread
            results[i] = e

    if not (parallel and len(refs) > 1):
        for i in range(len(refs)):
            one(i)
            yield results[i]
        return
    import threading

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(refs))]
    for t in threads:
        t.start()
    for i, t in enumerate(threads):
        t.join()
        yield results[i]


def each_container(refs: list[str], fn: Callable[[str], object], *,
                   parallel: bool = False) -> int:  # fmt: skip
    """Docker's multi-container commands: each success printed as the ref, each failure
    as Docker's error line, in the order given; 1 if any failed. Docker's CLI runs stop,
    kill and restart on all containers at once (three ``stop -t 2`` take 2 s, not 6):
    ``parallel`` (see :func:`outcomes`)."""
    from ..drivers.base import DriverError
    from .errors import EngineError

    failed = False
    for ref, err in zip(refs, outcomes(refs, fn, parallel=parallel), strict=True):
        if err is None:
            print(ref, flush=True)
        elif isinstance(err, (EngineError, DriverError)):
            eprint(f"Error response from daemon: {err}")
            failed = True
        else:
            raise err
    return 1 if failed else 0


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
