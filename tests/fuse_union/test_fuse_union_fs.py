"""fuse-union's filesystem beyond the differential sequences: whiteout regressions that
fuse-overlayfs has had, and the calls the random tests do not make (mmap, flock, fsync,
statfs, stable inode numbers, a read-only mount, an open file across its copy-up).

Whiteout regressions are checked against the kernel too: each builds its layers, runs its
steps on both mounts and compares the trees, then checks the expected names directly.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import stat
from pathlib import Path

import pytest
from fu_helpers import fuse_mount, kmount, opaque, snapshot, whiteout, workdir, write

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")


def _dirs(base: Path, *names: str) -> list[str]:
    out = []
    for n in names:
        (base / n).mkdir()
        out.append(str(base / n))
    return out


def _both(base: Path, lowers: list[str], steps) -> tuple[dict, dict, str]:
    """Run ``steps(root)`` on a kernel and a FUSE mount; return both trees and fuse upper."""
    ku, kw, km, fu, fw, fm = _dirs(base, "ku", "kw", "km", "fu", "fw", "fm")
    with kmount(km, lowers, ku, kw):
        steps(km)
        kernel = snapshot(km)
    with fuse_mount(fm, lowers, fu, fw):
        steps(fm)
        fuse = snapshot(fm)
    return kernel, fuse, fu


def test_root_whiteout_does_not_hide_deeper_names(scratch: Path) -> None:
    low, top = scratch / "low", scratch / "top"
    write(low / "x", b"root x")
    write(low / "d/x", b"deep x")
    write(low / "d/e/x", b"deeper x")
    top.mkdir()
    whiteout(top / "x")
    with workdir(scratch, "m-") as m:
        kernel, fuse, _ = _both(m, [str(top), str(low)], lambda r: None)
    assert fuse == kernel
    assert "x" not in fuse and "d/x" in fuse and "d/e/x" in fuse


def test_deleted_and_recreated_directory_stays_empty(scratch: Path) -> None:
    low = scratch / "low"
    write(low / "d/f1", b"1")
    write(low / "d/sub/f2", b"2")

    def steps(root: str) -> None:
        for p in ("d/sub/f2", "d/f1"):
            os.unlink(f"{root}/{p}")
        os.rmdir(f"{root}/d/sub")
        os.rmdir(f"{root}/d")
        os.mkdir(f"{root}/d")
        os.mkdir(f"{root}/d/sub")

    with workdir(scratch, "m-") as m:
        kernel, fuse, fu = _both(m, [str(low)], steps)
        assert fuse == kernel
        assert [p for p in fuse if p.startswith("d/")] == ["d/sub"]
        # and after a remount of the same upper (as the next container start would)
        with fuse_mount(str(m / "fm"), [str(low)], fu, str(m / "fw")):
            assert os.listdir(m / "fm/d") == ["sub"] and os.listdir(m / "fm/d/sub") == []


def test_opaque_directory_holding_whiteouts(scratch: Path) -> None:
    low, top = scratch / "low", scratch / "top"
    write(low / "o/w", b"lower w")
    write(low / "o/z", b"lower z")
    write(top / "o/k", b"kept")
    opaque(top / "o")
    whiteout(top / "o/w")  # redundant under an opaque dir, but layers do carry them
    # Not compared with the kernel: kernel 6.18 lists "w" in this (non-merged) directory
    # and then fails its lstat with ENOENT -- a name that is and is not there.
    up, wk, mp = _dirs(scratch, "up", "wk", "mp")
    with fuse_mount(mp, [str(top), str(low)], up, wk):
        assert os.listdir(f"{mp}/o") == ["k"]
        assert not os.path.lexists(f"{mp}/o/w") and not os.path.lexists(f"{mp}/o/z")
        os.unlink(f"{mp}/o/k")
        os.rmdir(f"{mp}/o")  # empty in the merged view, whiteouts and all
        assert not os.path.lexists(f"{mp}/o")


def test_symlink_replacing_a_whiteout(scratch: Path) -> None:
    low = scratch / "low"
    write(low / "f", b"file")

    def steps(root: str) -> None:
        os.unlink(f"{root}/f")
        os.symlink("target", f"{root}/f")

    with workdir(scratch, "m-") as m:
        kernel, fuse, fu = _both(m, [str(low)], steps)
        assert fuse == kernel
        assert os.readlink(f"{fu}/f") == "target"  # the whiteout is gone from the upper
        with kmount(str(m / "km"), [str(low)], fu, str(m / "kw")):
            assert os.readlink(m / "km/f") == "target"


def test_opaque_marker_honoured_in_middle_layer(scratch: Path) -> None:
    low, mid, top = scratch / "low", scratch / "mid", scratch / "top"
    write(low / "o/hidden", b"h")
    write(mid / "o/seen", b"s")
    opaque(mid / "o")
    write(top / "o/new", b"n")
    with workdir(scratch, "m-") as m:
        kernel, fuse, _ = _both(m, [str(top), str(mid), str(low)], lambda r: None)
    assert fuse == kernel
    assert sorted(p for p in fuse if p.startswith("o/")) == ["o/new", "o/seen"]


@pytest.fixture
def mounted(scratch: Path):
    low = scratch / "low"
    write(low / "big", os.urandom(3 << 20))
    write(low / "small", b"0123456789")
    up, wk, mp = _dirs(scratch, "up", "wk", "mp")
    with fuse_mount(mp, [str(low)], up, wk):
        yield Path(mp), Path(up), low


def test_inode_numbers_stable_across_copy_up(mounted) -> None:
    mp, up, _ = mounted
    before = os.stat(mp / "small").st_ino
    os.chmod(mp / "small", 0o600)  # copies the file up
    assert (up / "small").exists()
    assert os.stat(mp / "small").st_ino == before


def test_open_reader_sees_writes_after_copy_up(mounted) -> None:
    mp, _, _ = mounted
    with open(mp / "small", "rb", buffering=0) as reader:
        assert reader.read(4) == b"0123"
        with open(mp / "small", "r+b", buffering=0) as w:
            w.seek(4)
            w.write(b"XY")
        assert os.pread(reader.fileno(), 6, 0) == b"0123XY"


def test_mmap_shared_write_and_read(mounted) -> None:
    mp, up, low = mounted
    with open(mp / "big", "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        assert m[:16] == (low / "big").read_bytes()[:16]
        m[100:104] = b"MMAP"
        m.flush()
    assert (up / "big").read_bytes()[100:104] == b"MMAP"
    assert (mp / "big").read_bytes()[100:104] == b"MMAP"
    assert (low / "big").read_bytes()[100:104] != b"MMAP"


def test_flock_fsync_statfs(mounted) -> None:
    mp, _, _ = mounted
    fd = os.open(mp / "small", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fd2 = os.open(mp / "small", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd2, fcntl.LOCK_SH | fcntl.LOCK_NB)
        finally:
            os.close(fd2)
        os.write(fd, b"sync")
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    s = os.statvfs(mp)
    assert s.f_blocks > 0 and s.f_bsize > 0 and s.f_namemax >= 255


def test_unlinked_open_file_keeps_working(mounted) -> None:
    mp, _, _ = mounted
    with open(mp / "tmpfile", "w+b", buffering=0) as f:
        f.write(b"abc")
        os.unlink(mp / "tmpfile")
        f.seek(0)
        assert f.read() == b"abc"
        assert os.fstat(f.fileno()).st_size == 3
    assert not (mp / "tmpfile").exists()


def test_read_only_mount_refuses_writes(scratch: Path) -> None:
    low = scratch / "low"
    write(low / "f", b"ro")
    (mp,) = _dirs(scratch, "mp")
    with fuse_mount(mp, [str(low)]):
        assert Path(mp, "f").read_bytes() == b"ro"
        with pytest.raises(OSError) as e:
            Path(mp, "g").write_bytes(b"x")
        assert e.value.errno == errno.EROFS


def test_private_xattrs_hidden_and_escaped(scratch: Path) -> None:
    low = scratch / "low"
    write(low / "d/f", b"f")
    opaque(low / "d")
    up, wk, mp = _dirs(scratch, "up", "wk", "mp")
    with fuse_mount(mp, [str(low)], up, wk):
        assert "trusted.overlay.opaque" not in os.listxattr(f"{mp}/d")
        os.setxattr(f"{mp}/d/f", "trusted.overlay.mine", b"1")
        assert os.getxattr(f"{mp}/d/f", "trusted.overlay.mine") == b"1"
        assert "trusted.overlay.mine" in os.listxattr(f"{mp}/d/f")
    # stored in overlay's escaped form, so kernel overlay shows the same
    assert os.getxattr(f"{up}/d/f", "trusted.overlay.overlay.mine") == b"1"


def _big_lower_dir(d: Path) -> list[str]:
    """low/d with 1,000 long names (an open directory read in many readdir requests), and
    the empty u, w and m directories for a mount; returns the names, sorted."""
    names = [f"{i:04d}" + "x" * 200 for i in range(1000)]
    for sub in ("low", "u", "w", "m"):
        (d / sub).mkdir()
    (d / "low" / "d").mkdir()
    for n in names:
        (d / "low" / "d" / n).write_bytes(b"")
        os.chmod(d / "low" / "d" / n, 0o644)
    return names


def test_readdir_snapshot_does_not_undo_a_chmod(scratch: Path) -> None:
    """readdirplus attributes overwrite the kernel's cached ones: an entry replied from an
    open directory's snapshot after a chmod must carry the new mode, not the listed one."""
    with workdir(scratch, "fu-rd-") as d:
        names = _big_lower_dir(d)
        with fuse_mount(str(d / "m"), [str(d / "low")], str(d / "u"), str(d / "w")):
            last = d / "m" / "d" / names[-1]
            with os.scandir(d / "m" / "d") as it:
                next(it)  # the first request: the snapshot is taken
                os.chmod(last, 0o600)
                assert len(list(it)) == len(names) - 1
            assert stat.S_IMODE(os.stat(last).st_mode) == 0o600


def test_readdir_snapshot_skips_a_name_removed_meanwhile(scratch: Path) -> None:
    """A lower-only directory's snapshot is replied without per-entry checks only while
    nothing was removed or copied up since it was taken: a name unlinked between two readdir
    requests of one open must not be replied, or readdirplus would hand the kernel a dentry
    for it and the removed name would stat again."""
    with workdir(scratch, "fu-rd-") as d:
        names = _big_lower_dir(d)
        with fuse_mount(str(d / "m"), [str(d / "low")], str(d / "u"), str(d / "w")):
            gone = d / "m" / "d" / names[-1]
            with os.scandir(d / "m" / "d") as it:
                next(it)  # the first request: the snapshot is taken
                os.unlink(gone)
                rest = [e.name for e in it]
            assert names[-1] not in rest
            assert len(rest) == len(names) - 2
            assert not os.path.lexists(gone)
            # a later open lists the directory as it is now
            assert sorted(os.listdir(d / "m" / "d")) == names[:-1]
