"""overlay2 keeps Docker's on-disk layout: <id>/{diff,link,lower,work,merged} and l/ links."""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import pytest
from ovl_helpers import add_layer, layer_tar
from pydock.drivers.base import DriverError, LayerExists, LayerInUse, LayerNotFound

SHORT = re.compile(r"^[A-Z2-7]{26}$")


def test_layout_and_link_names(driver):
    home = driver.home
    add_layer(driver, "base", None, ("a", b"1"))
    add_layer(driver, "mid", "base", ("b", b"2"))
    driver.create_rw("ctr", "mid")

    shorts = {}
    for id in ("base", "mid", "ctr"):
        short = (home / id / "link").read_text()
        assert SHORT.match(short), short
        link = home / "l" / short
        assert os.readlink(link) == f"../{id}/diff"
        assert link.resolve() == (home / id / "diff").resolve()
        shorts[id] = short
    assert len(set(shorts.values())) == 3

    assert not (home / "base" / "lower").exists()  # a base layer has no lower file
    assert (home / "mid" / "lower").read_text() == f"l/{shorts['base']}"
    assert (home / "ctr" / "lower").read_text() == f"l/{shorts['mid']}:l/{shorts['base']}"
    # Only the writable layer has overlay's workdir.
    assert (home / "ctr" / "work").is_dir()
    assert not (home / "mid" / "work").exists()
    assert driver.parent("ctr") == "mid" and driver.parent("base") is None
    assert driver.list_layers() == ["base", "ctr", "mid"]
    assert stat.S_IMODE(os.stat(home / "ctr" / "diff").st_mode) == 0o755


def test_metadata_is_docker_graphdriver_data(driver):
    add_layer(driver, "base", None, ("a", b"1"))
    driver.create_rw("ctr", "base")
    md = driver.metadata("ctr")
    home = driver.home
    assert md == {
        "LowerDir": str(home / "base" / "diff"),
        "UpperDir": str(home / "ctr" / "diff"),
        "WorkDir": str(home / "ctr" / "work"),
        "MergedDir": str(home / "ctr" / "merged"),
    }


def test_create_errors(driver):
    driver.create("a", None)
    with pytest.raises(LayerExists):
        driver.create("a", None)
    with pytest.raises(LayerNotFound):
        driver.create("b", "nope")
    for bad in ("", "..", "x/y", "l", ".tmp-x"):
        with pytest.raises(DriverError):
            driver.create(bad, None)
    driver.create("b", "a")
    with pytest.raises(LayerInUse):
        driver.remove("a")  # has a child
    driver.remove("b")
    driver.remove("a")
    assert driver.list_layers() == []
    assert os.listdir(driver.home / "l") == []


def test_remove_drops_link_and_dir(driver):
    add_layer(driver, "a", None, ("f", b"x"))
    short = (driver.home / "a" / "link").read_text()
    driver.remove("a")
    assert not (driver.home / "a").exists()
    assert not os.path.lexists(driver.home / "l" / short)
    assert not driver.exists("a")


def test_usage_is_recorded_not_walked(driver):
    add_layer(driver, "a", None, ("f", b"x" * 10000))
    u = driver.usage("a")
    assert u.inodes == 2 and u.size >= 10000
    # usage() reads the record: a file slipped into diff behind the driver's back is not
    # seen until the layer's data changes through the driver again.
    (driver.home / "a" / "diff" / "sneaky").write_bytes(b"y" * 50000)
    assert driver.usage("a") == u

    driver.create_rw("c", "a")
    before = driver.usage("c")
    merged = driver.get("c")
    Path(merged, "big").write_bytes(b"z" * 100_000)
    assert driver.usage("c") == before  # recorded at the last put, not on demand
    driver.put("c")
    after = driver.usage("c")
    assert after.size >= before.size + 100_000 and after.inodes == before.inodes + 1


def test_apply_diff_refuses_wrong_parent_and_nonempty(driver):
    add_layer(driver, "a", None, ("f", b"x"))
    driver.create("b", "a")

    with pytest.raises(DriverError):
        driver.apply_diff("b", "nope", layer_tar(("g", b"y")))
    with pytest.raises(DriverError):
        driver.apply_diff("a", None, layer_tar(("g", b"y")))


def test_failed_apply_leaves_no_layer(driver):
    driver.create("bad", None)
    with pytest.raises(DriverError):
        driver.apply_diff("bad", None, io.BytesIO(b"this is not a tar" * 100))
    assert not driver.exists("bad")
    assert [n for n in os.listdir(driver.home) if n.startswith(".tmp-")] == []
