"""Metadata-only copy-up: the kernel's metacopy form while fuse-union serves, settled after.

The differential suite checks the merged trees against the kernel; these check the form
on disk (a sparse upper file with the metacopy xattr, no data moved), that the kernel
refuses it under overlay2's ``metacopy=off`` until it is settled, and that the drivers'
diffs, changes and kernel mounts of the shared store settle it or work around it.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from fu_helpers import fuse_mount, kmount, workdir, write
from pydock.drivers import registry
from pydock.fuse_union import metacopy
from pydock.overlay import driver as ovl_driver

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")

DATA = bytes(range(256)) * 4096  # 1 MiB


def _is_meta(p: Path) -> bool:
    st = os.lstat(p)
    return metacopy.may_be_metacopy(st) and metacopy.is_metacopy(str(p))


def test_mark_name_is_the_one_overlay2_reads() -> None:
    assert metacopy.MARK == ovl_driver.METACOPY_MARK


def test_chmod_chown_utime_xattr_move_no_data(scratch: Path) -> None:
    with workdir(scratch, "mc-") as d:
        for s in ("low", "u", "w", "m", "kw"):
            (d / s).mkdir()
        for name in ("chmod", "chown", "utime", "xattr", "empty"):
            write(d / "low" / name, b"" if name == "empty" else DATA)
        with fuse_mount(str(d / "m"), [str(d / "low")], str(d / "u"), str(d / "w")):
            m = d / "m"
            os.chmod(m / "chmod", 0o4711)
            os.chown(m / "chown", 1000, 7)
            os.utime(m / "utime", ns=(1, 2_000_000_000))
            os.setxattr(m / "xattr", "user.k", b"v")
            os.chmod(m / "empty", 0o600)
            for name in ("chmod", "chown", "utime", "xattr"):
                up = d / "u" / name
                assert _is_meta(up), name
                # no data blocks (an xattr block may be counted: ext4 puts xattrs that do
                # not fit in the inode there)
                assert os.lstat(up).st_blocks * 512 <= 4096 and os.lstat(up).st_size == len(DATA)
                assert (m / name).read_bytes() == DATA
                assert os.stat(m / name).st_blocks == os.stat(d / "low" / name).st_blocks
            assert not _is_meta(d / "u" / "empty")  # nothing to leave behind: a full copy
            assert os.stat(m / "chmod").st_mode & 0o7777 == 0o4711
            assert os.stat(m / "chown").st_uid == 1000
            assert os.stat(m / "utime").st_mtime_ns == 2_000_000_000
            assert os.getxattr(m / "xattr", "user.k") == b"v"
            assert os.listxattr(m / "xattr") == ["user.k"]  # the metacopy xattr is private
            assert metacopy.marked(str(d / "w"))
            # the first data write completes the copy in place: data, mode and times kept
            with open(m / "chmod", "r+b") as fh:
                fh.seek(100)
                fh.write(b"XX")
            want = DATA[:100] + b"XX" + DATA[102:]
            assert (m / "chmod").read_bytes() == want
            assert not _is_meta(d / "u" / "chmod")
            assert (d / "u" / "chmod").read_bytes() == want
            assert os.stat(m / "chmod").st_mode & 0o7777 == 0o4711
        # overlay2's kernel mount (metacopy=off) refuses metacopy files until settled
        with (
            kmount(str(d / "m"), [str(d / "low")], str(d / "u"), str(d / "kw")),
            pytest.raises(PermissionError),
        ):
            (d / "m" / "chown").read_bytes()
        assert metacopy.settle(str(d / "u"), str(d / "w"), [str(d / "low")]) == 3
        assert not metacopy.marked(str(d / "w"))
        with kmount(str(d / "m"), [str(d / "low")], str(d / "u"), str(d / "kw")):
            for name in ("chown", "utime", "xattr"):
                assert (d / "m" / name).read_bytes() == DATA
            assert os.stat(d / "m" / "utime").st_mtime_ns == 2_000_000_000
            assert os.stat(d / "m" / "chown").st_uid == 1000


def test_reader_open_across_completion(scratch: Path) -> None:
    """A read-only open made before the data moved reads what later writes wrote."""
    with workdir(scratch, "mc-") as d:
        for s in ("low", "u", "w", "m"):
            (d / s).mkdir()
        write(d / "low" / "f", DATA)
        with fuse_mount(str(d / "m"), [str(d / "low")], str(d / "u"), str(d / "w")):
            f = d / "m" / "f"
            os.chmod(f, 0o600)
            rfd = os.open(f, os.O_RDONLY)
            try:
                assert os.pread(rfd, 4, 0) == DATA[:4]
                wfd = os.open(f, os.O_WRONLY)
                try:
                    os.pwrite(wfd, b"ABCD", 0)
                finally:
                    os.close(wfd)
                assert os.pread(rfd, 4, 0) == b"ABCD"
            finally:
                os.close(rfd)


def _tar_members(drv, id: str) -> dict[str, tuple[int, bytes]]:
    buf = io.BytesIO()
    drv.diff(id, buf)
    buf.seek(0)
    out = {}
    with tarfile.open(fileobj=buf) as t:
        for ti in t:
            if ti.isfile():
                fh = t.extractfile(ti)
                out[ti.name] = (ti.mode, fh.read() if fh else b"")
    return out


def test_drivers_diff_and_kernel_mount_settle(scratch: Path) -> None:
    fu = registry.open_driver("fuse-union", scratch)
    ovl = registry.open_driver("overlay2", scratch)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        for name in ("bin/tool", "bin/other"):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(DATA), 0o644
            t.addfile(ti, io.BytesIO(DATA))
    tar.seek(0)
    fu.create("img", None)
    fu.apply_diff("img", None, tar)
    fu.create_rw("ctr", "img")
    work = str(fu.home / "ctr" / "work")
    root = fu.get("ctr")
    try:
        os.chmod(os.path.join(root, "bin/tool"), 0o755)
        assert metacopy.marked(work)
        # while fuse-union serves the layer, the diff compares the mounted trees
        assert _tar_members(fu, "ctr") == {"bin/tool": (0o755, DATA)}
        assert metacopy.marked(work)
    finally:
        fu.put("ctr")
    assert metacopy.marked(work)  # stop/start under fuse-union keeps the cheap form
    assert _tar_members(fu, "ctr") == {"bin/tool": (0o755, DATA)}  # settled, native diff
    assert not metacopy.marked(work)
    root = fu.get("ctr")
    try:
        os.chown(os.path.join(root, "bin/other"), 1000, 1000)
        assert metacopy.marked(work)
    finally:
        fu.put("ctr")
    kroot = ovl.get("ctr")  # the kernel mount settles first
    try:
        assert not metacopy.marked(work)
        assert Path(kroot, "bin/other").read_bytes() == DATA
        assert os.stat(Path(kroot, "bin/other")).st_uid == 1000
    finally:
        ovl.put("ctr")
    assert [str(c.path) for c in ovl.changes("ctr")] == ["/bin", "/bin/other", "/bin/tool"]
    fu.remove("ctr")
    fu.remove("img")
