"""Mounting: reference counts (in and across processes), copy-up, read-only image mounts."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import mounts_below
from ovl_helpers import add_layer
from pydock.drivers.base import DriverError, LayerInUse
from pydock.nsutil import syscalls as sc


def _tree_digest(root: Path) -> str:
    """Hash of every path, its metadata and bytes below ``root`` (xattrs included)."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)} {st.st_mode} {st.st_mtime_ns}".encode())
            for x in sorted(os.listxattr(p, follow_symlinks=False)):
                h.update(x.encode() + os.getxattr(p, x, follow_symlinks=False))
            if os.path.isfile(p) and not os.path.islink(p):
                h.update(Path(p).read_bytes())
    return h.hexdigest()


def test_refcount_across_two_gets(driver):
    add_layer(driver, "img", None, ("f", b"x"))
    driver.create_rw("ctr", "img")
    first = driver.get("ctr")
    second = driver.get("ctr")
    assert first == second == str(driver.home / "ctr" / "merged")
    assert mounts_below(driver.home) == [first]  # mounted once, not twice
    driver.put("ctr")
    assert driver.mounted("ctr") and mounts_below(driver.home) == [first]
    with pytest.raises(LayerInUse):
        driver.remove("ctr")
    driver.put("ctr")
    assert not driver.mounted("ctr") and mounts_below(driver.home) == []
    with pytest.raises(DriverError):
        driver.put("ctr")  # more puts than gets
    driver.remove("ctr")


def test_refcount_is_shared_across_processes(driver):
    """Another pydock process's get/put must not unmount what this process holds."""
    add_layer(driver, "img", None, ("f", b"x"))
    driver.create_rw("ctr", "img")
    merged = driver.get("ctr")
    code = (
        "import sys\n"
        "from pydock.overlay.driver import Overlay2Driver\n"
        "d = Overlay2Driver(sys.argv[1])\n"
        "p = d.get('ctr'); assert p == sys.argv[2], p\n"
        "d.put('ctr')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(driver.home), merged], check=True)
    assert os.path.ismount(merged) and driver.mounted("ctr")
    assert (Path(merged) / "f").read_bytes() == b"x"
    driver.put("ctr")
    assert not os.path.ismount(merged)


def test_stale_refcount_is_reconciled(driver):
    """A holder that died leaves a count but (after reboot) no mount: get() mounts anew."""
    add_layer(driver, "img", None, ("f", b"x"))
    driver.create_rw("ctr", "img")
    merged = driver.get("ctr")
    sc.umount(merged)  # what a reboot does to the mount; the count file survives
    driver._held.clear()  # the "dead" holder's refs are not ours to clean up
    assert not driver.mounted("ctr")
    again = driver.get("ctr")
    assert os.path.ismount(again) and (Path(again) / "f").read_bytes() == b"x"
    driver.put("ctr")
    assert not os.path.ismount(again)


def test_copy_up_leaves_lower_byte_identical(driver):
    add_layer(driver, "img", None, ("etc", None), ("etc/conf", b"original"), ("bin", b"\x7fELF"))
    driver.create_rw("ctr", "img")
    lower = driver.home / "img" / "diff"
    before = _tree_digest(lower)
    merged = Path(driver.get("ctr"))
    try:
        with open(merged / "etc" / "conf", "ab") as f:
            f.write(b"+changed")
        os.chmod(merged / "bin", 0o700)
        (merged / "etc" / "new").write_bytes(b"new")
        assert (merged / "etc" / "conf").read_bytes() == b"original+changed"
    finally:
        driver.put("ctr")
    upper = driver.home / "ctr" / "diff"
    assert (upper / "etc" / "conf").read_bytes() == b"original+changed"
    assert (upper / "etc" / "new").read_bytes() == b"new"
    assert _tree_digest(lower) == before
    assert (lower / "etc" / "conf").read_bytes() == b"original"


def test_image_layer_mounts_read_only(driver):
    add_layer(driver, "base", None, ("a", b"1"))
    add_layer(driver, "top", "base", ("b", b"2"))
    merged = Path(driver.get("top"))
    try:
        assert sorted(os.listdir(merged)) == ["a", "b"]
        with pytest.raises(OSError) as e:
            (merged / "c").write_bytes(b"3")
        assert e.value.errno == errno.EROFS
    finally:
        driver.put("top")
    assert mounts_below(driver.home) == []


def test_base_layer_needs_no_mount(driver):
    add_layer(driver, "base", None, ("a", b"1"))
    path = driver.get("base")
    try:
        assert path == str(driver.home / "base" / "diff")
        assert mounts_below(driver.home) == []
        assert driver.mounted("base")
        with pytest.raises(LayerInUse):
            driver.remove("base")
    finally:
        driver.put("base")
    assert not driver.mounted("base")


def test_cleanup_releases_this_process_refs(make_driver):
    d = make_driver()
    add_layer(d, "img", None, ("f", b"x"))
    d.create_rw("ctr", "img")
    merged = d.get("ctr")
    d.get("ctr")
    d.cleanup()
    assert not os.path.ismount(merged) and not d.mounted("ctr")


def test_legacy_mount_method(make_driver):
    d = make_driver(mount_method="mount")
    assert ("Mount method", "mount(2) with short l/ links") in d.status()
    add_layer(d, "base", None, ("a", b"1"))
    add_layer(d, "top", "base", ("b", b"2"))
    d.create_rw("ctr", "top")
    merged = Path(d.get("ctr"))
    try:
        assert sorted(os.listdir(merged)) == ["a", "b"]
        (merged / "c").write_bytes(b"3")
    finally:
        d.put("ctr")
    assert (d.home / "ctr" / "diff" / "c").read_bytes() == b"3"
