"""The shared layer helpers on their own: whiteout forms, tar edge cases, state files."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from layertar import E, d, f, hard, opaque, snapshot, sym, tar_bytes, tar_stream, whiteout
from pydock.drivers.base import Change, ChangeKind, DriverError, UnsafeLayer
from pydock.drivers.layers import (
    DeletingWhiteouts,
    OverlayWhiteoutReader,
    OverlayWhiteouts,
    RefCounts,
    TempDir,
    apply_tar,
    cleanup_temp_dirs,
    copy_tree,
    measure_usage,
    read_json,
    tree_changes,
    write_json_atomic,
    write_tar,
)


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return [m.name for m in t]


def test_overlay_form_whiteouts_round_trip(scratch: Path) -> None:
    upper = scratch / "upper"
    upper.mkdir()
    layer = tar_bytes(d("etc"), whiteout("etc/group"), d("opq"), opaque("opq"), f("opq/n", b"n"))
    apply_tar(io.BytesIO(layer), upper, whiteouts=OverlayWhiteouts())
    st = os.lstat(upper / "etc/group")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(upper / "opq", "trusted.overlay.opaque") == b"y"
    out = io.BytesIO()
    write_tar(out, upper, whiteout_reader=OverlayWhiteoutReader())
    names = _names(out.getvalue())
    assert names == ["etc", "etc/.wh.group", "opq", "opq/.wh..wh..opq", "opq/n"]
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        assert not any("trusted.overlay" in k for m in t for k in m.pax_headers)
    again = scratch / "again"
    again.mkdir()
    apply_tar(io.BytesIO(out.getvalue()), again, whiteouts=OverlayWhiteouts())
    # whiteout devices carry no meaningful time: compare without times
    assert snapshot(again, times=False) == snapshot(upper, times=False)


def test_whiteout_of_same_layer_entry_only_hides_lower(scratch: Path) -> None:
    root = scratch / "l"
    apply_tar(tar_stream(d("x"), f("x/old"), f("keep")), _mk(root), whiteouts=DeletingWhiteouts())
    # layer.md: whiteouts apply to lower layers only, in whatever order they come
    layer = tar_bytes(f("keep", b"new"), whiteout("keep"), d("x"), f("x/new"), whiteout("x"))
    apply_tar(io.BytesIO(layer), root, whiteouts=DeletingWhiteouts())
    assert (root / "keep").read_bytes() == b"new"
    assert os.listdir(root / "x") == ["new"]


def test_reserved_and_forged_names_ignored(scratch: Path) -> None:
    root = _mk(scratch / "l")
    layer = tar_bytes(
        f(".wh..wh.plnk"),
        d("d", xattrs={"trusted.overlay.opaque": b"y", "user.ok": b"1"}),
    )
    apply_tar(io.BytesIO(layer), root, whiteouts=OverlayWhiteouts())
    assert os.listdir(root) == ["d"]
    assert os.listxattr(root / "d") == ["user.ok"]


def test_file_replaces_symlink_not_its_target(scratch: Path) -> None:
    outside = scratch / "outside"
    outside.write_bytes(b"canary")
    root = _mk(scratch / "l")
    os.symlink(outside, root / "l")
    apply_tar(tar_stream(f("l", b"mine")), root, whiteouts=DeletingWhiteouts())
    assert outside.read_bytes() == b"canary"
    assert not (root / "l").is_symlink() and (root / "l").read_bytes() == b"mine"


def test_symlink_planted_in_lower_is_not_followed(scratch: Path) -> None:
    outside = _mk(scratch / "outside")
    root = _mk(scratch / "l")
    os.symlink(outside, root / "etc")
    with pytest.raises(UnsafeLayer, match="'etc/passwd'.*symlink"):
        apply_tar(tar_stream(f("etc/passwd", b"x")), root, whiteouts=DeletingWhiteouts())
    assert os.listdir(outside) == []


def test_hardlink_to_missing_target_fails_cleanly(scratch: Path) -> None:
    with pytest.raises(Exception, match="link target 'nope' missing"):
        apply_tar(tar_stream(hard("h", "nope")), _mk(scratch / "l"), whiteouts=DeletingWhiteouts())


def test_copy_tree_preserves_everything(scratch: Path) -> None:
    src = _mk(scratch / "src")
    apply_tar(
        tar_stream(
            d("a", mode=0o1777, uid=7),
            f("a/f", b"data" * 1000, mode=0o4750, uid=1234, gid=5678, mtime="1.5"),
            hard("a/g", "a/f"),
            f("x", xattrs={"trusted.t": b"1", "user.u": b"2"}),
            sym("s", "a/f", uid=5),
            E("c", "chr", dev=(1, 7)),
            E("p", "fifo"),
        ),
        src,
        whiteouts=DeletingWhiteouts(),
    )
    copy_tree(src, scratch / "dst")
    assert snapshot(scratch / "dst") == snapshot(src)
    assert tree_changes(scratch / "dst", src) == []
    assert measure_usage(src).inodes == 7  # root, a, f(+g), x, s, c, p


def test_changes_detect_content_with_identical_metadata(scratch: Path) -> None:
    src = _mk(scratch / "src")
    apply_tar(tar_stream(f("f", b"aaaa")), src, whiteouts=DeletingWhiteouts())
    copy_tree(src, scratch / "dst")
    copied = time.time_ns()
    g = scratch / "dst/f"
    st = g.stat()
    g.write_bytes(b"bbbb")
    os.utime(g, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    assert tree_changes(scratch / "dst", src, unchanged_before_ns=copied) == [
        Change("/f", ChangeKind.MODIFY)
    ]


def test_write_tar_changes_mode(scratch: Path) -> None:
    root = _mk(scratch / "l")
    apply_tar(
        tar_stream(d("a"), f("a/b", b"12"), f("a/c", b"3")), root, whiteouts=DeletingWhiteouts()
    )
    out = io.BytesIO()
    n = write_tar(out, root, [Change("/a/b", ChangeKind.MODIFY), Change("/a/x", ChangeKind.DELETE)])
    assert n == 2 and _names(out.getvalue()) == ["a/b", "a/.wh.x"]


def test_atomic_json(scratch: Path) -> None:
    p = scratch / "m.json"
    write_json_atomic(p, {"a": 1})
    write_json_atomic(p, {"a": 2})
    assert read_json(p) == {"a": 2} and os.listdir(scratch) == ["m.json"]


def test_temp_dirs_of_live_builders_survive_cleanup(scratch: Path) -> None:
    with TempDir(scratch, "busy") as live:
        (live.path / "x").write_bytes(b"x")
        dead = scratch / ".tmp-dead-0000"
        dead.mkdir()
        assert cleanup_temp_dirs(scratch) == [dead]
        assert live.path.exists()
    assert not live.path.exists()  # never committed: discarded


def test_refcounts_across_processes(scratch: Path) -> None:
    code = (
        "import sys\nfrom pydock.drivers.state import RefCounts\n"
        "r = RefCounts(sys.argv[1])\n"
        "for _ in range(200):\n"
        "    with r.hold('L') as ref:\n"
        "        ref.count += 1\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(scratch)]) for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    assert RefCounts(scratch).count("L") == 600


def _mk(p: Path) -> Path:
    p.mkdir()
    return p


@pytest.mark.parametrize(
    "data", [b"this is not a tar" * 100, tar_bytes(f("f", b"x" * 5000))[:2000]]
)
def test_garbage_or_truncated_tar_is_a_driver_error(scratch: Path, data: bytes) -> None:
    with pytest.raises(DriverError, match="invalid layer tar"):
        apply_tar(io.BytesIO(data), _mk(scratch / "l"), whiteouts=DeletingWhiteouts())
