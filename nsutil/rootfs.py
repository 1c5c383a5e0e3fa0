"""Build the container's filesystem view from an OCI spec, inside its new mount namespace.

Runs in the container's init process after unshare(CLONE_NEWNS) and before exec; every mount
made here lives only in that namespace and disappears with it. The order follows the
runtime spec (config.md "Mounts", config-linux.md "Rootfs Mount Propagation", "Masked
Paths", "Readonly Paths") and what runc does in practice:

  propagation of "/" -> bind root onto itself -> spec mounts in order -> /dev nodes and
  symlinks -> pivot_root -> sysctls -> cwd -> masked paths -> read-only paths -> ro root

Mount targets are resolved *inside* the rootfs: a symlink in the image that points to
"/etc" means "<rootfs>/etc", never the host's /etc, and the final target is opened with
O_PATH|O_NOFOLLOW and mounted through /proc/self/fd so nothing can be swapped in between.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydock.nsutil import syscalls as sc

L = sc.lib

# mount(8) option word -> (clears the flag?, MS_* flag). Anything not listed here (and not a
# propagation or recursive word below) is filesystem data, e.g. "mode=755", "size=64m".
_FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, L.MS_RDONLY),
    "rw": (True, L.MS_RDONLY),
    "nosuid": (False, L.MS_NOSUID),
    "suid": (True, L.MS_NOSUID),
    "nodev": (False, L.MS_NODEV),
    "dev": (True, L.MS_NODEV),
    "noexec": (False, L.MS_NOEXEC),
    "exec": (True, L.MS_NOEXEC),
    "sync": (False, L.MS_SYNCHRONOUS),
    "async": (True, L.MS_SYNCHRONOUS),
    "dirsync": (False, L.MS_DIRSYNC),
    "remount": (False, L.MS_REMOUNT),
    "mand": (False, L.MS_MANDLOCK),
    "nomand": (True, L.MS_MANDLOCK),
    "atime": (True, L.MS_NOATIME),
    "noatime": (False, L.MS_NOATIME),
    "diratime": (True, L.MS_NODIRATIME),
    "nodiratime": (False, L.MS_NODIRATIME),
    "relatime": (False, L.MS_RELATIME),
    "norelatime": (True, L.MS_RELATIME),
    "strictatime": (False, L.MS_STRICTATIME),
    "nostrictatime": (True, L.MS_STRICTATIME),
    "lazytime": (False, L.MS_LAZYTIME),
    "nolazytime": (True, L.MS_LAZYTIME),
    "iversion": (False, L.MS_I_VERSION),
    "noiversion": (True, L.MS_I_VERSION),
    "nosymfollow": (False, L.MS_NOSYMFOLLOW),
    "symfollow": (True, L.MS_NOSYMFOLLOW),
    "bind": (False, L.MS_BIND),
    "rbind": (False, L.MS_BIND | L.MS_REC),
}

PROPAGATION: dict[str, int] = {
    "private": L.MS_PRIVATE,
    "rprivate": L.MS_PRIVATE | L.MS_REC,
    "shared": L.MS_SHARED,
    "rshared": L.MS_SHARED | L.MS_REC,
    "slave": L.MS_SLAVE,
    "rslave": L.MS_SLAVE | L.MS_REC,
    "unbindable": L.MS_UNBINDABLE,
    "runbindable": L.MS_UNBINDABLE | L.MS_REC,
}

# Recursive per-mount attributes (runc's "rro", "rnosuid", ...; applied with mount_setattr
# and AT_RECURSIVE, Linux >= 5.12): word -> (clears?, MOUNT_ATTR_*).
_RECURSIVE: dict[str, tuple[bool, int]] = {
    "rro": (False, L.MOUNT_ATTR_RDONLY),
    "rrw": (True, L.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, L.MOUNT_ATTR_NOSUID),
    "rsuid": (True, L.MOUNT_ATTR_NOSUID),
    "rnodev": (False, L.MOUNT_ATTR_NODEV),
    "rdev": (True, L.MOUNT_ATTR_NODEV),
    "rnoexec": (False, L.MOUNT_ATTR_NOEXEC),
    "rexec": (True, L.MOUNT_ATTR_NOEXEC),
    "rnosymfollow": (False, L.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, L.MOUNT_ATTR_NOSYMFOLLOW),
}

# MS_* per-mount flags that a bind mount ignores on creation and mount_setattr can set.
_MS_TO_ATTR = {
    L.MS_RDONLY: L.MOUNT_ATTR_RDONLY,
    L.MS_NOSUID: L.MOUNT_ATTR_NOSUID,
    L.MS_NODEV: L.MOUNT_ATTR_NODEV,
    L.MS_NOEXEC: L.MOUNT_ATTR_NOEXEC,
    L.MS_NOSYMFOLLOW: L.MOUNT_ATTR_NOSYMFOLLOW,
    L.MS_NODIRATIME: L.MOUNT_ATTR_NODIRATIME,
}
_MS_ATIME = {
    L.MS_NOATIME: L.MOUNT_ATTR_NOATIME,
    L.MS_STRICTATIME: L.MOUNT_ATTR_STRICTATIME,
    L.MS_RELATIME: L.MOUNT_ATTR_RELATIME,
}

# The device nodes every container gets on a tmpfs /dev (OCI config-linux.md "Default
# Devices"): name -> (major, minor).
DEFAULT_DEVICES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
DEFAULT_SYMLINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}

_MAX_SYMLINKS = 255


class MountOptions:
    """An OCI mount's ``options`` split the way mount(8) would (a plain class: start path)."""

    __slots__ = ("flags", "clear", "propagation", "rec_set", "rec_clr", "data")

    def __init__(self) -> None:
        self.flags = 0  # MS_* to set
        self.clear = 0  # MS_* explicitly cleared ("rw", "suid", ...)
        self.propagation: list[int] = []
        self.rec_set = 0  # MOUNT_ATTR_* to set recursively
        self.rec_clr = 0
        self.data: list[str] = []

    @property
    def data_str(self) -> str | None:
        return ",".join(self.data) or None


def parse_options(options: list[str] | None) -> MountOptions:
    out = MountOptions()
    for word in options or []:
        if word in _FLAGS:
            clears, flag = _FLAGS[word]
            if clears:
                out.flags &= ~flag
                out.clear |= flag
            else:
                out.flags |= flag
                out.clear &= ~flag
        elif word in PROPAGATION:
            out.propagation.append(PROPAGATION[word])
        elif word in _RECURSIVE:
            clears, attr = _RECURSIVE[word]
            if clears:
                out.rec_clr |= attr
            else:
                out.rec_set |= attr
        else:
            out.data.append(word)
    return out


def secure_join(root: str, unsafe: str) -> str:
    """Resolve ``unsafe`` as if ``root`` were "/", following symlinks without leaving root.

    Absolute link targets restart at root and ".." stops at root, so the result is always
    root itself or below it. Components that do not exist yet are taken literally (the caller
    creates them).
    """
    todo = [p for p in reversed(unsafe.split("/")) if p]
    resolved: list[str] = []
    links = 0
    while todo:
        comp = todo.pop()
        if comp == ".":
            continue
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        current = os.path.join(root, *resolved, comp)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            resolved.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                raise OSError(errno.ELOOP, f"resolve {unsafe} in rootfs: too many symlinks", unsafe)
            target = os.readlink(current)
            if target.startswith("/"):
                resolved = []
            todo.extend(p for p in reversed(target.split("/")) if p)
            continue
        resolved.append(comp)
    return os.path.join(root, *resolved)


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def prepare_target(root: str, dest: str, directory: bool = True) -> str:
    """Resolve mount destination ``dest`` inside ``root`` and create it (dir or empty file)."""
    path = secure_join(root, dest)
    if directory:
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        if not os.path.lexists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
    return path


@contextmanager
def _pinned(root: str, path: str) -> Iterator[str]:
    """A /proc/self/fd path for ``path``, opened without following a final symlink and
    checked to still lie inside ``root``: mount(2) through it cannot be redirected."""
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        if not _inside(root, real):
            raise OSError(errno.EXDEV, f"mount target {path} escapes the rootfs ({real})", path)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _attrs_from_flags(flags: int, clear: int) -> tuple[int, int]:
    """MS_* flags to (attr_set, attr_clr) for mount_setattr."""
    attr_set = attr_clr = 0
    for ms, attr in _MS_TO_ATTR.items():
        if flags & ms:
            attr_set |= attr
        elif clear & ms:
            attr_clr |= attr
    for ms, attr in _MS_ATIME.items():
        if flags & ms:
            attr_clr |= L.MOUNT_ATTR__ATIME  # the atime mode is one field, replace it whole
            attr_set |= attr
    return attr_set, attr_clr


def set_attrs(path: str, attr_set: int, attr_clr: int = 0, recursive: bool = False) -> None:
    """Change per-mount flags of the mount at ``path`` (a bind remount, done right).

    MS_BIND ignores MS_RDONLY & co. when the mount is created (mount(2)), so bind mounts get
    their flags in a second step; mount_setattr changes only the named bits.
    """
    if not attr_set and not attr_clr:
        return
    sc.mount_setattr(
        L.AT_FDCWD,
        path,
        L.AT_RECURSIVE if recursive else 0,
        attr_set=attr_set,
        attr_clr=attr_clr,
    )


def _set_propagation(path: str, opts: MountOptions) -> None:
    for prop in opts.propagation:
        sc.mount(None, path, None, prop)


def _parse_mountinfo() -> list[tuple[str, str, str, str, str]]:
    """(mount point, fstype, source, super options, root) of each line of
    /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mnt = fields[4].replace("\\040", " ")
            out.append((mnt, fields[sep + 1], fields[sep + 2], fields[sep + 3], fields[3]))
    return out


def _controllers(fstype: str, superopts: str) -> frozenset[str]:
    """The key a hierarchy has in /proc/self/cgroup: its controllers and name= (v1), or
    nothing (cgroup2's "0::" line)."""
    if fstype == "cgroup2":
        return frozenset()
    flags = {"rw", "ro", "noprefix", "xattr", "clone_children", "cpuset_v2_mode",
             "favordynmods", "nsdelegate"}  # fmt: skip
    return frozenset(o for o in superopts.split(",")
                     if o not in flags and not o.startswith("release_agent="))  # fmt: skip


def _own_cgroups() -> dict[frozenset[str], str]:
    """This process's cgroup per hierarchy, keyed as _controllers() keys them."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _hid, ctrls, path = line.rstrip("\n").split(":", 2)
            out[frozenset(c for c in ctrls.split(",") if c)] = path
    return out


def _mount_cgroup(root: str, target: str, opts: MountOptions, cgroupns: bool) -> None:
    """Mount type "cgroup": the container's own cgroups, as runc lays them out.

    A pure v2 host gets one cgroup2 mount (rooted at the container's cgroup when it has a
    cgroup namespace, the whole tree with --cgroupns host, as runc mounts it). v1/hybrid
    hosts get a tmpfs holding one directory per hierarchy the host has under
    /sys/fs/cgroup, plus its alias symlinks (cpu -> cpu,cpuacct). With a cgroup namespace
    each is a fresh mount of the hierarchy (same controllers: the same hierarchy, rooted
    at the namespace); without one (Docker's default on v1) each is a bind mount of the
    container's own directory in it, found from /proc/self/cgroup. Either way this runs
    once the process is in its cgroups, before pivot_root (the host's mounts are the
    sources).
    """
    flags = opts.flags & ~(L.MS_BIND | L.MS_REC)
    mounts = _parse_mountinfo()
    top = [m for m in mounts if m[0] == "/sys/fs/cgroup"]
    if top and top[-1][1] == "cgroup2":
        with _pinned(root, target) as t:
            sc.mount("cgroup2", t, "cgroup2", flags)
        return
    own = {} if cgroupns else _own_cgroups()
    with _pinned(root, target) as t:
        sc.mount("tmpfs", t, "tmpfs", flags & ~L.MS_RDONLY, "mode=755")
    for mnt, fstype, _src, superopts, mroot in mounts:
        if fstype not in ("cgroup", "cgroup2") or os.path.dirname(mnt) != "/sys/fs/cgroup":
            continue
        sub = os.path.join(target, os.path.basename(mnt))
        os.makedirs(sub, exist_ok=True)
        if not cgroupns:
            path = own.get(_controllers(fstype, superopts))
            if path is None:
                continue  # a hierarchy this process is not in (none on a sane host)
            # /proc/self/cgroup paths are from the hierarchy's root; the mount may show a
            # sub-cgroup of it (a bind, as inside another container)
            rel = os.path.relpath(path, mroot) if mroot != "/" else path.lstrip("/")
            sc.mount(os.path.normpath(os.path.join(mnt, rel)), sub, None, L.MS_BIND)
            set_attrs(sub, *_attrs_from_flags(flags, 0))
        elif fstype == "cgroup2":
            sc.mount("cgroup2", sub, "cgroup2", flags)
        else:
            data = ",".join(o for o in superopts.split(",") if o not in ("rw", "ro"))
            sc.mount("cgroup", sub, "cgroup", flags, data)
    for entry in os.scandir("/sys/fs/cgroup"):
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), os.path.join(target, entry.name))
    if flags & L.MS_RDONLY:
        set_attrs(target, L.MOUNT_ATTR_RDONLY)


def mount_entry(root: str, m: dict, cgroupns: bool = True) -> None:
    """Perform one entry of the spec's ``mounts`` below ``root`` (before pivot_root);
    ``cgroupns``: whether the caller has its own cgroup namespace."""
    dest = m.get("destination")
    if not dest or not dest.startswith("/"):
        raise ValueError(f"mount destination must be absolute: {dest!r}")
    try:
        _mount_entry(root, dest, m, cgroupns)
    except OSError as e:
        what = m.get("type") or "bind"
        if e.strerror and "/proc/self/fd/" not in e.strerror:
            msg = f"mount {what} on {dest}: {e.strerror}"
        else:  # the pinned fd path means nothing to the user; name the destination
            msg = f"mount {what} on {dest}: {os.strerror(e.errno or 0)}"
        raise OSError(e.errno, msg, dest) from None


def _mount_entry(root: str, dest: str, m: dict, cgroupns: bool) -> None:
    opts = parse_options(m.get("options"))
    fstype = m.get("type") or None
    source = m.get("source")
    if fstype == "bind" or opts.flags & L.MS_BIND:
        if not source:
            raise ValueError(f"bind mount {dest} has no source")
        try:
            src_is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        except OSError as e:
            raise OSError(e.errno, f"bind source {source}: {e.strerror}", source) from None
        target = prepare_target(root, dest, src_is_dir)
        with _pinned(root, target) as t:
            sc.mount(source, t, None, L.MS_BIND | (opts.flags & L.MS_REC))
        attr_set, attr_clr = _attrs_from_flags(opts.flags, opts.clear)
        set_attrs(target, attr_set, attr_clr)
    else:
        target = prepare_target(root, dest, True)
        if fstype == "cgroup":
            _mount_cgroup(root, target, opts, cgroupns)
        else:
            with _pinned(root, target) as t:
                sc.mount(source or fstype, t, fstype, opts.flags, opts.data_str)
    _set_propagation(target, opts)
    if opts.rec_set or opts.rec_clr:
        set_attrs(target, opts.rec_set, opts.rec_clr, recursive=True)


def _mknod(path: str, kind: str, major: int, minor: int, mode: int, uid: int, gid: int) -> None:
    if kind not in _DEVICE_TYPES:
        raise ValueError(f"device {path}: unknown type {kind!r}")
    if os.path.lexists(path):
        os.unlink(path)
    os.mknod(path, _DEVICE_TYPES[kind] | (mode & 0o7777), os.makedev(major, minor))
    os.chown(path, uid, gid, follow_symlinks=False)


def create_devices(root: str, spec_devices: list[dict] | None, dev_is_tmpfs: bool) -> None:
    """Default nodes and symlinks on a fresh tmpfs /dev, then linux.devices from the spec."""
    if dev_is_tmpfs:
        dev = secure_join(root, "/dev")
        for name, (major, minor) in DEFAULT_DEVICES.items():
            _mknod(os.path.join(dev, name), "c", major, minor, 0o666, 0, 0)
        links = dict(DEFAULT_SYMLINKS)
        if os.path.exists("/proc/kcore"):
            links["core"] = "/proc/kcore"
        for name, target in links.items():
            path = os.path.join(dev, name)
            if not os.path.lexists(path):
                os.symlink(target, path)
    for d in spec_devices or []:
        path = d.get("path", "")
        if not path.startswith("/dev/"):
            raise ValueError(f"linux.devices: path must be under /dev: {path!r}")
        full = secure_join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        mode = d.get("fileMode", 0o666)
        _mknod(full, d["type"], d.get("major", 0), d.get("minor", 0), mode, d.get("uid", 0),
               d.get("gid", 0))  # fmt: skip


def _setup_ptmx(root: str) -> None:
    """With a private devpts instance, /dev/ptmx must be its pts/ptmx (devpts docs)."""
    ptmx = secure_join(root, "/dev/ptmx")
    if os.path.lexists(ptmx):
        os.unlink(ptmx)
    os.symlink("pts/ptmx", ptmx)


def _make_parent_private(root: str) -> None:
    """pivot_root(2) fails if the new root's parent mount is shared; make it private."""
    parent = os.path.dirname(root.rstrip("/")) or "/"
    best = "/"
    for mnt, *_ in _parse_mountinfo():
        if _inside(mnt, parent) and len(mnt) > len(best):
            best = mnt
    sc.mount(None, best, None, L.MS_PRIVATE)


def pivot_into(root: str) -> None:
    """Make ``root`` the process's "/" and detach the old root entirely.

    pivot_root(".", ".") stacks the old root on top of the new one (pivot_root(2) NOTES);
    making it rslave first keeps the lazy unmount from propagating to the host.
    """
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(root, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sc.pivot_root(".", ".")
        os.fchdir(old)
        sc.mount(None, ".", None, L.MS_SLAVE | L.MS_REC)
        sc.umount(".", L.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")


def mask_paths(paths: list[str] | None) -> None:
    """linux.maskedPaths (after pivot_root): /dev/null over files, an empty ro tmpfs over
    directories; paths the image does not have are skipped."""
    for p in paths or []:
        try:
            st = os.stat(p)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", p, "tmpfs", L.MS_RDONLY)
        else:
            sc.mount("/dev/null", p, None, L.MS_BIND)


def readonly_paths(paths: list[str] | None) -> None:
    """linux.readonlyPaths (after pivot_root): bind each onto itself, then make it ro."""
    for p in paths or []:
        if not os.path.lexists(p):
            continue
        sc.mount(p, p, None, L.MS_BIND | L.MS_REC)
        set_attrs(
            p,
            L.MOUNT_ATTR_RDONLY | L.MOUNT_ATTR_NOSUID | L.MOUNT_ATTR_NODEV | L.MOUNT_ATTR_NOEXEC,
            recursive=True,
        )


def write_sysctls(sysctl: dict[str, str] | None) -> None:
    """linux.sysctl, written through the container's own /proc/sys (namespaced keys)."""
    for key, value in (sysctl or {}).items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise OSError(e.errno, f"sysctl {key}={value}: {e.strerror}", path) from None


def setup(spec: dict, placed: Callable[[], None] | None = None) -> bool:
    """Everything between unshare(CLONE_NEWNS) and the user switch, in runc's order.

    ``placed`` blocks until the process is in its cgroups (and its cgroup namespace). The
    spec's "cgroup" mounts need that, so they (and mounts below them) are made after the
    other mounts, once ``placed()`` returned: the rest overlaps the parent's cgroup
    attach, which takes milliseconds. True when ``placed`` was called.
    """
    root_cfg = spec.get("root") or {}
    root = os.path.realpath(root_cfg.get("path", ""))
    if not os.path.isdir(root):
        raise FileNotFoundError(errno.ENOENT, f"rootfs {root}: not a directory", root)
    linux = spec.get("linux") or {}
    old_umask = os.umask(0)  # device nodes and mount points get exactly the modes we ask for

    prop_name = linux.get("rootfsPropagation") or "rprivate"
    if prop_name not in PROPAGATION:
        raise ValueError(f"linux.rootfsPropagation: unknown value {prop_name!r}")
    sc.mount(None, "/", None, PROPAGATION[prop_name] | L.MS_REC)
    if PROPAGATION[prop_name] & L.MS_SHARED:
        _make_parent_private(root)
    sc.mount(root, root, None, L.MS_BIND | L.MS_REC)

    dev_tmpfs = devpts = False
    cgroupns = has_cgroupns(spec)
    now, late = _split_cgroup_mounts(spec.get("mounts") or [])
    for m in now:
        mount_entry(root, m, cgroupns)
        dest = os.path.normpath(m["destination"])
        if dest == "/dev":
            dev_tmpfs = m.get("type") == "tmpfs"
        elif dest == "/dev/pts" and m.get("type") == "devpts":
            devpts = True
    if late and placed is not None:
        placed()
    for m in late:
        mount_entry(root, m, cgroupns)
    create_devices(root, linux.get("devices"), dev_tmpfs)
    if devpts:
        _setup_ptmx(root)

    pivot_into(root)

    write_sysctls(linux.get("sysctl"))
    cwd = (spec.get("process") or {}).get("cwd") or "/"
    try:
        os.makedirs(cwd, mode=0o755, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file where the directory goes
        # Docker's sentence (moby container.SetupWorkingDirectory), not "File exists"
        raise OSError(errno.ENOTDIR, f"Cannot mkdir: {cwd} is not a directory") from None
    mask_paths(linux.get("maskedPaths"))
    readonly_paths(linux.get("readonlyPaths"))
    if root_cfg.get("readonly"):
        set_attrs("/", L.MOUNT_ATTR_RDONLY)
    os.umask(old_umask)
    return bool(late) and placed is not None


def _split_cgroup_mounts(mounts: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the mounts to make at once, the cgroup mounts and those below them, in order)."""
    tops: list[str] = []
    now, late = [], []
    for m in mounts:
        dest = os.path.normpath(m.get("destination") or "/")
        if m.get("type") == "cgroup" or any(dest.startswith(t + "/") for t in tops):
            if m.get("type") == "cgroup":
                tops.append(dest)
            late.append(m)
        else:
            now.append(m)
    return now, late


def has_cgroupns(spec: dict) -> bool:
    """Whether the spec gives the container a cgroup namespace of its own."""
    nss = (spec.get("linux") or {}).get("namespaces") or []
    return any(n.get("type") == "cgroup" and not n.get("path") for n in nss)
