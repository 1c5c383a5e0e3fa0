"""``cp``: copying into and out of a container's root without ever leaving it.

A container's files are hostile input: any path component may be a symlink to ``/`` or
``../../..`` of the host, and a running container can swap a directory for such a link
while we copy. So paths are resolved in two steps:

1. lexically, as if the container root were ``/`` (``nsutil.rootfs.secure_join``: absolute
   link targets restart at the root, ``..`` stops there), which gives Docker's meaning of a
   container path with symlinks followed *inside* the container;
2. then walked component by component with ``openat(O_NOFOLLOW | O_DIRECTORY)`` from a
   descriptor of the root, so a link that appears between the two steps is an error
   (ELOOP), never a way out.

Every create, unlink and metadata change below is an ``*at`` call on such a verified
directory descriptor. The same primitives write host destinations (the user's paths are
trusted, but names and links inside copied trees come from the container). Ownership is
kept only with ``-a`` (Docker's archive mode); otherwise copies belong to root, as Docker's.
Hard links are copied as separate files.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile

from ..drivers.safefs import split_member_name
from ..nsutil.rootfs import secure_join
from .errors import EngineError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class CopyError(EngineError):
    """A copy that cannot be done; the message is Docker's where Docker has one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 1)


# -- resolving -----------------------------------------------------------------------------


def split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def open_parts(root_fd: int, parts: list[str], *, create: bool = False) -> int:
    """A descriptor of directory ``parts`` below ``root_fd``, reached without following any
    symlink; missing directories are made (0755) when ``create``. The caller closes it."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if part == "..":
                raise CopyError("path escapes the container root")
            try:
                nfd = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nfd = os.open(part, _DIR, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise CopyError(
                        f"{'/'.join(parts)}: not a directory (or a link changed)"
                    ) from None
                raise
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


class Root:
    """A container's root (or a host directory) opened once; lookups stay below it."""

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)
        self.fd = os.open(self.path, _DIR)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, path: str, *, follow_last: bool) -> list[str]:
        """``path`` as components below the root, symlinks followed inside the root only.

        The last component is followed only when ``follow_last`` (``cp -L`` for sources; a
        destination that exists is followed, as Docker does)."""
        parts = split(path)
        if not parts:
            return []
        parent = secure_join(self.path, "/".join(parts[:-1]))
        rel = split(os.path.relpath(parent, self.path)) if parent != self.path else []
        last = parts[-1]
        if last == "..":
            return rel[:-1]
        if follow_last:
            full = secure_join(self.path, "/".join([*rel, last]))
            return split(os.path.relpath(full, self.path)) if full != self.path else []
        return [*rel, last]

    def lstat(self, parts: list[str]) -> os.stat_result | None:
        """lstat of ``parts`` (None if missing), reached without following links."""
        if not parts:
            return os.fstat(self.fd)
        try:
            pfd = open_parts(self.fd, parts[:-1])
        except FileNotFoundError:
            return None
        try:
            return os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        finally:
            os.close(pfd)


# -- copying trees between two verified directories ------------------------------------------


class Copier:
    """Copies one entry (recursively) from (src dir fd, name) to (dst dir fd, name)."""

    def __init__(self, *, keep_owner: bool) -> None:
        self.keep_owner = keep_owner

    def copy(self, sfd: int, sname: str, dfd: int, dname: str) -> None:
        st = os.stat(sname, dir_fd=sfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            self._dir(sfd, sname, dfd, dname, st)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(sname, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
            try:
                write_file(dfd, dname, fd, st, keep_owner=self.keep_owner)
            finally:
                os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            write_link(dfd, dname, os.readlink(sname, dir_fd=sfd), st, keep_owner=self.keep_owner)
        else:
            write_special(dfd, dname, st, keep_owner=self.keep_owner)

    def copy_children(self, sfd: int, dfd: int) -> None:
        for child in sorted(os.listdir(sfd)):
            self.copy(sfd, child, dfd, child)

    def _dir(self, sfd: int, sname: str, dfd: int, dname: str, st: os.stat_result) -> None:
        make_dir(dfd, dname, st)
        s = os.open(sname, _DIR, dir_fd=sfd)
        try:
            d = os.open(dname, _DIR, dir_fd=dfd)
            try:
                self.copy_children(s, d)
                set_meta(d, st, keep_owner=self.keep_owner)
            finally:
                os.close(d)
        finally:
            os.close(s)


def _replace_nondir(dfd: int, name: str) -> None:
    """Make room for a new entry: a non-directory there is replaced (tar's rule)."""
    try:
        old = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(old.st_mode):
        raise CopyError(f"cannot overwrite directory {name!r} with non-directory")
    os.unlink(name, dir_fd=dfd)


def make_dir(dfd: int, name: str, st: os.stat_result | None) -> None:
    try:
        old = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        os.mkdir(name, 0o700, dir_fd=dfd)  # final mode set after its children are in
        return
    if not stat.S_ISDIR(old.st_mode):
        raise CopyError(f"cannot overwrite non-directory {name!r} with directory")


def set_meta(fd: int, st: os.stat_result, *, keep_owner: bool) -> None:
    if keep_owner:
        os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def write_file(dfd: int, name: str, src_fd: int, st: os.stat_result, *, keep_owner: bool) -> None:
    _replace_nondir(dfd, name)
    fd = os.open(
        name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd
    )
    try:
        copy_data(src_fd, fd)
        set_meta(fd, st, keep_owner=keep_owner)
    finally:
        os.close(fd)


def copy_data(fi: int, fo: int) -> None:
    while True:
        try:
            n = os.copy_file_range(fi, fo, _CHUNK)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            break
        if n == 0:
            return
    while buf := os.read(fi, _CHUNK):
        os.write(fo, buf)


def write_link(
    dfd: int, name: str, target: str, st: os.stat_result | None, *, keep_owner: bool
) -> None:
    """A symlink is copied as a link, its target untouched: it is only text until some
    lookup follows it, and every lookup here refuses to."""
    _replace_nondir(dfd, name)
    os.symlink(target, name, dir_fd=dfd)
    if st is not None:
        if keep_owner:
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)


def write_special(dfd: int, name: str, st: os.stat_result, *, keep_owner: bool) -> None:
    _replace_nondir(dfd, name)
    if stat.S_ISSOCK(st.st_mode):
        return  # tar skips sockets too
    os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dfd)
    if keep_owner:
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dfd, follow_symlinks=False)


# -- Docker's cp rules -----------------------------------------------------------------------


def _wants_dir(path: str) -> bool:
    return path.endswith("/") or path.endswith("/.") or path in (".", "")


def _contents_only(path: str) -> bool:
    """``SRC/.``: copy what the directory holds, not the directory."""
    return path.endswith("/.") or path == "."


def copy(
    src_root: Root,
    src_path: str,
    dst_root: Root,
    dst_path: str,
    *,
    follow: bool = False,
    keep_owner: bool = False,
) -> None:
    """Copy ``src_path`` (below ``src_root``) to ``dst_path`` (below ``dst_root``) with the
    rules of ``docker cp``: into an existing directory under the source's name; to a new
    path as that name; a directory's contents only for ``SRC/.``."""
    sparts = src_root.resolve(src_path, follow_last=follow)
    sst = src_root.lstat(sparts)
    if sst is None:
        raise CopyError(f"Could not find the file {src_path} in container")
    src_is_dir = stat.S_ISDIR(sst.st_mode)
    if _wants_dir(src_path) and not src_is_dir and src_path not in (".", ""):
        raise CopyError(f"{src_path}: not a directory")
    dparts = dst_root.resolve(dst_path, follow_last=True)
    dst = dst_root.lstat(dparts)
    if dst is None:
        if _wants_dir(dst_path):
            raise CopyError(f"destination directory {dst_path} must exist")
        parent, name = dparts[:-1], dparts[-1]
        if dst_root.lstat(parent) is None:
            raise CopyError(f"destination /{'/'.join(parent)} does not exist")
    elif stat.S_ISDIR(dst.st_mode):
        if src_is_dir and _contents_only(src_path):
            parent, name = dparts, None
        else:
            parent, name = dparts, (sparts[-1] if sparts else "root")
    else:
        if src_is_dir:
            raise CopyError("cannot copy a directory to a file")
        if _wants_dir(dst_path):
            raise CopyError(f"destination {dst_path} is not a directory")
        parent, name = dparts[:-1], dparts[-1]
    cp = Copier(keep_owner=keep_owner)
    sfd = open_parts(src_root.fd, sparts[:-1]) if sparts else os.dup(src_root.fd)
    dfd = open_parts(dst_root.fd, parent)
    try:
        if name is None:  # SRC/. into an existing directory
            s = open_parts(sfd, sparts[-1:]) if sparts else os.dup(sfd)
            try:
                cp.copy_children(s, dfd)
            finally:
                os.close(s)
        elif sparts:
            cp.copy(sfd, sparts[-1], dfd, name)
        else:  # the whole root
            make_dir(dfd, name, sst)
            d = os.open(name, _DIR, dir_fd=dfd)
            try:
                cp.copy_children(sfd, d)
                set_meta(d, sst, keep_owner=keep_owner)
            finally:
                os.close(d)
    finally:
        os.close(sfd)
        os.close(dfd)


# -- tar streams (``-``) ------------------------------------------------------------------------


def write_tar(root: Root, path: str, out, *, follow: bool = False) -> None:  # noqa: ANN001
    """``cp CONTAINER:SRC -``: a tar of SRC, entries named from its base name."""
    parts = root.resolve(path, follow_last=follow)
    st = root.lstat(parts)
    if st is None:
        raise CopyError(f"Could not find the file {path} in container")
    base = parts[-1] if parts and not _contents_only(path) else "."
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        pfd = open_parts(root.fd, parts[:-1]) if parts else os.dup(root.fd)
        walk = _TarWalk(tar)
        try:
            if parts:
                walk.entry(pfd, parts[-1], base)
            else:
                walk.children(pfd, base)
        finally:
            os.close(pfd)


def _tar_info(arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = st.st_mtime
    return info


class _TarWalk:
    """One tar being written from a tree: ``skip`` holds arcnames left out (with what is
    below them); ``links`` (when kept) maps (dev, ino) of files with several links to the
    arcname written first, so later names become hard-link entries (export), else every
    name gets its own copy (cp, which Docker's copies also write as separate files)."""

    def __init__(self, tar: tarfile.TarFile, skip: frozenset[str] | set[str] = frozenset(),
                 hardlinks: bool = False) -> None:  # fmt: skip
        self.tar = tar
        self.skip = skip
        self.links: dict[tuple[int, int], str] | None = {} if hardlinks else None

    def entry(self, pfd: int, name: str, arcname: str) -> None:
        if arcname in self.skip:
            return
        tar = self.tar
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        info = _tar_info(arcname, st)
        if stat.S_ISREG(st.st_mode):
            if self.links is not None and st.st_nlink > 1:
                first = self.links.setdefault((st.st_dev, st.st_ino), arcname)
                if first != arcname:
                    info.type, info.linkname = tarfile.LNKTYPE, first
                    tar.addfile(info)
                    return
            # The size comes from the open file, not the name: a running container may
            # replace the file (write and rename) between our stat and our open. O_NONBLOCK:
            # should a fifo have been swapped in, the open must not wait for a writer.
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         dir_fd=pfd)  # fmt: skip
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise OSError(errno.EAGAIN, "changed while being copied", arcname)
                info = _tar_info(arcname, st)
                info.type, info.size = tarfile.REGTYPE, st.st_size
                tar.addfile(info, f)
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
            fd = os.open(name, _DIR, dir_fd=pfd)
            try:
                self.children(fd, arcname)
            finally:
                os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=pfd)
            tar.addfile(info)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tar.addfile(info)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)

    def children(self, fd: int, arcname: str) -> None:
        for child in sorted(os.listdir(fd)):
            self.entry(fd, child, f"{arcname}/{child}" if arcname != "." else child)


def write_tree_tar(root: Root, out, *, skip: set[str]) -> None:  # noqa: ANN001
    """``export``: the whole tree below ``root`` as a tar, entries named without a leading
    ``./`` (Docker's archive of a layer mount), hard links kept, ``skip`` left out."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _TarWalk(tar, skip, hardlinks=True).children(root.fd, ".")


def extract_tar(root: Root, path: str, stream, *, keep_owner: bool = False) -> None:  # noqa: ANN001
    """``cp - CONTAINER:DEST``: unpack a tar from ``stream`` into the directory DEST.

    Member names pass drivers.safefs.split_member_name (no absolute names, no ``..``), and
    every parent is walked without following links, so a link the tar (or the container)
    planted cannot carry a later member outside DEST.
    """
    parts = root.resolve(path, follow_last=True)
    st = root.lstat(parts)
    if st is None or not stat.S_ISDIR(st.st_mode):
        raise CopyError(f"destination {path} must be a directory")
    dest = open_parts(root.fd, parts)
    dirs: list[tuple[list[str], tarfile.TarInfo]] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for m in tar:
                names = split_member_name(m.name)
                if not names:
                    continue
                pfd = open_parts(dest, names[:-1], create=True)
                try:
                    _extract_member(tar, m, pfd, names[-1], dest, keep_owner)
                finally:
                    os.close(pfd)
                if m.isdir():
                    dirs.append((names, m))
        for names, m in reversed(dirs):  # modes and times once the children are in
            fd = open_parts(dest, names)
            try:
                _member_meta(fd, m, keep_owner)
            finally:
                os.close(fd)
    except tarfile.TarError as e:
        raise CopyError(f"invalid tar stream: {e}") from None
    finally:
        os.close(dest)


def _member_meta(fd: int, m: tarfile.TarInfo, keep_owner: bool) -> None:
    if keep_owner:
        os.fchown(fd, m.uid, m.gid)
    os.fchmod(fd, m.mode & 0o7777)
    os.utime(fd, (m.mtime, m.mtime))


def _extract_member(
    tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, name: str, dest: int, keep_owner: bool
) -> None:
    if m.isdir():
        make_dir(pfd, name, None)
    elif m.isreg():
        _replace_nondir(pfd, name)
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
            dir_fd=pfd,
        )  # fmt: skip
        try:
            src = tar.extractfile(m)
            assert src is not None
            while buf := src.read(_CHUNK):
                os.write(fd, buf)
            _member_meta(fd, m, keep_owner)
        finally:
            os.close(fd)
    elif m.issym():
        write_link(pfd, name, m.linkname, None, keep_owner=False)
        if keep_owner:
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
    elif m.islnk():
        # A hard link to an earlier member: its target is looked up the same safe way.
        tparts = split_member_name(m.linkname)
        if not tparts:
            raise CopyError(f"invalid hard link target {m.linkname!r}")
        tfd = open_parts(dest, tparts[:-1])
        try:
            _replace_nondir(pfd, name)
            os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)
    elif m.ischr() or m.isblk() or m.isfifo():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        _replace_nondir(pfd, name)
        os.mknod(name, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
