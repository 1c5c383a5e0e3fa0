"""vfs specifics the conformance suite does not cover: layout, recovery, status."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from layertar import f, tar_bytes
from pydock.drivers.base import DriverError, LayerExists, LayerInUse, LayerNotFound
from pydock.drivers.vfs import VfsDriver, backing_filesystem


def test_layers_are_independent_copies(scratch: Path) -> None:
    drv = VfsDriver(scratch / "vfs")
    drv.create("a", None)
    drv.apply_diff("a", None, io.BytesIO(tar_bytes(f("x", b"1"))))
    drv.create_rw("b", "a")
    Path(drv.get("b"), "x").write_bytes(b"2")
    drv.put("b")
    assert Path(drv.get("a"), "x").read_bytes() == b"1"
    drv.put("a")
    with pytest.raises(LayerInUse, match="child layers: b"):
        drv.remove("a")


def test_errors(scratch: Path) -> None:
    drv = VfsDriver(scratch / "vfs")
    with pytest.raises(LayerNotFound):
        drv.create("x", "missing")
    drv.create("x", None)
    with pytest.raises(LayerExists):
        drv.create("x", None)
    with pytest.raises(DriverError, match="invalid layer id"):
        drv.create("../x", None)
    with pytest.raises(DriverError, match="not mounted"):
        drv.put("x")
    drv.get("x")
    with pytest.raises(LayerInUse):
        drv.apply_diff("x", None, io.BytesIO(tar_bytes(f("y"))))
    drv.put("x")


def test_recovery_removes_half_registered_layers(scratch: Path) -> None:
    home = scratch / "vfs"
    drv = VfsDriver(home)
    drv.create("ok", None)
    os.mkdir(home / "dir/orphan-tree")  # crash between rename and metadata write
    (home / "meta/orphan-meta.json").write_text('{"parent": null}')  # crash mid-apply
    os.mkdir(home / ".tmp-dead-1234")  # crash mid-build
    VfsDriver(home)
    assert sorted(os.listdir(home / "dir")) == ["ok"]
    assert sorted(os.listdir(home / "meta")) == ["ok.json"]
    assert not [n for n in os.listdir(home) if n.startswith(".tmp-")]


def test_usage_recorded_on_last_put(scratch: Path) -> None:
    drv = VfsDriver(scratch / "vfs")
    drv.create_rw("c", None)
    before = drv.usage("c")
    root = drv.get("c")
    drv.get("c")
    Path(root, "blob").write_bytes(os.urandom(256 * 1024))
    drv.put("c")
    assert drv.usage("c") == before  # still mounted: as of the last unmount
    drv.put("c")
    after = drv.usage("c")
    assert after.size >= before.size + 256 * 1024 and after.inodes == before.inodes + 1


def test_status_names_backing_filesystem(scratch: Path) -> None:
    drv = VfsDriver(scratch / "vfs")
    (key, value), *_ = drv.status()
    assert key == "Backing Filesystem"
    fstype = backing_filesystem(scratch)
    assert value == fstype and fstype not in ("", "unknown")
    assert backing_filesystem("/proc/self") == "proc"
