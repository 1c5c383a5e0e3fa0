"""The storage-driver interface: the only language between the engine and storage.

It follows the graphdriver shape that moby and containers/storage share (ProtoDriver +
DiffDriver), so a reader who knows either knows this one:

* layers are identified by opaque string ids chosen by the caller (the engine uses chain ids
  for image layers and container ids for writable layers);
* ``create`` makes an empty read-only layer on a parent, ``apply_diff`` fills it from an OCI
  layer tar stream (whiteouts included), ``create_rw`` makes a container's writable layer;
* ``get``/``put`` mount and unmount with a reference count shared by every pydock process;
* ``diff``/``changes``/``diff_size`` export what a layer changed relative to its parent.

Nothing outside a driver knows where its files live; the engine only sees the path ``get``
returns. Drivers are found by name through :mod:`pydock.drivers.registry`.
"""

from __future__ import annotations

import abc
import enum
from collections import namedtuple
from pathlib import Path

# Type-only names: importing typing (and dataclasses) costs milliseconds on `pydock run`'s
# path, so the records below are namedtuples and plain classes instead.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO


class DriverError(Exception):
    """A storage operation failed; the message is one line, fit for the CLI."""


class NotSupported(DriverError):
    """The driver cannot run on this host; the message says why (for ``pydock info``)."""


class LayerNotFound(DriverError):
    """No layer with that id exists in this driver."""


class LayerExists(DriverError):
    """A layer with that id already exists in this driver."""


class LayerInUse(DriverError):
    """The layer is mounted or has children and cannot be removed."""


class UnsafeLayer(DriverError):
    """A layer tar tried to write outside its layer (``..``, absolute links, ...)."""


class ChangeKind(enum.IntEnum):
    """Kinds as containers/storage numbers them: 0 modify, 1 add, 2 delete."""

    MODIFY = 0
    ADD = 1
    DELETE = 2

    @property
    def letter(self) -> str:
        """The letter ``docker diff`` prints: C, A or D."""
        return "CAD"[self.value]


class Change(namedtuple("Change", "path kind")):
    """One changed path: ``path`` absolute inside the layer ("/etc/passwd"), ``kind`` a
    ChangeKind. Ordered by path, then kind."""

    __slots__ = ()
    path: str
    kind: ChangeKind


class Usage(namedtuple("Usage", "size inodes")):
    """Disk use of one layer: bytes in blocks actually allocated, and inode count."""

    __slots__ = ()
    size: int
    inodes: int


class DriverOptions:
    """Options from ``--storage-opt driver.key=value`` (prefix already stripped)."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values: dict[str, str] = values if values is not None else {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DriverOptions) and self.values == other.values

    def __repr__(self) -> str:
        return f"DriverOptions({self.values!r})"

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)


class Driver(abc.ABC):
    """One storage driver rooted at ``home`` (``<pydock root>/<driver name>``)."""

    #: the registry name, e.g. "overlay2", "vfs"
    name: str = ""

    def __init__(self, home: str | Path, options: DriverOptions | None = None) -> None:
        self.home = Path(home)
        self.options = options or DriverOptions()

    # -- host support ------------------------------------------------------------------
    @classmethod  # noqa: B027 - optional hook; the default says "supported"
    def probe(cls, home: str | Path) -> None:
        """Raise :class:`NotSupported` with the reason if this host cannot run the driver.

        Called by the automatic choice before constructing the driver; cheap checks only,
        results may be cached on disk under ``home``.
        """

    # -- layers ------------------------------------------------------------------------
    @abc.abstractmethod
    def create(self, id: str, parent: str | None) -> None:
        """Make an empty read-only layer on ``parent`` (None: a base layer)."""

    @abc.abstractmethod
    def create_rw(self, id: str, parent: str | None, *, ephemeral: bool = False) -> None:
        """Make a container's writable layer on ``parent``.

        ``ephemeral``: the layer is removed when its container stops (``run --rm``), so it
        needs no durability and no usage record: a driver may skip syncs (overlay's
        ``volatile``) and the usage walk at unmount.
        """

    @abc.abstractmethod
    def apply_diff(self, id: str, parent: str | None, stream: BinaryIO) -> int:
        """Apply an uncompressed OCI layer tar to the (empty) layer ``id``.

        Whiteouts (``.wh.NAME``, ``.wh..wh..opq``) are converted to the driver's own form.
        Entries that would escape the layer raise :class:`UnsafeLayer` and leave nothing
        outside it. Returns the layer's size in bytes (sum of regular file sizes applied).
        """

    @abc.abstractmethod
    def remove(self, id: str) -> None:
        """Delete a layer. Raises :class:`LayerInUse` while it is mounted."""

    @abc.abstractmethod
    def exists(self, id: str) -> bool: ...

    @abc.abstractmethod
    def list_layers(self) -> list[str]: ...

    @abc.abstractmethod
    def parent(self, id: str) -> str | None:
        """The parent a layer was created on."""

    # -- mounts ------------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, id: str) -> str:
        """Mount the layer (with its parents) and return the merged path.

        Reference counted across processes: the n-th ``get`` returns the same path and only
        the last ``put`` unmounts.
        """

    @abc.abstractmethod
    def put(self, id: str) -> None:
        """Drop one reference taken by :meth:`get`; unmount on the last one."""

    @abc.abstractmethod
    def mounted(self, id: str) -> bool: ...

    # -- diffs -------------------------------------------------------------------------
    @abc.abstractmethod
    def diff(self, id: str, out: BinaryIO) -> None:
        """Write what ``id`` changed relative to its parent as an OCI layer tar to ``out``.

        Deletions appear as ``.wh.NAME`` entries and opaque directories as
        ``DIR/.wh..wh..opq``, so the stream applied onto a copy of the parent reproduces the
        layer exactly.
        """

    def diff_exact(self, id: str, out: BinaryIO) -> bool:
        """Write the very tar ``apply_diff`` was given for ``id``, byte for byte, to ``out``.

        Image ids and registry digests are hashes of the original layer tars, which
        :meth:`diff` cannot reproduce (it writes an equivalent tar). Returns False, having
        written nothing, when the driver kept no record of the original (the default, and
        for layers that were never applied from a tar, such as containers' layers).
        """
        return False

    @abc.abstractmethod
    def changes(self, id: str) -> list[Change]:
        """What ``id`` changed relative to its parent (``docker diff``), sorted by path."""

    @abc.abstractmethod
    def diff_size(self, id: str) -> int:
        """Bytes of regular-file content ``id`` adds relative to its parent."""

    @abc.abstractmethod
    def usage(self, id: str) -> Usage:
        """Disk use of the layer's own data (for a container: its writable layer).

        Must not walk the tree on every call: drivers keep it current as the layer changes
        (applied diffs record it; writable layers record it when they are unmounted).
        """

    # -- driver-wide -------------------------------------------------------------------
    def status(self) -> list[tuple[str, str]]:
        """``docker info``'s Storage Driver lines, e.g. [("Backing Filesystem", "extfs")]."""
        return []

    def capabilities(self) -> dict[str, bool]:
        """Feature flags, e.g. {"ReproducesExactDiffs": True}: :meth:`diff_exact` returns the
        original tar of applied layers."""
        return {}

    def metadata(self, id: str) -> dict[str, str]:
        """``GraphDriver.Data`` of ``docker inspect`` (overlay: LowerDir, UpperDir, ...)."""
        return {}

    def cleanup(self) -> None:  # noqa: B027 - optional hook, default: nothing mounted
        """Unmount everything this driver mounted in this process (engine shutdown)."""

    def walk_layers(self) -> Iterator[str]:
        yield from self.list_layers()
