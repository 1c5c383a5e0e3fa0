"""What killed pydock processes leave in the stores, found and removed.

Every store change is ordered so that each crash point leaves something a later command
can recognise as dead (containers.py, images.py, starter.py): a container's stage whose
owner no longer runs, a half-removed container, a start worker's files, a temporary file
no lock holder is writing, a driver layer no record names. Two sweeps:

* cheap, in every command that recovers records (``Engine.reconcile``): the strays of the
  containers' listdir that reconcile reads anyway, and the start pool's dead workers (a
  listdir and a /proc read per worker). Never on ``pydock run``'s path.
* full, in ``pydock system boot`` (:func:`sweep_all`): the above, names no container
  holds, and, under the image store's exclusive lock, temporary files and driver layers no
  image or container owns. ``load`` and ``rmi``, which hold that lock anyway, sweep the
  image store too (:func:`sweep_images`).
"""

from __future__ import annotations

import os
import sys

from .containers import REMOVED_PREFIX, STAGE_PREFIX, alive, delete_tree, link_name
from .fsutil import read_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .engine import Engine

#: what fsutil.write_atomic names its temporary files: ``<file>.tmp-<pid>``
TEMP_MARK = ".tmp-"


def _names_of(engine: Engine, cid: str) -> list[str]:
    """Every name whose link points at ``cid``."""
    d = engine.containers.names
    out = []
    try:
        for n in os.listdir(d):
            try:
                if os.readlink(d / n) == cid:
                    out.append(n)
            except OSError:
                continue
    except FileNotFoundError:
        pass
    return out


def _drop_names(engine: Engine, cid: str) -> None:
    for n in _names_of(engine, cid):
        engine.containers.unlink_name(n, cid)


def sweep_containers(engine: Engine, strays: list[str]) -> None:
    """Remove the strays ContainerStore.scan found, if nobody works on them:

    * ``.new-<id>-<pid>-<start>``: an add whose owner is dead (it never appeared): the
      stage and the name it may have claimed;
    * ``.rm-<id>``: a removal that was killed: the rest of it, name included;
    * ``<id>`` without a record (left by versions that removed in place): removed under
      its lock, if nobody holds that.
    """
    store = engine.containers
    for n in strays:
        path = store.dir / n
        if n.startswith(STAGE_PREFIX):
            cid, _, owner = n[len(STAGE_PREFIX) :].partition("-")
            pid, _, start = owner.partition("-")
            if not pid.isdigit() or alive({"Pid": int(pid), "Start": start}):
                continue
            if not (store.dir / cid).exists():  # not renamed into place: its name is void
                _drop_names(engine, cid)
            delete_tree(path)
        elif n.startswith(REMOVED_PREFIX):
            _drop_names(engine, n[len(REMOVED_PREFIX) :])
            delete_tree(path)
        else:
            lock = store.lock(n)
            try:
                if not lock.try_acquire():
                    continue
            except FileNotFoundError:
                continue  # removed meanwhile
            try:
                if not (path / "container.json").exists():
                    store.remove({"Id": n, "Name": ""})
                    _drop_names(engine, n)
            finally:
                lock.release()


def sweep_names(engine: Engine) -> None:
    """Drop names that no container holds: links to an id with no directory at all (a
    create killed by versions that claimed the name first), or to a container whose
    record has another name (a killed ``rename``), checked under its lock."""
    store = engine.containers
    try:
        names = os.listdir(store.names)
    except FileNotFoundError:
        return
    try:
        entries = os.listdir(store.dir)
    except FileNotFoundError:
        entries = []
    staged = {e[len(STAGE_PREFIX) :][:64] for e in entries if e.startswith(STAGE_PREFIX)}
    for n in names:
        try:
            cid = os.readlink(store.names / n)
        except OSError:
            continue
        if cid in staged:
            continue  # an add in progress (or a dead one, which sweep_containers takes)
        if not (store.dir / cid).is_dir():
            store.unlink_name(n, cid)
            continue
        lock = store.lock(cid)
        try:
            if not lock.try_acquire():
                continue
        except FileNotFoundError:
            continue
        try:
            rec = store.load(cid)
            if link_name(rec.get("Name", "").lstrip("/")) != n:
                store.unlink_name(n, cid)
        except (OSError, ValueError, LookupError):
            pass  # no record: sweep_containers' case
        finally:
            lock.release()


def sweep_starters(root: os.PathLike[str] | str) -> None:
    """Have the start pool remove what its dead workers left (their prepared cgroups,
    their journaled teardowns); one listdir when none died."""
    from . import prestart

    d = os.path.join(root, "starters")
    try:
        names = os.listdir(d)
    except OSError:
        return
    keys = {key for key, dot, _ in (n.partition(".") for n in names) if dot and "-" in key}
    if any(not prestart.alive(k) for k in keys):
        from .starter import sweep

        sweep(str(root))


def _temp_files(d: os.PathLike[str] | str, prefixes: tuple[str, ...] = ("",)) -> list[str]:
    try:
        return [
            os.path.join(d, n) for n in os.listdir(d) if TEMP_MARK in n and n.startswith(prefixes)
        ]
    except (FileNotFoundError, NotADirectoryError):
        return []


def sweep_images(engine: Engine, every_store: bool = False) -> None:
    """Remove the image store's crash leftovers. The caller holds ``engine.images.lock``
    exclusively, so no writer of these files is at work: every temporary file is a dead
    writer's, and every driver layer no layer record and no container names is the
    remains of an apply (load, pull, commit) killed before its record was written.
    Layers of the chosen driver's store only, unless ``every_store`` (system boot): no
    other driver is opened (and probed) for a command that does not use it."""
    images = engine.images
    leftovers = _temp_files(images.root, ("repositories.json", "repodigests.json"))
    leftovers += _temp_files(images.images_dir)
    for store in images.drivers_with_layers():
        leftovers += _temp_files(images.root / "layerdb" / store)
    for path in leftovers:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    _sweep_layers(engine, every_store)


def _layer_stores(engine: Engine) -> list[str]:
    """The layer stores under the root, by the name of the driver that owns each (a
    store that driver cannot serve here is served by the chosen one: Engine.driver)."""
    from ..drivers import registry
    from ..drivers.base import DriverError

    out = []
    for name in registry.PRIORITY:
        try:
            store = getattr(registry.get_class(name), "layer_store", None) or name
        except DriverError:
            continue
        if store not in out and (engine.root / store).is_dir():
            out.append(store)
    return out


def _sweep_layers(engine: Engine, every_store: bool) -> None:
    from ..drivers.base import DriverError
    from .errors import EngineError
    from .images import store_name
    from .prestart import settle_teardowns

    settle_teardowns(str(engine.root))  # a served run's layer is torn down, not swept
    journaled = _journaled_layers(engine.root)
    chosen = engine.driver()
    for store in _layer_stores(engine) if every_store else [store_name(chosen)]:
        try:
            driver = chosen if store_name(chosen) == store else engine.driver(store)
        except EngineError:
            continue  # no driver here can open it: nothing to sweep with
        # Layers first, then the records: a container's record precedes its layer, so a
        # container made in between is either in neither list or in both.
        layers = set(driver.list_layers())
        owned = {c[7:] for c in engine.images.layer_records(store_name(driver))}
        owned |= {r["Id"] for r in engine.containers.all()}
        orphans = layers - owned - journaled
        if not orphans:
            continue
        for lid in layers - orphans:  # what a kept layer stands on is kept
            orphans.difference_update(_chain(driver, lid))
        depth = {lid: len(_chain(driver, lid)) for lid in orphans}
        for lid in sorted(orphans, key=depth.__getitem__, reverse=True):  # children first
            try:
                driver.remove(lid)
            except DriverError as e:
                if driver.exists(lid):
                    print(f"pydock: removing orphan layer {lid[:12]}: {e}", file=sys.stderr)


def _chain(driver, lid: str | None) -> list[str]:
    """``lid`` and the layers below it."""
    from ..drivers.base import DriverError

    out: list[str] = []
    while lid and lid not in out:
        out.append(lid)
        try:
            lid = driver.parent(lid)
        except DriverError:
            break
    return out


def _journaled_layers(root: os.PathLike[str] | str) -> set[str]:
    """Container layers a start worker's teardown journal still names (its own to remove)."""
    d = os.path.join(root, "starters")
    out: set[str] = set()
    try:
        names = [n for n in os.listdir(d) if n.endswith(".teardown")]
    except OSError:
        return out
    for n in names:
        try:
            out.add(read_json(os.path.join(d, n))["rec"]["Id"])
        except (OSError, ValueError, LookupError, TypeError):
            continue
    return out


def sweep_all(engine: Engine) -> None:
    """The full job, for ``system boot``: records (reconcile), container strays and dead
    workers, names, then the image store and driver layers under its lock."""
    engine.reconcile()
    sweep_names(engine)
    with engine.images.lock:
        sweep_images(engine, every_store=True)
