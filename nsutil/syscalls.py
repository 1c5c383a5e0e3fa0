"""Typed Python wrappers over the cffi bindings in pydock.nsutil._native.

Each wrapper raises OSError(errno, "<operation> <path>: <strerror>", path) so that a failure
deep inside container setup still tells the user which call failed on which path. The kernel
constants (CLONE_NEW*, MS_*, MNT_*, FSCONFIG_*, FSMOUNT_*, MOVE_MOUNT_*, OPEN_TREE_*,
MOUNT_ATTR_*, PR_*, AT_*) are re-exported from here, so callers never touch ``_native``.
"""

from __future__ import annotations

import errno
import os
import signal

from pydock.nsutil._native import ffi, lib

TYPE_CHECKING = False  # typing costs milliseconds to import on the start path
if TYPE_CHECKING:
    from typing import Any


StrPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]

# Re-export every constant the C side defines (names are all upper case there).
for _name in dir(lib):
    if _name.isupper() or _name.startswith("MOUNT_ATTR_"):
        globals()[_name] = getattr(lib, _name)
del _name

# Names used below, spelled out for readers and linters.
AT_FDCWD: int = lib.AT_FDCWD
FSOPEN_CLOEXEC: int = lib.FSOPEN_CLOEXEC
FSMOUNT_CLOEXEC: int = lib.FSMOUNT_CLOEXEC
FSCONFIG_SET_FLAG: int = lib.FSCONFIG_SET_FLAG
FSCONFIG_SET_STRING: int = lib.FSCONFIG_SET_STRING
FSCONFIG_SET_FD: int = lib.FSCONFIG_SET_FD
FSCONFIG_CMD_CREATE: int = lib.FSCONFIG_CMD_CREATE
OPEN_TREE_CLOEXEC: int = lib.OPEN_TREE_CLOEXEC
CLONE_PIDFD: int = lib.CLONE_PIDFD
CLONE_INTO_CGROUP: int = lib.CLONE_INTO_CGROUP
PR_CAPBSET_DROP: int = lib.PR_CAPBSET_DROP
PR_CAPBSET_READ: int = lib.PR_CAPBSET_READ
LINUX_CAPABILITY_VERSION_3: int = lib.LINUX_CAPABILITY_VERSION_3


def _enc(path: StrPath | None) -> Any:
    return ffi.NULL if path is None else os.fsencode(path)


def _shown(path: StrPath | None) -> str | None:
    return None if path is None else os.fsdecode(path)


def _error(op: str, path: StrPath | None = None, detail: str = "") -> OSError:
    err = ffi.errno
    where = f"{op} {_shown(path)}" if path is not None else op
    msg = f"{where}: {os.strerror(err)}{detail}"
    return OSError(err, msg, _shown(path))


# ---- namespaces -------------------------------------------------------------------------


def unshare(flags: int) -> None:
    """unshare(2): move the caller into new namespaces (CLONE_NEW* flags)."""
    if lib.unshare(flags) != 0:
        raise _error(f"unshare {flags:#x}")


def setns(fd: int, nstype: int = 0, path: StrPath | None = None) -> None:
    """setns(2) on an open /proc/<pid>/ns/* (or pidfd); ``path`` only labels errors."""
    if lib.setns(fd, nstype) != 0:
        raise _error("setns", path if path is not None else f"fd {fd}")


def sethostname(name: str) -> None:
    raw = name.encode()
    if lib.sethostname(raw, len(raw)) != 0:
        raise _error("sethostname", name)


def setdomainname(name: str) -> None:
    raw = name.encode()
    if lib.setdomainname(raw, len(raw)) != 0:
        raise _error("setdomainname", name)


# ---- classic mount API -------------------------------------------------------------------


def mount(
    source: StrPath | None,
    target: StrPath,
    fstype: str | None = None,
    flags: int = 0,
    data: str | bytes | None = None,
) -> None:
    """mount(2). ``data`` is the filesystem's comma-separated option string."""
    raw_data = data.encode() if isinstance(data, str) else data
    rc = lib.mount(
        _enc(source),
        _enc(target),
        ffi.NULL if fstype is None else fstype.encode(),
        flags,
        ffi.NULL if raw_data is None else raw_data,
    )
    if rc != 0:
        raise _error("mount", target)


def umount(target: StrPath, flags: int = 0) -> None:
    """umount2(2); pass MNT_DETACH for a lazy unmount."""
    if lib.umount2(_enc(target), flags) != 0:
        raise _error("umount", target)


def pivot_root(new_root: StrPath, put_old: StrPath) -> None:
    if lib.pd_pivot_root(_enc(new_root), _enc(put_old)) != 0:
        raise _error("pivot_root", new_root)


# ---- new mount API (Linux >= 5.2; mount_setattr >= 5.12) ----------------------------------


def _fs_context_log(fd: int) -> str:
    """Messages the filesystem queued on an fs_context fd (Documentation/filesystems/mount_api)."""
    lines = []
    try:
        while True:
            lines.append(os.read(fd, 1024).decode(errors="replace").strip())
    except OSError:
        pass  # ENODATA: queue empty
    return f" ({'; '.join(lines)})" if lines else ""


def fsopen(fsname: str, flags: int = FSOPEN_CLOEXEC) -> int:
    """Open a filesystem context for ``fsname`` (e.g. "tmpfs", "overlay"); returns its fd."""
    fd = lib.pd_fsopen(fsname.encode(), flags)
    if fd < 0:
        raise _error("fsopen", fsname)
    return fd


def fspick(dfd: int, path: StrPath, flags: int = lib.FSPICK_CLOEXEC) -> int:
    """Open a context to reconfigure the superblock mounted at ``path``."""
    fd = lib.pd_fspick(dfd, _enc(path), flags)
    if fd < 0:
        raise _error("fspick", path)
    return fd


def fsconfig(
    fd: int, cmd: int, key: str | None = None, value: str | bytes | None = None, aux: int = 0
) -> None:
    """fsconfig(2). Prefer the fsconfig_set_*/fsconfig_create helpers below.

    Overlay accepts ``lowerdir+`` once per layer through FSCONFIG_SET_STRING (Linux 6.8), which
    avoids the page-size limit of a single mount(2) data string.
    """
    raw = value.encode() if isinstance(value, str) else value
    rc = lib.pd_fsconfig(
        fd, cmd, ffi.NULL if key is None else key.encode(), ffi.NULL if raw is None else raw, aux
    )
    if rc != 0:
        err = ffi.errno
        what = key if key is not None else f"cmd {cmd}"
        detail = _fs_context_log(fd)
        ffi.errno = err
        raise _error("fsconfig", what, detail)


def fsconfig_set_string(fd: int, key: str, value: str) -> None:
    fsconfig(fd, FSCONFIG_SET_STRING, key, value)


def fsconfig_set_flag(fd: int, key: str) -> None:
    fsconfig(fd, FSCONFIG_SET_FLAG, key)


def fsconfig_set_fd(fd: int, key: str, value_fd: int) -> None:
    fsconfig(fd, FSCONFIG_SET_FD, key, None, value_fd)


def fsconfig_create(fd: int) -> None:
    """Create the superblock from the configured context (FSCONFIG_CMD_CREATE)."""
    fsconfig(fd, FSCONFIG_CMD_CREATE)


def fsmount(fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    """Turn a created fs context into a detached mount; returns an O_PATH-like mount fd."""
    mfd = lib.pd_fsmount(fd, flags, attr_flags)
    if mfd < 0:
        raise _error("fsmount", f"fd {fd}")
    return mfd


def move_mount(
    from_dfd: int,
    from_path: StrPath,
    to_dfd: int,
    to_path: StrPath,
    flags: int = 0,
) -> None:
    """Attach (or move) a mount; with a detached mount fd use from_path="" and
    MOVE_MOUNT_F_EMPTY_PATH."""
    if lib.pd_move_mount(from_dfd, _enc(from_path), to_dfd, _enc(to_path), flags) != 0:
        raise _error("move_mount", to_path)


def open_tree(dfd: int, path: StrPath, flags: int = OPEN_TREE_CLOEXEC) -> int:
    """open_tree(2); with OPEN_TREE_CLONE (| AT_RECURSIVE) this is a detached bind mount."""
    fd = lib.pd_open_tree(dfd, _enc(path), flags)
    if fd < 0:
        raise _error("open_tree", path)
    return fd


def mount_setattr(
    dfd: int,
    path: StrPath,
    flags: int = 0,
    *,
    attr_set: int = 0,
    attr_clr: int = 0,
    propagation: int = 0,
    userns_fd: int = 0,
) -> None:
    """Change per-mount attributes (MOUNT_ATTR_*), recursively with AT_RECURSIVE.

    Unlike a MS_REMOUNT|MS_BIND remount it only touches the bits named, so making a bind
    mount read-only does not silently clear its nosuid/nodev/noexec.
    """
    attr = ffi.new("struct pd_mount_attr *")
    attr.attr_set = attr_set
    attr.attr_clr = attr_clr
    attr.propagation = propagation
    attr.userns_fd = userns_fd
    if lib.pd_mount_setattr(dfd, _enc(path), flags, attr, ffi.sizeof(attr[0])) != 0:
        raise _error("mount_setattr", path)


# ---- process control ---------------------------------------------------------------------


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    rc = lib.pd_prctl(option, arg2, arg3, arg4, arg5)
    if rc < 0:
        raise _error(f"prctl {option}")
    return rc


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of ``pid`` (0: the calling thread) as 64-bit masks."""
    hdr = ffi.new("struct pd_cap_header *", {"version": LINUX_CAPABILITY_VERSION_3, "pid": pid})
    data = ffi.new("struct pd_cap_data[2]")
    if lib.pd_capget(hdr, data) != 0:
        raise _error("capget", f"pid {pid}")
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's capability sets (64-bit masks, capability v3 ABI)."""
    hdr = ffi.new("struct pd_cap_header *", {"version": LINUX_CAPABILITY_VERSION_3, "pid": 0})
    data = ffi.new("struct pd_cap_data[2]")
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    if lib.pd_capset(hdr, data) != 0:
        raise _error("capset")


def clone3(
    flags: int, exit_signal: int = signal.SIGCHLD, cgroup_fd: int = -1
) -> tuple[int, int | None]:
    """fork()-like clone3(2): returns (pid, pidfd) in the parent, (0, None) in the child.

    Use it for what os.fork() cannot do, chiefly CLONE_INTO_CGROUP (pass ``cgroup_fd``, an
    O_DIRECTORY fd of a cgroup v2 directory) so the child starts inside its cgroup with no
    window where it runs in the parent's, and CLONE_PIDFD. CLONE_INTO_CGROUP works only on a
    cgroup2 hierarchy.

    Caveat: the C helper runs CPython's own fork hooks (PyOS_BeforeFork/AfterFork_*, i.e.
    os.register_at_fork handlers) like os.fork() does, but the child is still a copy of a
    possibly multi-threaded interpreter: only the calling thread exists in it. The child
    should do little more than set up and exec or os._exit(), exactly as after os.fork().
    Flags that would share memory or need a new stack (CLONE_VM, CLONE_THREAD, ...) are
    refused with EINVAL.
    """
    pidfd = ffi.new("int *", -1)
    if flags & CLONE_INTO_CGROUP and cgroup_fd < 0:
        raise ValueError("clone3: CLONE_INTO_CGROUP needs cgroup_fd")
    pid = lib.pd_clone3(flags, exit_signal, cgroup_fd, pidfd)
    if pid < 0:
        raise _error(f"clone3 {flags:#x}")
    if pid == 0:
        return 0, None
    return pid, (pidfd[0] if flags & CLONE_PIDFD else None)


# ---- bpf(2): cgroup device programs ---------------------------------------------------

BPF_PROG_TYPE_CGROUP_DEVICE: int = lib.PD_BPF_PROG_TYPE_CGROUP_DEVICE
BPF_CGROUP_DEVICE: int = lib.PD_BPF_CGROUP_DEVICE
BPF_F_ALLOW_MULTI: int = lib.PD_BPF_F_ALLOW_MULTI

# The verifier's log on a refused program; it names the failing instruction.
_BPF_LOG_SIZE = 1 << 16


def bpf_prog_load(prog_type: int, insns: bytes, license: str, name: str = "") -> int:
    """BPF_PROG_LOAD: an fd of the loaded program (the caller closes it).

    ``insns`` are struct bpf_insn records (8 bytes each). The load is tried without a log
    first (no buffer to fill on the start path); a refusal is retried with one so that the
    error says why the verifier refused.
    """
    if len(insns) % 8:
        raise ValueError("bpf program: instructions must be 8-byte records")
    lic = license.encode()
    tag = name.encode()
    fd = lib.pd_bpf_prog_load(prog_type, insns, len(insns) // 8, lic, tag, ffi.NULL, 0)
    if fd >= 0:
        return fd
    err = ffi.errno
    log = ffi.new("char[]", _BPF_LOG_SIZE)
    fd = lib.pd_bpf_prog_load(prog_type, insns, len(insns) // 8, lic, tag, log, _BPF_LOG_SIZE)
    if fd >= 0:  # the kernel accepted it this time: use it
        return fd
    text = ffi.string(log).decode(errors="replace").strip().replace("\n", "; ")
    ffi.errno = err
    raise _error("bpf BPF_PROG_LOAD", None, f" (verifier: {text})" if text else "")


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """BPF_PROG_ATTACH ``prog_fd`` to the cgroup directory fd ``target_fd``."""
    if lib.pd_bpf_prog_attach(target_fd, prog_fd, attach_type, flags) != 0:
        raise _error("bpf BPF_PROG_ATTACH")


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    """BPF_PROG_DETACH the program ``prog_fd`` from the cgroup directory fd ``target_fd``."""
    if lib.pd_bpf_prog_detach(target_fd, prog_fd, attach_type) != 0:
        raise _error("bpf BPF_PROG_DETACH")


def bpf_prog_query(target_fd: int, attach_type: int) -> list[int]:
    """BPF_PROG_QUERY: ids of the programs attached to this cgroup itself (not the ones
    it inherits), in the kernel's run order."""
    flags = ffi.new("uint32_t *", 0)
    want = 0
    while True:
        # With no room the kernel only reports the count; with too little, ENOSPC and
        # the count: ask again with room for all of them.
        cnt = ffi.new("uint32_t *", want)
        ids = ffi.new("uint32_t[]", want) if want else ffi.NULL
        if lib.pd_bpf_prog_query(target_fd, attach_type, ids, cnt, flags) != 0:
            if ffi.errno != errno.ENOSPC:
                raise _error("bpf BPF_PROG_QUERY")
        elif cnt[0] <= want:
            return [ids[i] for i in range(cnt[0])]
        want = cnt[0]


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    """BPF_PROG_GET_FD_BY_ID: an fd of a loaded program (the caller closes it)."""
    fd = lib.pd_bpf_prog_get_fd_by_id(prog_id)
    if fd < 0:
        raise _error("bpf BPF_PROG_GET_FD_BY_ID", f"id {prog_id}")
    return fd
