"""Finding storage drivers by name: built-ins plus the ``pydock.storage_drivers`` entry points.

Built-ins are named by ``"module:Class"`` strings and imported only when asked for, so that
importing the registry (on ``pydock run``'s hot path) costs nothing. Entry points are scanned
only when a name is not built in, or when every name is listed: scanning installed
distributions' metadata takes tens of milliseconds.

The automatic choice follows containers/storage: an explicit name wins; otherwise a driver
whose home already holds layers is kept (switching drivers would hide existing images) if
its probe still passes -- fuse-union, which shares overlay2's store, keeps that store on a
host that lost kernel overlay; otherwise the first driver of :data:`PRIORITY` whose probe
passes. Only built-in homes are checked for existing layers (a plugin is used when named
explicitly).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

from pydock.drivers.base import Driver, DriverError, DriverOptions, NotSupported

ENTRY_POINT_GROUP = "pydock.storage_drivers"

BUILTIN: dict[str, str] = {
    "vfs": "pydock.drivers.vfs:VfsDriver",
    "overlay2": "pydock.overlay.driver:Overlay2Driver",
    "fuse-union": "pydock.fuse_union.driver:FuseUnionDriver",
}

#: automatic choice order; vfs last because it copies every layer in full
PRIORITY: list[str] = ["overlay2", "fuse-union", "vfs"]


def _load(spec: str) -> type[Driver]:
    module, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise DriverError(f"{spec} is not a pydock storage driver class")
    return cls


def _builtin_available(name: str) -> bool:
    """A built-in is listed only if its module is installed (fuse-union may not be yet)."""
    module = BUILTIN[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """Every driver that can be asked for: available built-ins, then plugins, sorted."""
    found = {n for n in BUILTIN if _builtin_available(n)}
    found.update(_entry_points())
    return sorted(found)


def get_class(name: str) -> type[Driver]:
    spec = BUILTIN.get(name)
    if spec is not None and not _builtin_available(name):
        spec = _entry_points().get(name)
        if spec is None:
            raise DriverError(f"storage driver {name!r} is not installed")
    if spec is None:
        spec = _entry_points().get(name)
    if spec is None:
        raise DriverError(f"unknown storage driver {name!r} (known: {', '.join(names())})")
    try:
        return _load(spec)
    except ImportError as e:
        raise DriverError(f"storage driver {name!r} cannot be loaded: {e}") from None


def open_driver(name: str, root: str | Path, options: DriverOptions | None = None) -> Driver:
    """The driver ``name`` rooted at ``<root>/<name>``."""
    cls = get_class(name)
    return cls(Path(root) / name, options or DriverOptions())


def _has_layers(home: Path) -> bool:
    """Does a driver home hold anything besides our own bookkeeping dot-files?"""
    try:
        with os.scandir(home) as it:
            for e in it:
                if not e.name.startswith(".") and e.is_dir() and any(os.scandir(e.path)):
                    return True
    except (FileNotFoundError, NotADirectoryError):
        return False
    return False


def choose(root: str | Path, preferred: str | None = None) -> tuple[str, dict[str, str]]:
    """Pick a driver: ``(name, reasons)``, ``reasons`` saying why others were passed over.

    ``preferred`` (from ``--storage-driver`` or the config) wins outright: it is not probed
    here, so that a failure is reported by the driver itself with its own message.
    """
    root = Path(root)
    if preferred:
        get_class(preferred)  # unknown names fail now, with the list of known ones
        return preferred, {}
    reasons: dict[str, str] = {}
    for name in PRIORITY:
        if name not in BUILTIN or not _builtin_available(name):
            continue
        cls = get_class(name)
        # fuse-union keeps its layers in overlay2's store (layer_store), so either driver
        # may keep a store that holds layers; a host that lost kernel overlay falls to it.
        if _has_layers(root / (getattr(cls, "layer_store", None) or name)):
            try:
                cls.probe(root / name)
            except NotSupported as e:
                reasons[name] = str(e)
                continue
            return name, reasons
    for name in PRIORITY:
        try:
            cls = get_class(name)
        except DriverError as e:
            reasons[name] = str(e)
            continue
        try:
            cls.probe(root / name)
        except NotSupported as e:
            reasons[name] = str(e)
            continue
        return name, reasons
    raise DriverError(
        "no storage driver works on this host: "
        + "; ".join(f"{n}: {r}" for n, r in reasons.items())
    )
