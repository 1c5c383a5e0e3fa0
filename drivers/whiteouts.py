"""How each driver stores OCI whiteouts on disk, and how to read them back.

OCI image-spec layer.md defines whiteouts inside a *tar*: ``.wh.NAME`` deletes ``NAME`` from
the lower layers and ``DIR/.wh..wh..opq`` hides every lower child of ``DIR``. Once a layer is
unpacked, each driver keeps them in its own form:

* vfs keeps full copies, so a whiteout is simply the deletion of the copied file
  (:class:`DeletingWhiteouts`), and a diff is computed by comparing trees, not by reading
  markers back;
* overlayfs (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories")
  needs a 0/0 character device for a deleted name and the xattr ``trusted.overlay.opaque=y``
  on an opaque directory (:class:`OverlayWhiteouts`, :class:`OverlayWhiteoutReader`).

:func:`pydock.drivers.layers.apply_tar` takes a :class:`WhiteoutHandler`,
:func:`pydock.drivers.layers.write_tar` an optional :class:`WhiteoutReader`.
"""

from __future__ import annotations

import os
import stat

from pydock.drivers.safefs import remove_at

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    # The interfaces below are structural (duck-typed); at run time they are plain
    # classes so that importing typing stays off `pydock run`'s path.
    Protocol = object

#: xattr overlayfs sets on an opaque directory (trusted.* needs CAP_SYS_ADMIN: we are root).
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
#: every trusted.overlay.* xattr is overlayfs' private bookkeeping, never layer content
OVERLAY_XATTR_PREFIX = "trusted.overlay."


class WhiteoutHandler(Protocol):
    """Turns tar whiteouts into the driver's on-disk form while a layer is applied."""

    def whiteout(self, dir_fd: int, name: str) -> None:
        """Hide the lower-layer entry ``name`` of the directory ``dir_fd``.

        ``dir_fd`` was opened without following symlinks and lies inside the layer; use
        ``*at`` calls on it only. Never called for a name this same tar added (the spec says
        whiteouts apply to lower layers only).
        """

    def opaque(self, dir_fd: int, added: frozenset[tuple[str, ...]]) -> None:
        """Make the directory ``dir_fd`` hide all lower-layer children.

        ``added`` holds the paths (relative to that directory, as component tuples) that this
        same tar already put below it; they belong to the new layer and must survive, even
        though the opaque marker came after them in the stream.
        """


class WhiteoutReader(Protocol):
    """Recognises the driver's on-disk whiteouts when a layer directory is exported."""

    def is_whiteout(self, st: os.stat_result) -> bool:
        """Is this (lstat) entry a deletion marker rather than content?"""

    def is_opaque(self, xattrs: dict[str, bytes]) -> bool:
        """Does a directory with these xattrs hide its lower children?"""

    def is_private_xattr(self, name: str) -> bool:
        """Is this xattr the driver's bookkeeping (never exported into a tar)?"""


class DeletingWhiteouts:
    """vfs form: the layer is a full copy of its parent, so whiteouts delete from the copy."""

    def whiteout(self, dir_fd: int, name: str) -> None:
        remove_at(dir_fd, name)

    def opaque(self, dir_fd: int, added: frozenset[tuple[str, ...]]) -> None:
        _clear_except(dir_fd, (), added)


def _clear_except(fd: int, prefix: tuple[str, ...], keep: frozenset[tuple[str, ...]]) -> None:
    # A kept directory that merged with a lower one still hides its lower children, so
    # descend into kept directories and keep only what the tar itself added there.
    for child in os.listdir(fd):
        rel = (*prefix, child)
        if rel not in keep:
            remove_at(fd, child)
            continue
        st = os.stat(child, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(child, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            try:
                _clear_except(sub, rel, keep)
            finally:
                os.close(sub)


class OverlayWhiteouts:
    """overlayfs form: 0/0 character devices and ``trusted.overlay.opaque=y``."""

    def whiteout(self, dir_fd: int, name: str) -> None:
        remove_at(dir_fd, name)
        os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dir_fd)

    def opaque(self, dir_fd: int, added: frozenset[tuple[str, ...]]) -> None:
        # Everything in an upper dir came from this layer, so nothing needs deleting.
        os.setxattr(dir_fd, OVERLAY_OPAQUE_XATTR, b"y")


class OverlayWhiteoutReader:
    """Reads overlayfs' whiteout form back when exporting an upper directory."""

    def is_whiteout(self, st: os.stat_result) -> bool:
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0

    def is_opaque(self, xattrs: dict[str, bytes]) -> bool:
        return xattrs.get(OVERLAY_OPAQUE_XATTR) == b"y"

    def is_private_xattr(self, name: str) -> bool:
        return name.startswith(OVERLAY_XATTR_PREFIX)
