"""The union filesystem: pyfuse3 operations with overlayfs' semantics over real layers.

Model. Every object the kernel knows is a :class:`Node` with our own inode number, which
never changes while the mount lives (a copy-up changes the real file, not the node). A
node remembers its merged path(s) and the layer its top real object is in; directories
also keep the layers they merge. Real objects are looked up by (st_dev, st_ino) so two
names of one hard-linked file are one node, as in overlayfs.

Semantics follow Documentation/filesystems/overlayfs.rst with ``redirect_dir=off`` and
``index=off`` -- the options the overlay2 driver mounts with -- so the upper directory this
writes is the one kernel overlay would have written and either driver can mount it
afterwards:

* copy-up on the first write, truncate or open for writing (full copies, see
  :mod:`.copyup`); a chmod/chown/utimes or xattr change of a regular file copies up its
  metadata only, in the kernel's ``metacopy`` form, which is settled into a full copy
  before kernel overlay (mounted ``metacopy=off``) or a diff reads the upper dir (see
  :mod:`.metacopy` for why the store never keeps it); directories are copied up empty,
  parents first, and the parent's times are restored afterwards as overlay does;
* unlink/rmdir leave a 0/0 character-device whiteout when a lower layer still has the
  name; a directory created where a whiteout hid the name is made opaque;
* renaming a directory that has lower parts fails with EXDEV (what overlay does without
  redirect_dir; ``mv`` then copies); a pure-upper directory moved into a merged parent is
  made opaque first so lower entries of the new name stay hidden;
* ``trusted.overlay.*`` xattrs of the layers are hidden; a user's own ``trusted.overlay.X``
  is stored escaped as ``trusted.overlay.overlay.X`` (overlay's nesting rule since 6.7).

Concurrency: namespace changes and copy-ups run one at a time under one trio lock (they
are short, and ordering them keeps the node table consistent); data I/O, copy-up and
directory scans run in worker threads (``trio.to_thread``) so a slow disk never stalls
the loop. Single-inode metadata syscalls (lstat, xattr reads) stay on the loop: a worker
hand-off costs more than they do.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyfuse3
import trio
from pydock.fuse_union import copyup, metacopy
from pydock.fuse_union import stack as st_

#: Lower layers never change and this server is the upper layer's only writer, so the
#: kernel may keep names and attributes as long as it likes; changes made through the
#: mount update its caches through the replies themselves.
CACHE_TIMEOUT = 3600.0
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC
_PASS_FLAGS = os.O_ACCMODE | os.O_TRUNC | os.O_SYNC | os.O_DSYNC
ESCAPED_PREFIX = st_.PRIVATE_PREFIX + "overlay."

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _errors(fn: F) -> F:
    """Turn OSError into the FUSEError pyfuse3 replies with (same errno)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except OSError as e:
            raise pyfuse3.FUSEError(e.errno or errno.EIO) from None

    return wrapper  # type: ignore[return-value]


def _fail(code: int) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(code)


@dataclass(eq=False, slots=True)
class Node:
    ino: int
    paths: set[str]
    layer: int
    is_dir: bool
    key: tuple[int, int]
    dirlayers: list[int] = field(default_factory=list)
    lookups: int = 0
    deleted: bool = False
    fds: set[int] = field(default_factory=set)
    #: a metacopy file (see :mod:`.metacopy`): the lower file that still holds the data
    data: str | None = None
    #: bumped when the data moves (copy-up, completion): read handles then re-open
    datagen: int = 0
    #: kept while the node is lower only, which makes both immutable: the reply to
    #: lookup/getattr/readdirplus, and (directories) the merged listing
    attrs: pyfuse3.EntryAttributes | None = None
    listing: Listing | None = None

    @property
    def path(self) -> str:
        # The root is ""; any name of a hard-linked file reaches the same real object.
        for p in self.paths:
            return p
        raise pyfuse3.FUSEError(errno.ENOENT)  # every name is gone (open-but-unlinked)


class Listing:
    """One readdir snapshot, ready to reply: encoded names, nodes, attributes, offsets.

    ``lower`` says every entry was lower-only when it was taken and ``epoch`` is the
    filesystem's :attr:`UnionFS.epoch` then: while the epoch is unchanged no node has been
    copied up, changed layer, lost or changed a name or been dropped since, so the entries
    need no re-checking.
    """

    __slots__ = ("names", "nodes", "attrs", "offsets", "lower", "epoch", "_upper")

    def __init__(self, epoch: int, upper: int | None) -> None:
        self.names: list[bytes] = []
        self.nodes: list[Node] = []
        self.attrs: list[pyfuse3.EntryAttributes] = []
        self.offsets: list[int] = []
        self.lower = True
        self.epoch = epoch
        self._upper = upper

    def add(self, name: bytes, node: Node, attrs: pyfuse3.EntryAttributes) -> None:
        self.names.append(name)
        self.nodes.append(node)
        self.attrs.append(attrs)
        self.offsets.append(len(self.offsets) + 1)  # readdir's next_id: index + 1
        if node.layer == self._upper:
            self.lower = False


@dataclass(eq=False, slots=True)
class Handle:
    fd: int
    node: Node
    datagen: int
    writable: bool


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


class UnionFS(pyfuse3.Operations):
    """Overlay semantics over ``roots`` (top first); ``roots[0]`` is upper if ``writable``."""

    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, roots: list[str], work: str | None) -> None:
        super().__init__()
        self.roots = [os.path.abspath(r) for r in roots]
        self.work = work
        self.upper: int | None = 0 if work is not None else None
        self.nodes: dict[int, Node] = {}
        self.by_key: dict[tuple[int, int], int] = {}
        self.dirs: dict[str, int] = {}
        self.handles: dict[int, Handle | Listing | None] = {}
        self.dir_nodes: dict[int, Node] = {}
        self._next_ino = pyfuse3.ROOT_INODE + 1
        #: bumped whenever a node changes layer, loses or changes a name, or is dropped
        #: (see :class:`Listing`)
        self.epoch = 0
        self._next_fh = 1
        self._tmp = 0
        self.lock = trio.Lock()
        self._rbuf = bytearray(1 << 20)  # see read()
        self._rview = memoryview(self._rbuf)
        # False once a layer's filesystem refused RWF_NOWAIT reads (see read())
        self._nowait = True
        rst = os.lstat(self.roots[0])
        root = Node(
            pyfuse3.ROOT_INODE, {""}, 0, True, (rst.st_dev, rst.st_ino),
            st_.root_layers(self.roots),
        )  # fmt: skip
        root.lookups = 1
        self.nodes[root.ino] = root
        self.by_key[root.key] = root.ino
        self.dirs[""] = root.ino

    # -- node table ----------------------------------------------------------------------
    def _real(self, node: Node, path: str | None = None) -> str:
        return os.path.join(self.roots[node.layer], node.path if path is None else path)

    def _upper_path(self, rel: str) -> str:
        assert self.upper is not None
        return os.path.join(self.roots[self.upper], rel)

    def _node_for(self, rel: str, found: st_.Found) -> Node:
        key = (found.st.st_dev, found.st.st_ino)
        ino = self.by_key.get(key)
        node = self.nodes.get(ino) if ino is not None else None
        is_dir = found.is_dir
        if node is None or node.deleted or node.is_dir != is_dir:
            node = Node(self._next_ino, {rel}, found.layer, is_dir, key)
            self._next_ino += 1
            self.nodes[node.ino] = node
            self.by_key[key] = node.ino
        elif is_dir:
            if node.path != rel:
                self.dirs.pop(node.path, None)
                self.epoch += 1
            node.paths = {rel}
        else:
            node.paths.add(rel)
        if node.layer != found.layer:
            self.epoch += 1
            node.layer = found.layer
        if is_dir:
            node.dirlayers = list(found.dirlayers)
            self.dirs[rel] = node.ino
        else:
            node.data = self._metacopy_data(rel, found)
        return node

    def _metacopy_data(self, rel: str, found: st_.Found) -> str | None:
        """The lower data file of an upper metacopy file, else None (see :mod:`.metacopy`)."""
        if self.upper is None or found.layer != self.upper:
            return None
        if not metacopy.may_be_metacopy(found.st):
            return None
        real = self._upper_path(rel)
        if not metacopy.is_metacopy(real):
            return None
        data = metacopy.data_origin(self.roots[self.upper + 1 :], rel, real)
        if data is None:
            raise _fail(errno.EIO)  # the kernel too: "metacopy with no lower data found"
        return data

    def _data_real(self, node: Node) -> str:
        """Where the node's bytes are read from: the lower file while it is a metacopy."""
        return node.data if node.data is not None else self._real(node)

    def _rekey(self, node: Node, st: os.stat_result) -> None:
        if self.by_key.get(node.key) == node.ino:
            del self.by_key[node.key]
        node.key = (st.st_dev, st.st_ino)
        self.by_key[node.key] = node.ino

    def _drop(self, node: Node) -> None:
        node.deleted = True
        self.epoch += 1
        if self.by_key.get(node.key) == node.ino:
            del self.by_key[node.key]
        for p in node.paths if node.is_dir else ():
            if self.dirs.get(p) == node.ino:
                del self.dirs[p]
        node.paths.clear()
        if node.lookups <= 0 and not node.fds:
            self.nodes.pop(node.ino, None)

    def _attrs(self, node: Node, st: os.stat_result) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = node.ino
        a.generation = 0
        a.st_mode = st.st_mode
        # overlayfs reports 1 link for merged directories rather than count subdirectories
        a.st_nlink = 1 if node.is_dir and len(node.dirlayers) > 1 else st.st_nlink
        a.st_uid = st.st_uid
        a.st_gid = st.st_gid
        a.st_rdev = st.st_rdev
        a.st_size = st.st_size
        a.st_blksize = st.st_blksize
        a.st_blocks = st.st_blocks
        if node.data is not None:
            # the space the data takes is the lower file's, as overlay reports it
            with contextlib.suppress(OSError):
                a.st_blocks = os.lstat(node.data).st_blocks
        a.st_atime_ns = st.st_atime_ns
        a.st_mtime_ns = st.st_mtime_ns
        a.st_ctime_ns = st.st_ctime_ns
        a.entry_timeout = CACHE_TIMEOUT
        a.attr_timeout = CACHE_TIMEOUT
        return a

    def _lower_attrs(self, node: Node, st: os.stat_result) -> pyfuse3.EntryAttributes:
        """:meth:`_attrs`, built once for a lower-only node (a layer below the upper never
        changes; a copy-up moves the node to the upper layer, which ends the reuse)."""
        if node.layer == self.upper:
            return self._attrs(node, st)
        if node.attrs is None:
            node.attrs = self._attrs(node, st)
        return node.attrs

    def _stat(self, node: Node) -> os.stat_result:
        try:
            return os.lstat(self._real(node))
        except (FileNotFoundError, pyfuse3.FUSEError):
            for fd in node.fds:  # unlinked but still open
                return os.fstat(fd)
            raise _fail(errno.ENOENT) from None

    def _node(self, ino: int) -> Node:
        try:
            return self.nodes[ino]
        except KeyError:
            raise _fail(errno.ESTALE) from None

    def _resolve(self, parent: Node, name: str) -> st_.Lookup:
        return st_.lookup(self.roots, parent.dirlayers, _join(parent.path, name))

    def _writable(self) -> None:
        if self.upper is None:
            raise _fail(errno.EROFS)

    def _dir_node(self, rel: str) -> Node:
        ino = self.dirs.get(rel)
        if ino is not None and ino in self.nodes:
            return self.nodes[ino]
        parent = self._dir_node(os.path.dirname(rel))
        res = self._resolve(parent, os.path.basename(rel))
        if res.found is None or not res.found.is_dir:
            raise _fail(errno.ENOENT)
        return self._node_for(rel, res.found)

    # -- copy-up -------------------------------------------------------------------------
    def _tmpname(self) -> str:
        self._tmp += 1
        return f"#fu-{os.getpid()}-{self._tmp}"

    async def _upper_dir(self, rel: str) -> Node:
        """Make the directory ``rel`` exist in the upper layer (copying up its parents)."""
        node = self._dir_node(rel)
        if node.layer == self.upper:
            return node
        await self._upper_dir(os.path.dirname(rel))
        src, dst = self._real(node), self._upper_path(rel)
        parent_upper = os.path.dirname(dst)
        pst = os.lstat(parent_upper)
        await trio.to_thread.run_sync(copyup.copy_up_dir, src, dst)
        # overlay restores the parent's times after a copy-up: it is not a user change
        os.utime(parent_upper, ns=(pst.st_atime_ns, pst.st_mtime_ns))
        assert self.upper is not None
        node.layer = self.upper
        self.epoch += 1
        node.listing, node.attrs = None, None
        node.dirlayers.insert(0, self.upper)
        self._rekey(node, os.lstat(dst))
        return node

    async def _copy_up(
        self, node: Node, data_len: int | None = None, rel: str | None = None, *, meta: bool = False
    ) -> None:
        """Bring ``node`` up; with ``meta`` only its metadata if it is a regular file.

        A metadata-only copy-up leaves the data in the lower layer (:mod:`.metacopy`); the
        next copy-up without ``meta`` (a write, truncate, link or rename) completes it.
        """
        self._writable()
        if node.layer == self.upper:
            if node.data is not None and not meta:
                real = self._real(node)
                await trio.to_thread.run_sync(metacopy.complete, real, node.data, data_len)
                node.data = None
                node.datagen += 1
            return
        if node.is_dir:
            await self._upper_dir(node.path)
            return
        rel = node.path if rel is None else rel
        if not rel:
            raise _fail(errno.ESTALE)
        await self._upper_dir(os.path.dirname(rel))
        src, dst = self._real(node), self._upper_path(rel)
        assert self.work is not None
        parent_upper = os.path.dirname(dst)
        pst = os.lstat(parent_upper)
        sst = os.lstat(src)
        if meta and stat.S_ISREG(sst.st_mode) and sst.st_size > 0:
            # a handful of syscalls whatever the size: cheaper on the loop than a hop
            metacopy.make(src, dst, self.work, self._tmpname())
            node.data = src
        else:
            await trio.to_thread.run_sync(
                functools.partial(
                    copyup.copy_up, src, dst, self.work, self._tmpname(), data_len=data_len
                )
            )
            node.datagen += 1
        os.utime(parent_upper, ns=(pst.st_atime_ns, pst.st_mtime_ns))
        assert self.upper is not None
        node.layer = self.upper
        self.epoch += 1
        # Other names of a lower hard link stay lower (overlay with index=off breaks the
        # link on copy-up): drop the lower key so they become nodes of their own.
        node.paths = {rel}
        self._rekey(node, os.lstat(dst))

    # -- creating ------------------------------------------------------------------------
    async def _prepare_new(self, parent: Node, name: str) -> tuple[str, str, st_.Lookup]:
        """Checks and upper-dir work shared by every call that creates ``name``."""
        self._writable()
        rel = _join(parent.path, name)
        res = self._resolve(parent, name)
        if res.found is not None:
            raise _fail(errno.EEXIST)
        await self._upper_dir(parent.path)
        real = self._upper_path(rel)
        wst = st_.lstat_or_none(real)
        if wst is not None and st_.is_whiteout(wst):
            os.unlink(real)
            res.whiteout = True
        return rel, real, res

    def _owner(self, real: str, ctx: pyfuse3.RequestContext) -> tuple[int, int]:
        pst = os.lstat(os.path.dirname(real))
        gid = pst.st_gid if pst.st_mode & stat.S_ISGID else ctx.gid
        return ctx.uid, gid

    def _finish_new(
        self, rel: str, real: str, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        uid, gid = self._owner(real, ctx)
        os.chown(real, uid, gid, follow_symlinks=False)
        st = os.lstat(real)
        assert self.upper is not None
        found = st_.Found(self.upper, st, [self.upper] if stat.S_ISDIR(st.st_mode) else [])
        node = self._node_for(rel, found)
        node.lookups += 1
        return self._attrs(node, st)

    # -- pyfuse3 operations --------------------------------------------------------------
    @_errors
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:  # noqa: E501
        parent = self._node(parent_inode)
        sname = os.fsdecode(name)
        res = self._resolve(parent, sname)
        if res.found is None:
            raise _fail(errno.ENOENT)
        node = self._node_for(_join(parent.path, sname), res.found)
        node.lookups += 1
        return self._lower_attrs(node, res.found.st)

    async def forget(self, inode_list: list[tuple[int, int]]) -> None:
        for ino, n in inode_list:
            node = self.nodes.get(ino)
            if node is None or ino == pyfuse3.ROOT_INODE:
                continue
            node.lookups -= n
            if node.lookups <= 0 and node.deleted and not node.fds:
                del self.nodes[ino]

    @_errors
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        node = self._node(inode)
        if node.attrs is not None and node.layer != self.upper:
            return node.attrs
        return self._attrs(node, self._stat(node))

    @_errors
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        node = self._node(inode)
        h = self.handles.get(fh) if fh is not None else None
        async with self.lock:
            size = attr.st_size if fields.update_size else None
            if not isinstance(h, Handle) or not h.writable:
                await self._copy_up(node, data_len=size, meta=size is None)
            real = self._real(node)
            if fields.update_uid or fields.update_gid:
                uid = attr.st_uid if fields.update_uid else -1
                gid = attr.st_gid if fields.update_gid else -1
                os.chown(real, uid, gid, follow_symlinks=False)
            if fields.update_mode and not stat.S_ISLNK(attr.st_mode):
                os.chmod(real, stat.S_IMODE(attr.st_mode))
            if size is not None:
                if isinstance(h, Handle):
                    await trio.to_thread.run_sync(os.ftruncate, h.fd, size)
                else:
                    await trio.to_thread.run_sync(os.truncate, real, size)
            if fields.update_atime or fields.update_mtime:
                cur = self._stat(node)
                at = attr.st_atime_ns if fields.update_atime else cur.st_atime_ns
                mt = attr.st_mtime_ns if fields.update_mtime else cur.st_mtime_ns
                os.utime(real, ns=(at, mt), follow_symlinks=False)
            return self._attrs(node, self._stat(node))

    @_errors
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        return os.fsencode(os.readlink(self._real(self._node(inode))))

    @_errors
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:  # noqa: E501
        async with self.lock:
            rel, real, _ = await self._prepare_new(self._node(parent_inode), os.fsdecode(name))
            os.mknod(real, mode, rdev)
            return self._finish_new(rel, real, ctx)

    @_errors
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:  # noqa: E501
        async with self.lock:
            rel, real, res = await self._prepare_new(self._node(parent_inode), os.fsdecode(name))
            os.mkdir(real, mode)
            if res.whiteout:
                # lower entries of this name must stay hidden below the new directory
                os.setxattr(real, st_.OPAQUE_XATTR, b"y")
            return self._finish_new(rel, real, ctx)

    @_errors
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:  # noqa: E501
        async with self.lock:
            rel, real, _ = await self._prepare_new(self._node(parent_inode), os.fsdecode(name))
            os.symlink(os.fsdecode(target), real)
            return self._finish_new(rel, real, ctx)

    @_errors
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:  # noqa: E501
        async with self.lock:
            rel, real, _ = await self._prepare_new(self._node(parent_inode), os.fsdecode(name))
            fd = os.open(real, (flags & _PASS_FLAGS) | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            try:
                attrs = self._finish_new(rel, real, ctx)
            except BaseException:
                os.close(fd)
                raise
            node = self.nodes[attrs.st_ino]
            fh = self._add_handle(Handle(fd, node, node.datagen, True))
            return pyfuse3.FileInfo(fh=fh, keep_cache=False), attrs

    @_errors
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:  # noqa: E501
        node = self._node(inode)
        async with self.lock:
            parent = self._node(new_parent_inode)
            sname = os.fsdecode(new_name)
            self._writable()
            if self._resolve(parent, sname).found is not None:
                raise _fail(errno.EEXIST)
            await self._copy_up(node)
            rel, real, _ = await self._prepare_new(parent, sname)
            os.link(self._real(node), real)
            node.paths.add(rel)
            node.lookups += 1
            return self._attrs(node, os.lstat(real))

    @_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        async with self.lock:
            await self._remove(self._node(parent_inode), os.fsdecode(name), is_dir=False)

    @_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        async with self.lock:
            await self._remove(self._node(parent_inode), os.fsdecode(name), is_dir=True)

    async def _remove(self, parent: Node, name: str, *, is_dir: bool) -> None:
        self._writable()
        res = self._resolve(parent, name)
        found = res.found
        if found is None:
            raise _fail(errno.ENOENT)
        if found.is_dir != is_dir:
            raise _fail(errno.EISDIR if found.is_dir else errno.ENOTDIR)
        rel = _join(parent.path, name)
        if is_dir:
            entries = await trio.to_thread.run_sync(
                st_.merged_entries, self.roots, found.dirlayers, rel
            )
            if entries:
                raise _fail(errno.ENOTEMPTY)
        await self._upper_dir(parent.path)
        assert self.upper is not None
        real = self._upper_path(rel)
        last_name = True
        if found.layer == self.upper:
            if is_dir:
                # empty in the merged view: only whiteouts can be left in it
                await trio.to_thread.run_sync(shutil.rmtree, real)
            else:
                last_name = os.lstat(real).st_nlink <= 1
                os.unlink(real)
        if st_.lower_has(self.roots, parent.dirlayers, rel, self.upper):
            os.mknod(real, stat.S_IFCHR, 0)
        ino = self.by_key.get((found.st.st_dev, found.st.st_ino))
        node = self.nodes.get(ino) if ino is not None else None
        if node is not None:
            if is_dir or (last_name and found.layer == self.upper):
                self._drop(node)
            else:
                node.paths.discard(rel)
                self.epoch += 1

    @_errors
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:  # noqa: E501
        async with self.lock:
            await self._rename(
                self._node(parent_inode_old), os.fsdecode(name_old),
                self._node(parent_inode_new), os.fsdecode(name_new), flags,
            )  # fmt: skip

    def _movable(self, found: st_.Found) -> None:
        """Without redirect_dir overlay cannot move a directory that has lower parts."""
        if found.is_dir and (found.layer != self.upper or len(found.dirlayers) > 1):
            raise _fail(errno.EXDEV)

    def _node_of(self, rel: str, found: st_.Found) -> Node:
        ino = self.by_key.get((found.st.st_dev, found.st.st_ino))
        node = self.nodes.get(ino) if ino is not None else None
        if node is None:
            node = self._node_for(rel, found)
        node.paths.add(rel)
        return node

    async def _rename(self, op: Node, old: str, np_: Node, new: str, flags: int) -> None:
        self._writable()
        # overlay accepts these two and refuses RENAME_WHITEOUT from its users (EINVAL); the
        # VFS already refused NOREPLACE|EXCHANGE together and EXCHANGE with a missing target
        if flags & ~(pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE):
            raise _fail(errno.EINVAL)
        if flags & pyfuse3.RENAME_EXCHANGE:
            await self._exchange(op, old, np_, new)
            return
        src = self._resolve(op, old).found
        if src is None:
            raise _fail(errno.ENOENT)
        assert self.upper is not None
        self._movable(src)
        old_rel, new_rel = _join(op.path, old), _join(np_.path, new)
        dres = self._resolve(np_, new)
        dst = dres.found
        if dst is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise _fail(errno.EEXIST)
            if (dst.st.st_dev, dst.st.st_ino) == (src.st.st_dev, src.st.st_ino):
                return  # two names of one file: rename(2) does nothing
            if src.is_dir and not dst.is_dir:
                raise _fail(errno.ENOTDIR)
            if dst.is_dir and not src.is_dir:
                raise _fail(errno.EISDIR)
            if dst.is_dir:
                entries = await trio.to_thread.run_sync(
                    st_.merged_entries, self.roots, dst.dirlayers, new_rel
                )
                if entries:
                    raise _fail(errno.ENOTEMPTY)
        src_node = self._node_of(old_rel, src)
        if not src.is_dir:
            await self._copy_up(src_node, rel=old_rel)
        await self._upper_dir(op.path)
        await self._upper_dir(np_.path)
        src_real, dst_real = self._upper_path(old_rel), self._upper_path(new_rel)
        dst_upper = st_.lstat_or_none(dst_real)
        if dst_upper is not None and (
            st_.is_whiteout(dst_upper) or (stat.S_ISDIR(dst_upper.st_mode) and dst is not None)
        ):
            if stat.S_ISDIR(dst_upper.st_mode):
                await trio.to_thread.run_sync(shutil.rmtree, dst_real)  # whiteouts only
            elif src.is_dir:
                os.unlink(dst_real)  # a directory cannot replace a device node by rename
        if src.is_dir and not st_.is_opaque(src_real) and len(np_.dirlayers) > 1:
            # moved into a merged directory: lower entries of the new name stay hidden
            os.setxattr(src_real, st_.OPAQUE_XATTR, b"y")
        os.rename(src_real, dst_real)
        if st_.lower_has(self.roots, op.dirlayers, old_rel, self.upper):
            os.mknod(src_real, stat.S_IFCHR, 0)
        if dst is not None:
            dino = self.by_key.get((dst.st.st_dev, dst.st.st_ino))
            dnode = self.nodes.get(dino) if dino is not None else None
            if dnode is not None and dnode is not src_node:
                if dst.is_dir or dst.st.st_nlink <= 1 or dst.layer != self.upper:
                    self._drop(dnode)
                else:
                    dnode.paths.discard(new_rel)
                    self.epoch += 1
        self._moved(src_node, old_rel, new_rel)

    async def _exchange(self, op: Node, old: str, np_: Node, new: str) -> None:
        """renameat2(RENAME_EXCHANGE): both names stay taken, so no whiteout is needed.

        As overlay does it: both objects must be movable (EXDEV for a directory with lower
        parts), both are copied up (a metacopy is completed), the swap is one
        RENAME_EXCHANGE in the upper layer, and a pure-upper directory that lands in a
        merged parent is made opaque first so lower entries of its new name stay hidden.
        """
        src = self._resolve(op, old).found
        dst = self._resolve(np_, new).found
        if src is None or dst is None:
            raise _fail(errno.ENOENT)
        self._movable(src)
        self._movable(dst)
        old_rel, new_rel = _join(op.path, old), _join(np_.path, new)
        if (dst.st.st_dev, dst.st.st_ino) == (src.st.st_dev, src.st.st_ino):
            return  # two names of one file
        src_node = self._node_of(old_rel, src)
        await self._copy_up(src_node, rel=old_rel)
        await self._upper_dir(np_.path)
        dst_node = self._node_of(new_rel, dst)
        await self._copy_up(dst_node, rel=new_rel)
        src_real, dst_real = self._upper_path(old_rel), self._upper_path(new_rel)
        if src.is_dir and not st_.is_opaque(src_real) and len(np_.dirlayers) > 1:
            os.setxattr(src_real, st_.OPAQUE_XATTR, b"y")
        if dst.is_dir and not st_.is_opaque(dst_real) and len(op.dirlayers) > 1:
            os.setxattr(dst_real, st_.OPAQUE_XATTR, b"y")
        copyup.rename_exchange(src_real, dst_real)
        swap = "\0exchange"  # no real path has a NUL in it
        self._moved(src_node, old_rel, swap)
        self._moved(dst_node, new_rel, old_rel)
        self._moved(src_node, swap, new_rel)

    def _moved(self, node: Node, old: str, new: str) -> None:
        self.epoch += 1
        node.paths = {new if p == old else p for p in node.paths}
        if not node.is_dir:
            return
        self.dirs.pop(old, None)
        self.dirs[new] = node.ino
        prefix = old + "/"
        for other in self.nodes.values():
            if any(p.startswith(prefix) for p in other.paths):
                newpaths = {new + p[len(old) :] if p.startswith(prefix) else p for p in other.paths}
                if other.is_dir:
                    self.dirs.pop(other.path, None)
                    other.paths = newpaths
                    self.dirs[other.path] = other.ino
                else:
                    other.paths = newpaths

    # -- files ---------------------------------------------------------------------------
    def _add_handle(self, h: Handle) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = h
        h.node.fds.add(h.fd)
        return fh

    @_errors
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        node = self._node(inode)
        writable = bool(flags & _WRITE_FLAGS)
        if writable:
            async with self.lock:
                await self._copy_up(node, data_len=0 if flags & os.O_TRUNC else None)
        real = self._data_real(node)
        fd = await trio.to_thread.run_sync(
            os.open, real, (flags & _PASS_FLAGS) | os.O_CLOEXEC | os.O_NOFOLLOW
        )
        fh = self._add_handle(Handle(fd, node, node.datagen, writable))
        # page cache may outlive the open only while the data cannot change under it (a
        # completed metacopy holds the same bytes, so its pages stay right too)
        keep = node.layer != self.upper or node.data is not None
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep)

    def _handle(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if not isinstance(h, Handle):
            raise _fail(errno.EBADF)
        return h

    @_errors
    async def read(self, fh: int, off: int, size: int) -> bytes | memoryview:
        h = self._handle(fh)
        if h.datagen != h.node.datagen:
            # data copied up since this read-only open: read the copy writers now change
            fd = os.open(self._data_real(h.node), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            h.node.fds.discard(h.fd)
            os.close(h.fd)
            h.fd, h.datagen = fd, h.node.datagen
            h.node.fds.add(fd)
        # Served on the loop when the page cache already holds it (RWF_NOWAIT never
        # blocks; readahead of earlier reads makes that the common case), otherwise in a
        # worker thread: the thread hop would double the cost of a cached read.
        #
        # The loop path reads into one buffer kept for the server's life and replies with
        # a view of it: pyfuse3 takes any buffer and copies it to /dev/fuse before any other
        # task runs (nothing is awaited between this return and its reply), so no request
        # can see another's bytes. That saves a copy and the page faults of a fresh
        # buffer per request -- most of the cost of a read besides the two copies in and out
        # of the kernel, which only FUSE passthrough (libfuse >= 3.16) would remove.
        #
        # A filesystem without FMODE_NOWAIT refuses RWF_NOWAIT with EOPNOTSUPP
        # (preadv2(2)): tmpfs before Linux 6.6, as on Debian 12's 6.1, where every exec
        # failed "Operation not supported". Found by trying, then the thread path serves.
        if self._nowait:
            if size > len(self._rbuf):
                self._rbuf = bytearray(size)
                self._rview = memoryview(self._rbuf)
            view = self._rview[:size]
            try:
                n = os.preadv(h.fd, [view], off, os.RWF_NOWAIT)
                if n == size:
                    return view
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno != errno.EOPNOTSUPP:
                    raise
                self._nowait = False
        return await trio.to_thread.run_sync(os.pread, h.fd, size, off)

    @_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        h = self._handle(fh)
        return await trio.to_thread.run_sync(os.pwrite, h.fd, buf, off)

    async def flush(self, fh: int) -> None:
        return None

    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if isinstance(h, Handle):
            h.node.fds.discard(h.fd)
            os.close(h.fd)
            if h.node.deleted and h.node.lookups <= 0 and not h.node.fds:
                self.nodes.pop(h.node.ino, None)

    @_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        h = self._handle(fh)
        await trio.to_thread.run_sync(os.fdatasync if datasync else os.fsync, h.fd)

    # -- directories ---------------------------------------------------------------------
    # opendir/readdir/releasedir run for every directory a `find` walks, so they skip the
    # @_errors wrapper (one more coroutine per request): only the scan can raise OSError.
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        node = self.nodes.get(inode)
        if node is None:
            raise _fail(errno.ESTALE)
        fh = self._next_fh
        self._next_fh = fh + 1
        self.handles[fh] = None
        self.dir_nodes[fh] = node
        return fh

    async def _listing(self, node: Node) -> Listing:
        """The snapshot an open replies from. A lower-only directory cannot change at all,
        so its snapshot is kept on the node and a later open replies from it without
        touching the disk (the warm `find` case: no scandir, no lstat, no node lookups)."""
        lower_only = node.layer != self.upper
        if lower_only and node.listing is not None:
            return node.listing
        try:
            entries = await trio.to_thread.run_sync(
                st_.merged_entries, self.roots, list(node.dirlayers), node.path
            )
        except OSError as e:
            raise pyfuse3.FUSEError(e.errno or errno.EIO) from None
        path = node.path
        listing = Listing(self.epoch, self.upper)
        for e in entries:
            child = self._node_for(_join(path, e.name), e.found)
            listing.add(e.bname, child, self._lower_attrs(child, e.found.st))
        listing.epoch = self.epoch  # _node_for may have bumped it
        if lower_only and node.layer != self.upper:  # not copied up meanwhile
            node.listing = listing
        return listing

    def _still_lower(self, node: Node, listing: Listing) -> bool:
        """Is every entry of a lower snapshot still a lower node under that name? Then it is
        as good as one taken now (lower attributes never change): stamp it with today's
        epoch, so changes elsewhere in the mount do not keep it on the per-entry path."""
        up = self.upper
        try:
            path = node.path
        except pyfuse3.FUSEError:
            path = None  # the directory itself is gone
        if path is not None and all(
            not c.deleted and c.layer != up and _join(path, os.fsdecode(n)) in c.paths
            for n, c in zip(listing.names, listing.nodes, strict=True)
        ):
            listing.epoch = self.epoch
            return True
        listing.lower = False
        return False

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        node = self.dir_nodes[fh]
        listing = self.handles.get(fh)
        if not isinstance(listing, Listing):
            # one snapshot per open: offsets stay valid however the directory changes
            listing = self.handles[fh] = await self._listing(node)
        if start_id >= len(listing.offsets):
            return
        if listing.lower and (listing.epoch == self.epoch or self._still_lower(node, listing)):
            # Nothing in it changed since the snapshot: the per-entry loop below would
            # reply every entry as it is, so reply them in one C-level loop (map stops
            # at the first entry that does not fit) and count the lookups after.
            s = slice(start_id, None)
            replied = len(
                list(
                    itertools.takewhile(
                        bool,
                        map(
                            pyfuse3.readdir_reply,
                            itertools.repeat(token),
                            listing.names[s],
                            listing.attrs[s],
                            listing.offsets[s],
                        ),
                    )
                )
            )
            for child in listing.nodes[start_id : start_id + replied]:
                child.lookups += 1
            return
        try:
            path = node.path
        except pyfuse3.FUSEError:
            return  # the directory itself was removed: nothing is left in it
        reply = pyfuse3.readdir_reply
        for i in range(start_id, len(listing.offsets)):
            child, attrs = listing.nodes[i], listing.attrs[i]
            if child.deleted or _join(path, os.fsdecode(listing.names[i])) not in child.paths:
                # removed or renamed since the snapshot: replied, readdirplus would give
                # the kernel a dentry for a name that no longer exists
                continue
            if child.layer == self.upper:
                # changeable (and maybe changed since the snapshot): readdirplus
                # attributes overwrite the kernel's, so they must be today's
                try:
                    attrs = self._attrs(child, self._stat(child))
                except (OSError, pyfuse3.FUSEError):
                    continue
            if not reply(token, listing.names[i], attrs, i + 1):
                break
            child.lookups += 1

    async def releasedir(self, fh: int) -> None:
        self.handles.pop(fh, None)
        self.dir_nodes.pop(fh, None)

    @_errors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        node = self.dir_nodes[fh]
        if self.upper is None or node.layer != self.upper:
            return
        fd = os.open(self._real(node), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            await trio.to_thread.run_sync(os.fsync, fd)
        finally:
            os.close(fd)

    # -- xattrs --------------------------------------------------------------------------
    @staticmethod
    def _to_real_xattr(name: str) -> str:
        if name.startswith(st_.PRIVATE_PREFIX):
            return st_.PRIVATE_PREFIX + "overlay." + name[len(st_.PRIVATE_PREFIX) :]
        return name

    @_errors
    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:  # noqa: E501
        # XATTR_CREATE/XATTR_REPLACE never reach us: pyfuse3 (3.5) keeps the flags and
        # checks them itself with a getxattr call before this one (EEXIST / ENODATA, as
        # the kernel answers). That check and this set are two requests' worth of work
        # apart, so two racing XATTR_CREATEs of one name can both succeed; passing the
        # flags on to os.setxattr would close that, and needs pyfuse3 to hand them over.
        node = self._node(inode)
        async with self.lock:
            await self._copy_up(node, meta=True)
            real_name = self._to_real_xattr(os.fsdecode(name))
            os.setxattr(self._real(node), real_name, value, follow_symlinks=False)

    @_errors
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        node = self._node(inode)
        real_name = self._to_real_xattr(os.fsdecode(name))
        try:
            return os.getxattr(self._real(node), real_name, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ENODATA:
                raise _fail(pyfuse3.ENOATTR) from None
            raise

    @_errors
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        node = self._node(inode)
        out = []
        for n in os.listxattr(self._real(node), follow_symlinks=False):
            if n.startswith(ESCAPED_PREFIX):
                out.append(st_.PRIVATE_PREFIX + n[len(ESCAPED_PREFIX) :])
            elif not n.startswith(st_.PRIVATE_PREFIX):
                out.append(n)
        return [os.fsencode(n) for n in out]

    @_errors
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        node = self._node(inode)
        real_name = self._to_real_xattr(os.fsdecode(name))
        # overlay checks the name exists before copying anything up
        try:
            os.getxattr(self._real(node), real_name, follow_symlinks=False)
        except OSError as e:
            raise _fail(pyfuse3.ENOATTR if e.errno == errno.ENODATA else e.errno) from None
        async with self.lock:
            await self._copy_up(node, meta=True)
            os.removexattr(self._real(node), real_name, follow_symlinks=False)

    # -- the rest --------------------------------------------------------------------------
    @_errors
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        s = os.statvfs(self.roots[0])
        out = pyfuse3.StatvfsData()
        out.f_bsize, out.f_frsize = s.f_bsize, s.f_frsize
        out.f_blocks, out.f_bfree, out.f_bavail = s.f_blocks, s.f_bfree, s.f_bavail
        out.f_files, out.f_ffree, out.f_favail = s.f_files, s.f_ffree, s.f_favail
        out.f_namemax = s.f_namemax
        return out

    @_errors
    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        # Only asked without default_permissions; answer as the VFS would for the caller.
        st = self._stat(self._node(inode))
        if mode == os.F_OK:
            return True
        if ctx.uid == 0:
            return not (mode & os.X_OK) or bool(st.st_mode & 0o111) or stat.S_ISDIR(st.st_mode)
        shift = 6 if st.st_uid == ctx.uid else 3 if st.st_gid == ctx.gid else 0
        return (st.st_mode >> shift) & mode == mode
