"""Layers held by pulls in progress: garbage collection and rollbacks leave them alone.

A pull applies each layer as soon as it is downloaded, taking the store lock for one layer
at a time so that ``pydock run`` is not blocked for the whole download. Between two such
steps the layers it applied exist in the store while no image config names them yet, so
``rmi``/``image prune`` (which remove layers no image references) and the rollback of
another, failing pull (which shared them as ``Already exists``) would take them away.

Each pull therefore writes a pin, ``distribution/pins/<pid>-<rand>.json`` = ``{"store",
"chains"}`` listing every layer of the image it is pulling, and holds an flock on it for as
long as it runs. A pin whose flock can be taken belongs to a dead pull (SIGKILL, crash): it
is stale, and the layers it names that no image references are what that pull applied and
never finished: the next pull rolls back those it does not need itself (it reuses the
others, already verified), and ``rmi``/``image prune`` drop them as unreferenced; the
next pull or prune removes the pin, so a killed pull ends like a failed one. All readers
hold the image store lock; a pin is created under a temporary name and renamed once
locked, so a reader never sees an unlocked live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path


def pins_dir(root: Path) -> Path:
    return root / "distribution" / "pins"


class Pin:
    """This process's claim on ``chains`` in layer store ``store``; ``release`` drops it."""

    def __init__(self, root: Path, store: str, chains: list[str]) -> None:
        d = pins_dir(root)
        d.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{os.urandom(6).hex()}"
        tmp = d / (name + ".tmp")
        self.path = d / (name + ".json")
        self.fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            os.write(self.fd, json.dumps({"store": store, "chains": chains}).encode())
            os.rename(tmp, self.path)  # the flock stays with the open file
        except BaseException:
            os.close(self.fd)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = -1


def _scan(root: Path) -> tuple[list[dict], list[tuple[Path, dict]]]:
    """(live pins, stale pins with their paths); stale ones stay locked by nobody."""
    live: list[dict] = []
    stale: list[tuple[Path, dict]] = []
    try:
        names = sorted(os.listdir(pins_dir(root)))
    except FileNotFoundError:
        return live, stale
    for name in names:
        if not name.endswith(".json"):
            continue
        path = pins_dir(root) / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # released meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alive = False
            except BlockingIOError:
                alive = True
            try:
                doc = json.loads(os.read(fd, 1 << 24) or b"{}")
            except ValueError:
                doc = {}
        finally:
            os.close(fd)
        (live.append(doc) if alive else stale.append((path, doc)))
    return live, stale


def held(root: Path) -> set[str]:
    """Chain ids that live pulls hold (the caller holds the image store lock)."""
    return {c for doc in _scan(root)[0] for c in doc.get("chains") or []}


def referenced(store) -> set[str]:  # noqa: ANN001 - ImageStore; no import cycle
    """Chain ids some image config names."""
    out: set[str] = set()
    for image_id in store.image_ids():
        with contextlib.suppress(FileNotFoundError, ValueError):
            out.update(store.layer_chain(image_id))
    return out


def drop_unclaimed(store, driver, chains: list[str], root: Path) -> list[str]:  # noqa: ANN001
    """Remove those of ``chains`` (children last in the list) that no image references and
    no live pull holds; the caller holds the store lock exclusively and no pin of its own."""
    keep = referenced(store) | held(root)
    dropped = []
    for chain in reversed(chains):
        if chain not in keep and store.layer_record(_store_name(driver), chain):
            store._drop_layer(driver, chain)
            dropped.append(chain)
    return dropped


def recover(store, driver, root: Path) -> None:  # noqa: ANN001
    """Roll back what dead pulls into ``driver``'s store left; remove their pins."""
    _live, stale = _scan(root)
    for path, doc in stale:
        if doc.get("store") not in (None, _store_name(driver)):
            continue  # another driver's: prune's gc removes what no image references
        drop_unclaimed(store, driver, list(doc.get("chains") or []), root)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def forget_stale(root: Path) -> None:
    """Remove dead pulls' pins (after a gc that dropped every unreferenced layer)."""
    for path, _doc in _scan(root)[1]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _store_name(driver) -> str:  # noqa: ANN001
    from .images import store_name

    return store_name(driver)
