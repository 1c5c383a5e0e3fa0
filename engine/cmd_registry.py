"""Registry and image-maintenance commands: pull, push, login, logout, tag, save, history,
import, and ``image pull|push|tag|save|history|import|prune``.

Everything heavy (the distribution package, tarfile, gzip) is imported inside the handlers,
so registering these commands costs nothing on other commands' paths.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from .cliutil import add_command, confirm, eprint
from .engine import Engine
from .errors import InvalidInput, NotFound


def _insecure(a: argparse.Namespace) -> tuple[str, ...]:
    return tuple(getattr(a, "insecure_registry", None) or ())


def cmd_pull(engine: Engine, a: argparse.Namespace) -> int:
    from .distribution import reference as refmod
    from .distribution.pull import Puller, pull_all_tags

    ref = refmod.parse(a.name, default_tag=not a.all_tags)
    if a.all_tags and (ref.tag or ref.digest):
        raise InvalidInput("tag can't be used with --all-tags/-a")
    given = refmod.parse(a.name, default_tag=False)
    if not a.all_tags and not a.quiet and given.tag is None and given.digest is None:
        print(f"Using default tag: {refmod.DEFAULT_TAG}", flush=True)  # docker's CLI, stdout
    driver = engine.driver()
    progress = None
    if a.quiet:
        import io

        from .distribution.progress import Progress

        progress = Progress(io.StringIO(), tty=False)
    puller = Puller(
        engine.images, driver, engine.root, insecure=_insecure(a), platform_=a.platform,
        progress=progress,
    )  # fmt: skip
    if a.all_tags:
        pull_all_tags(puller, ref)
        print(ref.full_name)
    else:
        puller.pull(ref)
        print(ref.canonical())
    from . import events
    from .reference import familiar_name

    name = familiar_name(ref.full_name if a.all_tags else ref.canonical())
    events.emit(engine.root, "image", "pull", name, {"name": name})
    return 0


def cmd_push(engine: Engine, a: argparse.Namespace) -> int:
    from .distribution import reference as refmod
    from .distribution.push import Pusher

    ref = refmod.parse(a.name, default_tag=not a.all_tags)
    if ref.digest:
        raise InvalidInput("cannot push a digest reference")
    store = engine.images
    if a.all_tags:
        tags = [t for t in sorted(store.tags()) if t.rpartition(":")[0] == ref.familiar_name]
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        refs = [ref.with_tag(t.rpartition(":")[2]) for t in tags]
    else:
        refs = [ref]
    pusher = Pusher(store, engine.driver, engine.root, insecure=_insecure(a))
    for r in refs:
        image_id = store.lookup(r.familiar())
        if image_id is None:
            raise NotFound(f"An image does not exist locally with the tag: {r.familiar_name}")
        store.lock.acquire(shared=True)  # pins the image's layers against rmi/prune
        try:
            pusher.push(r, image_id)
        finally:
            store.lock.release()
    return 0


def _server_domain(server: str | None) -> str:
    from .distribution import reference as refmod

    if not server:
        return refmod.DEFAULT_DOMAIN
    host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return refmod.DEFAULT_DOMAIN if host in ("index.docker.io", "registry-1.docker.io") else host


def cmd_login(engine: Engine, a: argparse.Namespace) -> int:
    from .distribution import auth
    from .distribution import reference as refmod
    from .distribution.client import Registry

    domain = _server_domain(a.server)
    user = a.username or input("Username: ")
    if a.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif a.password is not None:
        eprint("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
        password = a.password
    else:
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise InvalidInput("Error: Username and password required")
    endpoint = refmod.HUB_ENDPOINT if domain == refmod.DEFAULT_DOMAIN else domain
    reg = Registry(
        endpoint, domain=domain, root=engine.root, insecure=_insecure(a),
        credentials=(user, password),
    )  # fmt: skip
    # Bearer registries answer /v2/ with 401 until a token is asked for: the token
    # request is what checks the password, with the scope-less challenge Docker uses.
    reg.ping()
    auth.store_credentials(domain, user, password)
    eprint(f"WARNING! Your password will be stored unencrypted in {auth.config_path()}.")
    print("Login Succeeded")
    return 0


def cmd_logout(engine: Engine, a: argparse.Namespace) -> int:
    from .distribution import auth

    domain = _server_domain(a.server)
    shown = a.server or domain
    if auth.erase_credentials(domain):
        print(f"Removing login credentials for {shown}")
    else:
        print(f"Not logged in to {shown}")
    return 0


def cmd_tag(engine: Engine, a: argparse.Namespace) -> int:
    from .reference import normalize

    store = engine.images
    with store.lock:
        image_id = store.resolve(a.source)
        store.tag(image_id, normalize(a.target))
    from . import events
    from .reference import familiar_name

    events.emit(engine.root, "image", "tag", image_id, {"name": familiar_name(normalize(a.target))})
    return 0


def cmd_history(engine: Engine, a: argparse.Namespace) -> int:
    from .history import history

    out = history(engine.images, a.image, quiet=a.quiet, no_trunc=a.no_trunc, human=a.human,
                  fmt=a.format)  # fmt: skip
    sys.stdout.write(out if out.endswith("\n") or not out else out + "\n")
    return 0


def cmd_save(engine: Engine, a: argparse.Namespace) -> int:
    from .save import save

    if not a.output and sys.stdout.isatty():
        raise InvalidInput("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    store = engine.images
    store.lock.acquire(shared=True)
    try:
        save(store, engine.driver, a.images, a.output, oci=a.format == "oci",
             output_mode=0o666 & ~a.caller_umask)  # fmt: skip
        ids = [store.resolve(ref) for ref in a.images]
    finally:
        store.lock.release()
    from . import events

    for image_id in dict.fromkeys(ids):
        events.emit(engine.root, "image", "save", image_id, {"name": image_id})
    return 0


def cmd_import(engine: Engine, a: argparse.Namespace) -> int:
    from .save import import_rootfs

    image_id = import_rootfs(
        engine.images, engine.driver(), a.file, a.reference, message=a.message,
        changes=a.change or [], platform_=a.platform,
    )  # fmt: skip
    print(image_id)
    from . import events

    events.emit(engine.root, "image", "import", image_id, {"name": image_id})
    return 0


def run_image_prune(engine: Engine, all_images: bool, filters: list[str]) -> tuple[int, str]:
    """Docker's image.RunPrune: (bytes reclaimed, the report), no question asked;
    ``system prune`` runs it too."""
    from .prune import prune_images

    engine.reconcile()
    lines, reclaimed = prune_images(engine, all_images=all_images, filters=filters)
    if not lines:
        return reclaimed, ""
    return reclaimed, "Deleted Images:\n" + "".join(f"{line}\n" for line in lines)


def cmd_image_prune(engine: Engine, a: argparse.Namespace) -> int:
    from .format import human_size

    what = "all images without at least one container associated to them"
    if not a.all:
        what = "all dangling images"
    # Asked whether or not stdin is a terminal: `echo n | pydock image prune` keeps all
    if not a.force and not confirm(
        f"WARNING! This will remove {what}.\nAre you sure you want to continue?"
    ):
        print("Total reclaimed space: 0B")  # Docker 20.10 still prints its total, exit 0
        return 0
    reclaimed, output = run_image_prune(engine, a.all, a.filter or [])
    if output:
        print(output)
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


# -- parsers ----------------------------------------------------------------------------


def _pull_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--platform")
    p.add_argument("--insecure-registry", action="append", metavar="HOST[:PORT]")
    p.add_argument("name")


def _push_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--insecure-registry", action="append", metavar="HOST[:PORT]")
    p.add_argument("name")


def _tag_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("target")


def _history_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-H", "--human", default=True, type=lambda s: s.lower() != "false")
    p.add_argument("--format")
    p.add_argument("image")


def _save_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output")
    p.add_argument("--format", choices=["docker", "oci"], default="docker")
    p.add_argument("images", nargs="+")


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--change", action="append")
    p.add_argument("-m", "--message", default="")
    p.add_argument("--platform")
    p.add_argument("file")
    p.add_argument("reference", nargs="?")


def _prune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append")


#: ``image`` subcommand -> (argument setup, handler); cmd_images routes to these
IMAGE_SUBCOMMANDS = {
    "pull": (_pull_args, cmd_pull),
    "push": (_push_args, cmd_push),
    "tag": (_tag_args, cmd_tag),
    "history": (_history_args, cmd_history),
    "save": (_save_args, cmd_save),
    "import": (_import_args, cmd_import),
    "prune": (_prune_args, cmd_image_prune),
}


def setup_image_subcommands(isub) -> None:
    """Add ``image pull|push|tag|history|save|import|prune`` to ``image``'s subparsers."""
    for name, (args, _fn) in IMAGE_SUBCOMMANDS.items():
        args(isub.add_parser(name))


def run_image_subcommand(engine: Engine, a: argparse.Namespace) -> int | None:
    entry = IMAGE_SUBCOMMANDS.get(a.image_cmd)
    return entry[1](engine, a) if entry else None


def setup(sub) -> None:
    _pull_args(add_command(sub, "pull", cmd_pull))
    _push_args(add_command(sub, "push", cmd_push))
    _tag_args(add_command(sub, "tag", cmd_tag))
    _history_args(add_command(sub, "history", cmd_history))
    _save_args(add_command(sub, "save", cmd_save))
    _import_args(add_command(sub, "import", cmd_import))
    login = add_command(sub, "login", cmd_login)
    login.add_argument("-u", "--username")
    login.add_argument("-p", "--password")
    login.add_argument("--password-stdin", action="store_true")
    login.add_argument("--insecure-registry", action="append", metavar="HOST[:PORT]")
    login.add_argument("server", nargs="?")
    logout = add_command(sub, "logout", cmd_logout)
    logout.add_argument("server", nargs="?")
