"""Where overlay2 keeps things on disk: the same layout Docker and containers/storage use.

::

    <home>/<id>/diff     the layer's own files (upperdir of a writable layer)
    <home>/<id>/link     the layer's short name, e.g. "Q2ZUGBW7YDRZ6TPVNDAXHJ3C5C"
    <home>/<id>/lower    "l/A:l/B:..." -- short names of the parents, nearest first
    <home>/<id>/work     overlay's workdir (writable layers only)
    <home>/<id>/merged   the mount point
    <home>/l/<SHORT>     symlink to ../<id>/diff

The short names exist so a long chain of lower directories fits the one page (4096 bytes)
that mount(2) copies its option string into; with the new mount API each layer is its own
``fsconfig`` call and the page limit is gone, but the layout stays so Docker's tools (and
people) recognise a store. A layer's parent is not stored separately: it is the layer the
first entry of ``lower`` links to, as in Docker's layout.

Read-only layers (``create``) get no ``work`` directory; its presence marks a writable layer
(``create_rw``), which is what ``get`` uses to choose a rw or ro mount.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from pydock.drivers.base import DriverError, LayerNotFound

LINK_DIR = "l"
#: Docker's short-name length: 26 base32 characters (16 random bytes, padding dropped).
SHORT_LEN = 26
#: Names under ``home`` that are not layers.
RESERVED = frozenset({LINK_DIR})


def new_short_name() -> str:
    """A random 26-character upper-case base32 name, as Docker's overlay2 makes them."""
    return base64.b32encode(os.urandom(16)).decode()[:SHORT_LEN]


def check_id(id: str) -> None:
    """Refuse ids that are not one plain path component (they become directory names)."""
    if (
        not id
        or "/" in id
        or "\x00" in id
        or id in (".", "..")
        or id.startswith(".")
        or id in RESERVED
        or len(id) > 255
    ):
        raise DriverError(f"invalid layer id {id!r}")


class LayerPaths:
    """The paths of one layer; pure computation, nothing is touched.

    (A plain class: dataclasses is too slow to import on ``pydock run``'s path.)
    """

    __slots__ = ("home", "id")

    def __init__(self, home: Path, id: str) -> None:
        self.home = home
        self.id = id

    @property
    def dir(self) -> Path:
        return self.home / self.id

    @property
    def diff(self) -> Path:
        return self.dir / "diff"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def link_file(self) -> Path:
        return self.dir / "link"

    @property
    def lower_file(self) -> Path:
        return self.dir / "lower"


class Layout:
    """Reads and writes the on-disk records of a store rooted at ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.link_dir = home / LINK_DIR

    def paths(self, id: str) -> LayerPaths:
        check_id(id)
        return LayerPaths(self.home, id)

    def existing(self, id: str) -> LayerPaths:
        """Paths of a layer that must exist; :class:`LayerNotFound` otherwise."""
        p = self.paths(id)
        if not p.diff.is_dir():
            raise LayerNotFound(f"overlay2: no layer {id!r}")
        return p

    def short_name(self, id: str) -> str:
        return self.existing(id).link_file.read_text().strip()

    def lower_names(self, id: str) -> list[str]:
        """The ``l/SHORT`` entries of the layer's parents, nearest parent first."""
        try:
            text = self.existing(id).lower_file.read_text().strip()
        except FileNotFoundError:
            return []
        return text.split(":") if text else []

    def lower_diffs(self, id: str) -> list[Path]:
        """Absolute diff directories of the parents, nearest first, resolved from the links."""
        return [self._resolve(entry) for entry in self.lower_names(id)]

    def _resolve(self, entry: str) -> Path:
        link = self.home / entry
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            raise DriverError(f"overlay2: link {entry} is missing (store damaged)") from None
        return (link.parent / target).resolve()

    def parent_of(self, id: str) -> str | None:
        names = self.lower_names(id)
        if not names:
            return None
        # "l/SHORT" -> "../<parent>/diff" -> "<parent>"
        return self._resolve(names[0]).parent.name

    def is_rw(self, id: str) -> bool:
        return self.existing(id).work.is_dir()

    def lower_text_for_child(self, parent: str) -> str:
        """The ``lower`` file content of a new layer on ``parent``."""
        return ":".join([f"{LINK_DIR}/{self.short_name(parent)}", *self.lower_names(parent)])

    def layer_ids(self) -> list[str]:
        out = []
        with os.scandir(self.home) as it:
            for e in it:
                if e.name in RESERVED or e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False) and os.path.isdir(os.path.join(e.path, "diff")):
                    out.append(e.name)
        return sorted(out)
