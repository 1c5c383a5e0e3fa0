"""Building real OCI layer tars and describing trees, for the driver tests.

Layers are written with :mod:`tarfile` exactly as a registry would serve them (PAX,
``SCHILY.xattr.*``, ``.wh.`` whiteouts), and trees are compared through :func:`snapshot`,
which lists everything a layer must preserve for every path.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

MTIME = 1_600_000_000  # a fixed, ordinary timestamp for entries that do not care


@dataclass
class E:
    """One tar entry. ``kind``: file, dir, symlink, hardlink, chr, blk, fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: str = str(MTIME)  # PAX decimal string, ns precision allowed
    link: str = ""
    dev: tuple[int, int] = (0, 0)
    xattrs: dict[str, bytes] = field(default_factory=dict)


def f(name: str, data: bytes = b"", **kw) -> E:
    return E(name, "file", data, **kw)


def d(name: str, **kw) -> E:
    kw.setdefault("mode", 0o755)
    return E(name, "dir", **kw)


def sym(name: str, target: str, **kw) -> E:
    kw.setdefault("mode", 0o777)
    return E(name, "symlink", link=target, **kw)


def hard(name: str, target: str) -> E:
    return E(name, "hardlink", link=target)


def whiteout(path: str) -> E:
    head, _, base = path.rpartition("/")
    return f(f"{head}/.wh.{base}" if head else f".wh.{base}")


def opaque(dir_path: str) -> E:
    return f(f"{dir_path}/.wh..wh..opq")


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "chr": tarfile.CHRTYPE,
    "blk": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def tar_bytes(*entries: E) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.type = _TYPES[e.kind]
            ti.mode, ti.uid, ti.gid = e.mode, e.uid, e.gid
            ti.mtime = int(float(e.mtime))
            ti.pax_headers = {"mtime": e.mtime}
            for k, v in e.xattrs.items():
                ti.pax_headers[f"SCHILY.xattr.{k}"] = v.decode("utf-8", "surrogateescape")
            ti.linkname = e.link
            ti.devmajor, ti.devminor = e.dev
            if e.kind == "file":
                ti.size = len(e.data)
                t.addfile(ti, io.BytesIO(e.data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def tar_stream(*entries: E) -> io.BytesIO:
    return io.BytesIO(tar_bytes(*entries))


def _xattrs(path: str) -> dict[str, bytes]:
    out = {}
    for name in os.listxattr(path, follow_symlinks=False):
        # overlayfs bookkeeping and security labels are not layer content
        if name.startswith(("trusted.overlay.", "security.selinux")):
            continue
        out[name] = os.getxattr(path, name, follow_symlinks=False)
    return out


def snapshot(root: str | Path, *, times: bool = True) -> dict[str, tuple]:
    """Every path below ``root`` -> (type, mode, uid, gid, size, sha256, link, xattrs,
    nlink within the tree, rdev, mtime ns). The root's own times are left out: no layer
    format records them (Docker's diffs never list "/")."""
    root = os.fspath(root)
    rows: dict[str, tuple] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(p, root)
            st = os.lstat(p)
            fmt = stat.S_IFMT(st.st_mode)
            digest = ""
            if fmt == stat.S_IFREG:
                with open(p, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            link = os.readlink(p) if fmt == stat.S_IFLNK else ""
            if fmt != stat.S_IFDIR:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            rows[rel] = (
                stat.filemode(st.st_mode),
                st.st_uid,
                st.st_gid,
                st.st_size if fmt == stat.S_IFREG else 0,
                digest,
                link,
                tuple(sorted(_xattrs(p).items())),
                st.st_rdev if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0,
                st.st_mtime_ns if times else 0,
            )
    # nlink counted inside the tree: overlayfs and copies report st_nlink differently for
    # links that reach outside, but which paths share an inode must be the same.
    for paths in inodes.values():
        for p in paths:
            rows[p] = (*rows[p], tuple(sorted(paths)))
    for p, row in rows.items():
        if len(row) == 9:
            rows[p] = (*row, ())
    return rows
