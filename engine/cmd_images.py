"""Image commands: images, rmi, load, image (bootstrap, ls|list, rm|remove, load, inspect)."""

from __future__ import annotations

import argparse
import sys

from .cliutil import Parser, add_command, eprint
from .engine import Engine
from .errors import EngineError, InvalidInput, NotFound


def cmd_images(engine: Engine, a: argparse.Namespace) -> int:
    from .imagelist import needs_digest, render, rows, summaries

    found = summaries(engine.images, a.filter or [], a.repository)
    items = rows(found, digests=a.digests, need_digest=a.digests or needs_digest(a.format))
    out = render(items, fmt=a.format, quiet=a.quiet, no_trunc=a.no_trunc, digests=a.digests)
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 0


def cmd_rmi(engine: Engine, a: argparse.Namespace) -> int:
    """Docker's CLI: each argument on its own; errors are printed after the others' output,
    and with ``-f`` an image that does not exist is reported but does not fail the command."""
    from .imagedelete import remove_image

    errors: list[str] = []
    fatal = False
    engine.reconcile()  # a container whose pydock died is no longer running
    for ref in a.images:
        try:
            with engine.images.lock:
                lines = remove_image(engine, ref, a.force)
        except NotFound as e:
            errors.append(f"Error: {e}")  # the CLI's own wording for a 404
            continue
        except EngineError as e:
            errors.append(f"Error response from daemon: {e}")
            fatal = True
            continue
        for line in lines:
            print(line, flush=True)
    for line in errors:
        eprint(line)
    return 1 if errors and (fatal or not a.force) else 0


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
            from .orphans import sweep_images

            sweep_images(engine)  # what a killed load (or pull, commit) left
            lines = load(engine.images, driver, path, (lambda _m: None) if a.quiet else eprint)
    finally:
        if spool:
            spool.close()
    for line in lines:
        print(line)
    from . import events

    for line in lines:  # "Loaded image: REF" or "Loaded image ID: sha256:..."
        ref = line.rpartition(": ")[2].strip()
        image_id = engine.images.lookup(ref) or ref
        events.emit(engine.root, "image", "load", image_id, {"name": image_id})
    return 0


def cmd_image(engine: Engine, a: argparse.Namespace) -> int:
    if a.image_cmd == "bootstrap":
        image_id = engine.ensure_default_image("busybox", eprint)
        if image_id is None:
            return 1
        print(image_id)
        return 0
    local = _IMAGE_LOCAL.get(a.image_cmd)
    if local is not None:
        return local(engine, a)
    from .cmd_registry import run_image_subcommand

    code = run_image_subcommand(engine, a)  # pull, push, tag, history, save, import, prune
    if code is not None:
        return code
    from .cmd_system import cmd_inspect

    return cmd_inspect(engine, a)


#: ``image`` subcommands that are this module's top-level commands (Docker's aliases)
_IMAGE_LOCAL = {"ls": cmd_images, "list": cmd_images, "rm": cmd_rmi, "remove": cmd_rmi,
                "load": cmd_load}  # fmt: skip


def _add_load_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", help="read from a tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")


def _add_images_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-a", "--all", action="store_true", help="no intermediate images here")
    p.add_argument("--digests", action="store_true")
    p.add_argument("-f", "--filter", action="append")
    p.add_argument("--format")
    p.add_argument("repository", nargs="?")


def _add_rmi_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true")
    # pydock images have no parent images to prune; accepted for Docker's command lines
    p.add_argument("--no-prune", action="store_true")
    p.add_argument("images", nargs="+")


def setup(sub) -> None:
    """Register the image commands on the ``pydock`` subparsers."""
    _add_images_flags(add_command(sub, "images", cmd_images))
    rmi = add_command(sub, "rmi", cmd_rmi)
    _add_rmi_flags(rmi)
    _add_load_flags(add_command(sub, "load", cmd_load))
    img = add_command(sub, "image", cmd_image)
    isub = img.add_subparsers(dest="image_cmd", parser_class=Parser, required=True)
    isub.add_parser("bootstrap", help="build busybox:latest from the host's static busybox")
    _add_images_flags(isub.add_parser("ls", aliases=["list"]))
    _add_rmi_flags(isub.add_parser("rm", aliases=["remove"]))
    _add_load_flags(isub.add_parser("load"))
    iins = isub.add_parser("inspect")
    iins.add_argument("-f", "--format")
    iins.add_argument("objects", nargs="+")
    iins.set_defaults(type="image")
    from .cmd_registry import setup_image_subcommands

    setup_image_subcommands(isub)
