"""Long layer chains: fsconfig("lowerdir+") per layer reaches overlay's 500-layer limit.

With mount(2) all lower dirs share one page of options; with the new mount API each layer is
its own fsconfig call (Linux >= 6.8), so the only limit left is overlay's OVL_MAX_STACK (500).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import mounts_below
from ovl_helpers import add_layer
from pydock.drivers.base import DriverError


def _chain(driver, n: int) -> list[str]:
    ids = [f"l{i:03d}" for i in range(n)]
    parent = None
    for i, id in enumerate(ids):
        add_layer(driver, id, parent, (f"f{i:03d}", str(i).encode()), ("shared", str(i).encode()))
        parent = id
    return ids


def _mount_lines(point: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if line.split()[4] == point]


@pytest.mark.parametrize("n", [200, 500])
def test_long_chain_mounts_with_lowerdir_plus(make_driver, n):
    d = make_driver(mount_method="fsconfig")
    ids = _chain(d, n - 1)
    d.create_rw("ctr", ids[-1])  # n-1 image layers below the container's upper
    merged = d.get("ctr")
    try:
        lines = _mount_lines(merged)
        assert len(lines) == 1
        assert lines[0].count("lowerdir+=") == n - 1
        assert Path(merged, "f000").read_bytes() == b"0"  # from the bottom layer
        assert Path(merged, f"f{n - 2:03d}").read_bytes() == str(n - 2).encode()
        assert Path(merged, "shared").read_bytes() == str(n - 2).encode()  # top layer wins
        Path(merged, "written").write_bytes(b"w")
    finally:
        d.put("ctr")
    assert not _mount_lines(merged) and mounts_below(d.home) == []
    assert Path(d.home, "ctr", "diff", "written").read_bytes() == b"w"


def test_500_image_layers_mount_read_only(make_driver):
    d = make_driver(mount_method="fsconfig")
    ids = _chain(d, 500)
    merged = d.get(ids[-1])  # its own diff plus 499 parents: exactly 500 lower dirs
    try:
        assert Path(merged, "f000").read_bytes() == b"0"
        assert len(os.listdir(merged)) == 501
    finally:
        d.put(ids[-1])
    assert mounts_below(d.home) == []
    # One more would exceed overlay's stack limit: refused up front with the reason.
    with pytest.raises(DriverError, match="at most 500"):
        d.create("one-too-many", ids[-1])
    d.create_rw("ctr", ids[-1])  # but a writable layer on top still fits (500 lowers)


def test_legacy_mount_shortens_paths_and_explains_its_limit(make_driver):
    d = make_driver(mount_method="mount")
    ids = _chain(d, 120)
    d.create_rw("ctr", ids[-1])
    # 120 absolute l/ paths overflow one page; relative to home they fit (the chdir trick).
    assert 120 * len(f"{d.home}/l/{'X' * 26}:") > 4096
    cwd = os.getcwd()
    merged = d.get("ctr")
    try:
        assert os.getcwd() == cwd
        assert Path(merged, "f000").read_bytes() == b"0"
    finally:
        d.put("ctr")
    parent = ids[-1]
    for i in range(60):
        add_layer(d, f"n{i:03d}", parent, (f"n{i}", b"n"))
        parent = f"n{i:03d}"
    d.create_rw("ctr2", parent)
    with pytest.raises(DriverError, match="lowerdir\\+"):
        d.get("ctr2")  # 180 layers do not fit one page even as l/ links
    assert mounts_below(d.home) == []
