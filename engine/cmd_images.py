"""Image commands: images, rmi, load, image (bootstrap, ls, rm, inspect)."""

from __future__ import annotations

import argparse
import sys

from .cliutil import Parser, add_command, eprint
from .engine import Engine
from .errors import Conflict, EngineError, InvalidInput


def cmd_images(engine: Engine, a: argparse.Namespace) -> int:
    from .imagelist import apply_filters, render, rows

    items = apply_filters(engine.images, rows(engine.images), a.filter or [], a.repository)
    out = render(items, fmt=a.format, quiet=a.quiet, no_trunc=a.no_trunc, digests=a.digests)
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
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
        from .orphans import sweep_images

        sweep_images(engine)  # what a killed load, pull or commit left
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
            from .orphans import sweep_images

            sweep_images(engine)  # what a killed load (or pull, commit) left
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
    from .cmd_registry import run_image_subcommand

    code = run_image_subcommand(engine, a)  # pull, push, tag, history, save, import, prune
    if code is not None:
        return code
    from .cmd_system import cmd_inspect

    return cmd_inspect(engine, a)


def _add_images_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-a", "--all", action="store_true", help="no intermediate images here")
    p.add_argument("--digests", action="store_true")
    p.add_argument("-f", "--filter", action="append")
    p.add_argument("--format")
    p.add_argument("repository", nargs="?")


def setup(sub) -> None:
    """Register the image commands on the ``pydock`` subparsers."""
    _add_images_flags(add_command(sub, "images", cmd_images))
    rmi = add_command(sub, "rmi", cmd_rmi)
    rmi.add_argument("-f", "--force", action="store_true")
    rmi.add_argument("images", nargs="+")
    ld = add_command(sub, "load", cmd_load)
    ld.add_argument("-i", "--input")
    ld.add_argument("-q", "--quiet", action="store_true")
    img = add_command(sub, "image", cmd_image)
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
    from .cmd_registry import setup_image_subcommands

    setup_image_subcommands(isub)
