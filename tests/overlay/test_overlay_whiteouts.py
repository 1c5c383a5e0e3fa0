"""Whiteouts: tar form <-> overlayfs form (Documentation/filesystems/overlayfs.rst).

On disk a deleted name is a 0/0 character device and an opaque directory carries
``trusted.overlay.opaque=y``; diff() turns both back into ``.wh.NAME`` / ``.wh..wh..opq``.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile

from ovl_helpers import add_layer
from pydock.drivers.base import Change, ChangeKind
from pydock.drivers.layers import tree_changes


def _lower_stack(driver):
    add_layer(
        driver, "base", None,
        ("etc", None), ("etc/passwd", b"root"), ("etc/gone", b"g"),
        ("opq", None), ("opq/old", b"o"), ("opq/sub", None), ("opq/sub/deep", b"d"),
        ("keep", b"k"),
    )  # fmt: skip
    add_layer(
        driver, "top", "base",
        ("etc", None), ("etc/.wh.gone", b""),
        ("opq", None), ("opq/.wh..wh..opq", b""), ("opq/new", b"n"),
    )  # fmt: skip


def test_whiteouts_on_disk(driver):
    _lower_stack(driver)
    diff = driver.home / "top" / "diff"
    st = os.lstat(diff / "etc" / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not os.path.lexists(diff / "etc" / ".wh.gone")
    assert os.getxattr(diff / "opq", "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(diff / "opq" / ".wh..wh..opq")
    # The layer below is untouched.
    assert (driver.home / "base" / "diff" / "etc" / "gone").read_bytes() == b"g"


def test_merged_view_honours_whiteouts(driver):
    _lower_stack(driver)
    merged = driver.get("top")
    try:
        assert sorted(os.listdir(merged)) == ["etc", "keep", "opq"]
        assert sorted(os.listdir(os.path.join(merged, "etc"))) == ["passwd"]
        assert sorted(os.listdir(os.path.join(merged, "opq"))) == ["new"]
    finally:
        driver.put("top")


def test_diff_converts_back_to_tar_whiteouts(driver):
    _lower_stack(driver)
    out = io.BytesIO()
    driver.diff("top", out)
    out.seek(0)
    with tarfile.open(fileobj=out) as t:
        members = {m.name: m for m in t}
    assert set(members) == {"etc", "etc/.wh.gone", "opq", "opq/.wh..wh..opq", "opq/new"}
    assert members["etc/.wh.gone"].isreg() and members["etc/.wh.gone"].size == 0
    # overlayfs' own bookkeeping never leaks into the tar
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for k in members["opq"].pax_headers)


def test_diff_round_trips_onto_the_parent(driver):
    _lower_stack(driver)
    out = io.BytesIO()
    driver.diff("top", out)
    out.seek(0)
    driver.create("copy", "base")
    driver.apply_diff("copy", "base", out)
    a, b = driver.get("top"), driver.get("copy")
    try:
        assert tree_changes(b, a) == []
    finally:
        driver.put("copy")
        driver.put("top")


def test_changes_match_a_full_tree_comparison(driver):
    """changes() reads only the upper dir, yet agrees with comparing the mounted trees."""
    _lower_stack(driver)
    driver.create_rw("ctr", "top")
    merged = driver.get("ctr")
    try:
        with open(os.path.join(merged, "etc", "passwd"), "a") as f:
            f.write("more")  # modify (copy-up)
        os.unlink(os.path.join(merged, "keep"))  # delete from a lower layer
        os.mkdir(os.path.join(merged, "newdir"))
        with open(os.path.join(merged, "newdir", "f"), "w") as f:
            f.write("new")
        os.unlink(os.path.join(merged, "opq", "new"))  # delete what the layer below added
        os.chmod(os.path.join(merged, "etc", "passwd"), 0o600)
        native = driver.changes("ctr")
        parent = driver.get("top")
        try:
            naive = tree_changes(merged, parent)
        finally:
            driver.put("top")
    finally:
        driver.put("ctr")
    assert native == naive
    assert Change("/keep", ChangeKind.DELETE) in native
    assert Change("/newdir/f", ChangeKind.ADD) in native
    assert Change("/etc/passwd", ChangeKind.MODIFY) in native
    assert Change("/opq/new", ChangeKind.DELETE) in native


def test_changes_of_an_opaque_layer_list_hidden_children(driver):
    _lower_stack(driver)
    assert driver.changes("top") == [
        Change("/etc", ChangeKind.MODIFY),
        Change("/etc/gone", ChangeKind.DELETE),
        Change("/opq", ChangeKind.MODIFY),
        Change("/opq/new", ChangeKind.ADD),
        Change("/opq/old", ChangeKind.DELETE),
        Change("/opq/sub", ChangeKind.DELETE),
    ]
