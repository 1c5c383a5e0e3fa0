"""Probes say why a host cannot run overlay2, on real unsupported homes."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from ovl_helpers import add_layer
from pydock.drivers.base import NotSupported
from pydock.nsutil import syscalls as sc
from pydock.overlay import probe as probe_mod
from pydock.overlay.driver import Overlay2Driver


def test_supported_home_status(driver):
    status = dict(driver.status())
    assert status["Backing Filesystem"] == probe_mod.docker_fs_name(
        probe_mod.backing_fs(driver.home)
    )
    assert status["Supports d_type"] == "true"
    assert status["Native Overlay Diff"] == "true"
    assert status["Using metacopy"] == "false"
    assert status["Mount method"] == "fsconfig lowerdir+ (new mount API)"  # kernel 6.18


def test_probe_result_is_cached(mount_guard):
    home = mount_guard / "overlay2"
    Overlay2Driver.probe(home)
    cache = home / probe_mod.CACHE_NAME
    data = json.loads(cache.read_text())
    assert data["supported"] and data["kernel"] == os.uname().release
    # A cached verdict is believed without re-probing (no test mount at start-up) ...
    data.update(supported=False, reason="cached verdict")
    cache.write_text(json.dumps(data))
    with pytest.raises(NotSupported, match="cached verdict"):
        Overlay2Driver.probe(home)
    # ... until the kernel (or home's device) changes.
    data.update(kernel="0.0.0-other")
    cache.write_text(json.dumps(data))
    Overlay2Driver.probe(home)
    assert json.loads(cache.read_text())["supported"]


def _mount_overlay_at(base: Path) -> Path:
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir()
    sc.mount(
        "overlay", base / "merged", "overlay", 0,
        f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work",
    )  # fmt: skip
    return base / "merged"


def test_home_on_overlay_is_refused(mount_guard):
    merged = _mount_overlay_at(mount_guard)
    try:
        with pytest.raises(NotSupported, match="overlayfs"):
            Overlay2Driver.probe(merged / "overlay2")
        with pytest.raises(NotSupported):
            Overlay2Driver(merged / "overlay2")
    finally:
        sc.umount(merged)


def test_home_without_trusted_xattrs_is_refused(mount_guard):
    """ramfs has no xattrs, so opaque directories cannot be stored there."""
    point = mount_guard / "ramfs"
    point.mkdir()
    sc.mount("ramfs", point, "ramfs", 0, None)
    try:
        with pytest.raises(NotSupported, match="xattr"):
            Overlay2Driver.probe(point / "overlay2")
    finally:
        sc.umount(point)


def test_home_on_tmpfs_is_fine(mount_guard):
    point = mount_guard / "tmpfs"
    point.mkdir()
    sc.mount("tmpfs", point, "tmpfs", 0, "size=16m")
    try:
        d = Overlay2Driver(point / "overlay2")
        assert dict(d.status())["Backing Filesystem"] == "tmpfs"
    finally:
        sc.umount(point)


def test_metacopy_is_probed_and_opt_in(make_driver):
    plain = make_driver()
    assert dict(plain.status())["Using metacopy"] == "false"
    d = make_driver(mountopt="metacopy=on")
    status = dict(d.status())
    if not d.probed.metacopy:
        pytest.skip("this kernel does not honour metacopy=on")
    assert status["Using metacopy"] == "true"
    # The upper dir is no longer a complete diff, so diffs compare mounted trees instead.
    assert status["Native Overlay Diff"] == "false"
    add_layer(d, "img", None, ("f", b"data"))
    d.create_rw("ctr", "img")
    merged = Path(d.get("ctr"))
    try:
        os.chmod(merged / "f", 0o600)  # metadata-only copy-up
        assert os.getxattr(d.home / "ctr" / "diff" / "f", "trusted.overlay.metacopy") is not None
    finally:
        d.put("ctr")
    out = io.BytesIO()
    d.diff("ctr", out)
    out.seek(0)
    with tarfile.open(fileobj=out) as t:
        f = t.extractfile("f")
        assert f is not None and f.read() == b"data"  # the data, not the empty upper stub
    assert [c.path for c in d.changes("ctr")] == ["/f"]


def test_fsconfig_refused_at_create_falls_back_to_mount2(mount_guard, monkeypatch):
    # Kernels before 6.5 (Debian 12's 6.1) take any fsconfig key and refuse lowerdir+ only
    # at FSCONFIG_CMD_CREATE. This kernel has lowerdir+, so that refusal is a FAKE here:
    # CMD_CREATE fails with 6.1's errno. The real 6.1 runs in the guests (tests/guests).
    real = sc.fsconfig_create

    def create_as_on_6_1(fd: int) -> None:
        raise OSError(22, "fsconfig cmd 6: Invalid argument")

    monkeypatch.setattr(sc, "fsconfig_create", create_as_on_6_1)
    result = probe_mod.run_probe(mount_guard)
    assert result.supported, result.reason
    assert result.method == "mount"
    assert result.method_note.startswith("a test mount with fsconfig lowerdir+ was refused")
    # pydock info shows why (the driver's status)
    d = Overlay2Driver(mount_guard / "old")
    assert dict(d.status())["Mount method"] == (
        "mount(2) with short l/ links (a test mount with fsconfig lowerdir+ was refused: "
        "fsconfig cmd 6: Invalid argument)"
    )
    monkeypatch.setattr(sc, "fsconfig_create", real)
    d = Overlay2Driver(mount_guard / "new")  # the real kernel: no note
    assert dict(d.status())["Mount method"] == "fsconfig lowerdir+ (new mount API)"
