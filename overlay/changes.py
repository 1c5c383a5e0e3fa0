"""``docker diff`` for overlay2: read the layer's own diff dir, look lower only to classify.

Everything a layer changed is in its diff (upper) directory, so there is no need to compare
two full trees (the "naive diff" vfs must do). Each upper entry is classified:

* a 0/0 character device -> Delete of that path;
* an opaque directory -> Modify (or Add if the parent view has no such directory), plus a
  Delete for every child the parent view had there that the layer did not re-create;
* any other entry -> Add if the parent view lacks the path, else Modify -- except a
  directory whose metadata equals the parent's: overlay copies a directory up (keeping its
  timestamps) just to hold a changed child, and that alone is not a change of the
  directory (the same rule a tree comparison applies).

"The parent view" is the merge of the lower diff directories, resolved the way overlayfs
resolves a lookup (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque
directories"): top-down, stopping at a whiteout, a non-directory or an opaque directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from pydock.drivers.base import Change, ChangeKind
from pydock.drivers.layers import read_xattrs
from pydock.drivers.whiteouts import OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class LowerView:
    """Lookups in the merged view of lower diff directories (nearest layer first)."""

    def __init__(self, lowers: Sequence[Path]) -> None:
        self.lowers = [os.fspath(p) for p in lowers]

    def _layers_for_dir(self, parts: Sequence[str]) -> list[str] | None:
        """The lower layers whose copy of directory ``parts`` takes part in the merge.

        None if the directory does not exist in the parent view.
        """
        active = self.lowers
        for i in range(len(parts)):
            found, active = self._lookup_in(active, parts[: i + 1])
            if found is None or not stat.S_ISDIR(found[0].st_mode):
                return None
        return active

    def _lookup_in(
        self, layers: Sequence[str], parts: Sequence[str]
    ) -> tuple[tuple[os.stat_result, str] | None, list[str]]:
        """Resolve ``parts`` in ``layers`` (whose parent dirs merge).

        Returns the (lstat, path) of the visible entry and the layers whose copies of it merge
        (more than one only for directories).
        """
        rel = os.path.join(*parts)
        top: tuple[os.stat_result, str] | None = None
        merging: list[str] = []
        for layer in layers:
            path = os.path.join(layer, rel)
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout(st):
                break
            if top is None:
                top = (st, path)
            if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(top[0].st_mode):
                break
            merging.append(layer)
            if is_opaque(path):
                break
        return top, merging

    def lookup(self, parts: Sequence[str]) -> tuple[os.stat_result, str] | None:
        """(lstat, path) of ``parts`` in the parent view, or None if it is absent there."""
        layers = self._layers_for_dir(parts[:-1])
        if layers is None:
            return None
        return self._lookup_in(layers, parts)[0]

    def children(self, parts: Sequence[str]) -> set[str]:
        """Names in directory ``parts`` of the parent view (whiteouts applied)."""
        layers = self._layers_for_dir(parts) if parts else self._root_layers()
        if not layers:
            return set()
        seen: set[str] = set()
        hidden: set[str] = set()
        for layer in layers:
            d = os.path.join(layer, *parts) if parts else layer
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                if e.name in seen or e.name in hidden:
                    continue
                st = e.stat(follow_symlinks=False)
                (hidden if is_whiteout(st) else seen).add(e.name)
        return seen

    def _root_layers(self) -> list[str]:
        out = []
        for layer in self.lowers:
            out.append(layer)
            if is_opaque(layer):
                break
        return out


def _public_xattrs(path: str) -> dict[str, bytes]:
    return {k: v for k, v in read_xattrs(path).items() if not k.startswith(OVERLAY_XATTR_PREFIX)}


def _same_dir_metadata(path: str, a: os.stat_result, lower_path: str, b: os.stat_result) -> bool:
    return (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) == (
        b.st_mode,
        b.st_uid,
        b.st_gid,
        b.st_mtime_ns,
    ) and _public_xattrs(path) == _public_xattrs(lower_path)


def layer_changes(upper: Path, lowers: Sequence[Path]) -> list[Change]:
    """The changes recorded in ``upper`` relative to the merged ``lowers``, sorted by path.

    Same conventions as the tree comparison in :func:`pydock.drivers.layers.tree_changes`,
    so every driver answers ``docker diff`` alike: a directory that exists below is "C" when
    its own metadata changed or anything beneath it changed; the layer root is not listed; a
    deleted directory is listed once.
    """
    view = LowerView(lowers)
    out: list[Change] = []

    def walk(dir_path: str, parts: tuple[str, ...], hides: bool) -> bool:
        # ``hides``: this directory is inside an opaque one, so in the merged view it shows
        # only its upper children even though it is not marked opaque itself.
        # Returns whether anything below ``dir_path`` changed.
        with os.scandir(dir_path) as it:
            entries = sorted(it, key=lambda e: e.name)
        changed = False
        if hides:
            mine = {e.name for e in entries}
            for gone in sorted(view.children(parts) - mine):
                out.append(Change("/" + "/".join((*parts, gone)), ChangeKind.DELETE))
                changed = True
        for e in entries:
            rel = (*parts, e.name)
            name = "/" + "/".join(rel)
            st = e.stat(follow_symlinks=False)
            lower = view.lookup(rel)
            if is_whiteout(st):
                if lower is not None:
                    out.append(Change(name, ChangeKind.DELETE))
                    changed = True
                continue
            if not stat.S_ISDIR(st.st_mode):
                changed = True
                out.append(Change(name, ChangeKind.ADD if lower is None else ChangeKind.MODIFY))
                continue
            marked = is_opaque(e.path)
            lower_dir = lower is not None and stat.S_ISDIR(lower[0].st_mode)
            mark = len(out)
            inner = walk(e.path, rel, lower_dir and (hides or marked))
            if lower is None:
                out.insert(mark, Change(name, ChangeKind.ADD))
                changed = True
            elif (
                inner
                or marked
                or not lower_dir
                or not _same_dir_metadata(e.path, st, lower[1], lower[0])
            ):
                out.insert(mark, Change(name, ChangeKind.MODIFY))
                changed = True
            # else: copied up only to hold children, and none of them changed either
        return changed

    walk(os.fspath(upper), (), is_opaque(os.fspath(upper)))
    out.sort()
    return out
