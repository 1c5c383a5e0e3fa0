"""The layer stack as overlayfs sees it: whiteouts, opaque directories, merged lookups.

Pure functions over real directories; no FUSE here, so the rules can be read (and tested)
on their own. The on-disk forms are overlayfs' (Documentation/filesystems/overlayfs.rst,
"whiteouts and opaque directories"), which is also what the overlay2 driver writes:

* a whiteout is a character device with device number 0/0;
* an opaque directory carries ``trusted.overlay.opaque=y`` and hides every lower entry;
* a name found as a non-directory, or as a whiteout, in some layer ends the search there;
  a directory keeps merging with the directories of the same name below it until one of
  them is opaque.

Layers are indexed top first: index 0 is the upper directory of a writable mount (or the
top lower of a read-only one).
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from dataclasses import dataclass, field

OPAQUE_XATTR = "trusted.overlay.opaque"
#: overlayfs' private xattr namespace: never shown to, nor settable by, the mount's users
PRIVATE_PREFIX = "trusted.overlay."


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


@dataclass
class Found:
    """Where a merged name lives: its top layer, its stat there, and (for directories)
    every layer that contributes entries, top first."""

    layer: int
    st: os.stat_result
    dirlayers: list[int] = field(default_factory=list)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


@dataclass
class Lookup:
    found: Found | None
    #: a whiteout hid the name in some layer (overlay then creates directories opaque)
    whiteout: bool = False


def lookup(roots: list[str], parent_layers: list[int], relpath: str) -> Lookup:
    """Resolve ``relpath`` (a child of a directory merged from ``parent_layers``)."""
    found: Found | None = None
    for idx in parent_layers:
        real = os.path.join(roots[idx], relpath)
        st = lstat_or_none(real)
        if st is None:
            continue
        if is_whiteout(st):
            return Lookup(found, whiteout=found is None)
        if not stat.S_ISDIR(st.st_mode):
            if found is None:
                return Lookup(Found(idx, st))
            break  # a lower non-directory under a directory ends the merge
        if found is None:
            found = Found(idx, st, [idx])
        else:
            found.dirlayers.append(idx)
        if is_opaque(real):
            break
    return Lookup(found)


def root_layers(roots: list[str]) -> list[int]:
    """The layers the root directory merges: all of them, down to the first opaque root."""
    out = []
    for idx, r in enumerate(roots):
        out.append(idx)
        if is_opaque(r):
            break
    return out


@dataclass
class Entry:
    """One visible name of a merged directory, with what readdir learnt about it."""

    name: str
    found: Found

    @functools.cached_property
    def bname(self) -> bytes:
        """The name as readdir replies it (kept: a cached listing is replied many times)."""
        return os.fsencode(self.name)


def merged_entries(roots: list[str], dirlayers: list[int], relpath: str) -> list[Entry]:
    """The visible entries of a merged directory, names sorted for stable offsets.

    One scandir per contributing layer, then one lstat per visible name (readdirplus needs
    the attributes anyway); the opaque xattr is read only for directories that have a
    same-named directory below them.
    """
    seen: dict[str, list[tuple[int, os.DirEntry]]] = {}
    for idx in dirlayers:
        try:
            it = os.scandir(os.path.join(roots[idx], relpath))
        except (FileNotFoundError, NotADirectoryError):
            continue
        with it:
            for de in it:
                seen.setdefault(de.name, []).append((idx, de))
    out = []
    for name in sorted(seen):
        hits = seen[name]
        idx, de = hits[0]
        st = de.stat(follow_symlinks=False)
        if is_whiteout(st):
            continue
        f = Found(idx, st)
        if stat.S_ISDIR(st.st_mode):
            f.dirlayers.append(idx)
            for i, (lidx, lde) in enumerate(hits[1:]):
                prev_idx, prev_de = hits[i]
                if is_opaque(prev_de.path):
                    break
                lst = lde.stat(follow_symlinks=False)
                if not stat.S_ISDIR(lst.st_mode):
                    break
                f.dirlayers.append(lidx)
        out.append(Entry(name, f))
    return out


def lower_has(roots: list[str], parent_layers: list[int], relpath: str, upper: int) -> bool:
    """Would ``relpath`` still show from a layer below ``upper`` if the upper entry went?

    That is when a removal must leave a whiteout (overlay's "lower positive").
    """
    for idx in parent_layers:
        if idx == upper:
            continue
        st = lstat_or_none(os.path.join(roots[idx], relpath))
        if st is None:
            continue
        return not is_whiteout(st)
    return False
