"""The cffi bindings against the real kernel: classic and new mount API, clone3."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from pydock.nsutil import syscalls as sc


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


def test_mount_umount_tmpfs(scratch: Path) -> None:
    target = scratch / "mnt"
    target.mkdir()
    sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=1m,mode=700")
    try:
        assert _mounted(target)
        (target / "f").write_text("x")
        assert os.stat(target).st_mode & 0o777 == 0o700
    finally:
        sc.umount(target)
    assert not _mounted(target)
    assert not (target / "f").exists()


def test_mount_error_names_operation_and_path(scratch: Path) -> None:
    missing = scratch / "does-not-exist"
    with pytest.raises(OSError) as info:
        sc.mount("tmpfs", missing, "tmpfs")
    assert info.value.errno == 2
    assert f"mount {missing}:" in info.value.strerror
    assert info.value.filename == str(missing)


def test_new_mount_api_tmpfs(scratch: Path) -> None:
    target = scratch / "mnt"
    target.mkdir()
    fs = sc.fsopen("tmpfs")
    try:
        sc.fsconfig_set_string(fs, "size", "1m")
        sc.fsconfig_create(fs)
        mnt = sc.fsmount(fs, sc.FSMOUNT_CLOEXEC, sc.MOUNT_ATTR_NODEV)
    finally:
        os.close(fs)
    try:
        sc.move_mount(mnt, "", sc.AT_FDCWD, target, sc.MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(mnt)
    try:
        assert _mounted(target)
        (target / "hello").write_text("hi")
    finally:
        sc.umount(target)


def test_fsconfig_error_carries_kernel_log() -> None:
    fs = sc.fsopen("tmpfs")
    try:
        with pytest.raises(OSError) as info:
            sc.fsconfig_set_string(fs, "no-such-option", "1")
        assert "fsconfig no-such-option" in info.value.strerror
    finally:
        os.close(fs)


def test_open_tree_clone_and_mount_setattr_ro(scratch: Path) -> None:
    src, dst = scratch / "src", scratch / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "file").write_text("data")
    tree = sc.open_tree(sc.AT_FDCWD, src, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
    try:
        sc.move_mount(tree, "", sc.AT_FDCWD, dst, sc.MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(tree)
    try:
        assert (dst / "file").read_text() == "data"
        sc.mount_setattr(sc.AT_FDCWD, dst, attr_set=sc.MOUNT_ATTR_RDONLY)
        with pytest.raises(OSError) as info:
            (dst / "new").write_text("x")
        assert info.value.errno == 30  # EROFS
        (src / "still-writable").write_text("x")  # only the bind mount is read-only
    finally:
        sc.umount(dst)


def test_clone3_child_exits() -> None:
    pid, pidfd = sc.clone3(sc.CLONE_PIDFD)
    if pid == 0:
        os._exit(42)
    try:
        assert pidfd is not None
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 42
    finally:
        if pidfd is not None:
            os.close(pidfd)


def test_clone3_new_namespaces() -> None:
    r, w = os.pipe()
    pid, _ = sc.clone3(sc.lib.CLONE_NEWUTS | sc.lib.CLONE_NEWPID, signal.SIGCHLD)
    if pid == 0:
        try:
            sc.sethostname("pdtest-clone3")
            os.write(w, f"{os.getpid()} {os.uname().nodename}".encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        data = os.read(r, 100).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert data == "1 pdtest-clone3"
    assert os.uname().nodename != "pdtest-clone3"


def test_clone3_refuses_shared_memory() -> None:
    with pytest.raises(OSError) as info:
        sc.clone3(sc.lib.CLONE_VM)
    assert info.value.errno == 22


def test_clone3_into_cgroup() -> None:
    """CLONE_INTO_CGROUP on the cgroup2 hierarchy (hybrid host: /sys/fs/cgroup/unified)."""
    own = next(
        line.split(":", 2)[2].strip()
        for line in Path("/proc/self/cgroup").read_text().splitlines()
        if line.startswith("0::")
    )
    base = next(
        (Path(line.split()[4]) for line in Path("/proc/self/mountinfo").read_text().splitlines()
         if line.split(" - ")[1].startswith("cgroup2 ")),
        None,
    )  # fmt: skip
    if base is None:
        pytest.skip("no cgroup2 hierarchy")
    cg = base / own.lstrip("/") / f"pdtest-clone3-{os.getpid()}"
    cg.mkdir()
    try:
        fd = os.open(cg, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        r, w = os.pipe()
        try:
            pid, _ = sc.clone3(sc.CLONE_INTO_CGROUP, cgroup_fd=fd)
            if pid == 0:
                try:
                    os.write(w, Path("/proc/self/cgroup").read_bytes())
                finally:
                    os._exit(0)
            os.close(w)
            data = os.read(r, 65536).decode()
            os.waitpid(pid, 0)
        finally:
            os.close(r)
            os.close(fd)
        assert f"0::{own.rstrip('/')}/{cg.name}" in data.splitlines()
    finally:
        cg.rmdir()
