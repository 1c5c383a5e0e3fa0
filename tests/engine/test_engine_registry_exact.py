"""Exact layer re-export (tar-split) end to end: a loaded docker-save image pushed, removed
and pulled back (by tag and by digest), and saved, keeps its image id on vfs and overlay2;
a layer that cannot be reproduced falls back to a re-export with a new, consistent id."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from pathlib import Path

import pytest
from imagetar import Entry, config_for, docker_save, layer_tar
from pdcli import Pydock
from registryfix import REGISTRY_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry absent")

BASE = layer_tar([
    Entry("etc/", type=b"5", mode=0o755),
    Entry("etc/data", b"base data\n" * 3000),
    Entry("etc/old", b"to be whited out"),
    Entry("etc/twin", type=b"1", link="etc/data"),
    Entry("bin/", type=b"5", mode=0o755),
    Entry("bin/sh-link", type=b"2", link="/bin/sh"),
])  # fmt: skip
TOP = layer_tar([
    Entry("etc/.wh.old"),
    Entry("etc/new", b"new file"),
    Entry("opt/", type=b"5", mode=0o755),
    Entry("opt/" + "x" * 120, b"long name via pax"),
])  # fmt: skip


@pytest.fixture(params=["vfs", "overlay2"])
def pd(request: pytest.FixtureRequest, scratch: Path):
    p = Pydock(scratch / "root", request.param)
    try:
        yield p
    finally:
        p.cleanup()


def _id(pd: Pydock, ref: str) -> str:
    return pd.out("image", "inspect", "-f", "{{.Id}}", ref).strip()


def _load(pd: Pydock, scratch: Path, layers: list[bytes], tag: str) -> str:
    path = scratch / "image.tar"
    path.write_bytes(docker_save(layers, tag, config=config_for(layers)))
    pd.out("load", "-i", str(path))
    return _id(pd, tag)


def _digest(out: str) -> str:
    return re.search(r"digest: (sha256:[0-9a-f]{64}) size", out).group(1)


def test_loaded_image_push_pull_keeps_id(pd: Pydock, scratch: Path, registry) -> None:
    name = f"{registry.host}/exact/app:v1"
    original = _load(pd, scratch, [BASE, TOP], name)
    assert original == "sha256:" + hashlib.sha256(config_for([BASE, TOP])).hexdigest()
    out = pd.out("push", name)
    assert "re-exported" not in out
    digest = _digest(out)
    pd.out("rmi", name)
    assert pd("image", "inspect", original).returncode != 0
    pd.out("pull", name)
    assert _id(pd, name) == original
    pd.out("rmi", name)
    pd.out("pull", f"{registry.host}/exact/app@{digest}")
    assert _id(pd, f"{registry.host}/exact/app@{digest}") == original


def test_bootstrapped_and_loaded_images_save_with_same_id(pd: Pydock, scratch: Path) -> None:
    pd.out("image", "bootstrap")
    loaded = _load(pd, scratch, [BASE, TOP], "loaded:1")
    busybox = _id(pd, "busybox")
    out = scratch / "both.tar"
    pd.out("save", "-o", str(out), "busybox", "loaded:1")
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        configs = {m["RepoTags"][0]: "sha256:" + m["Config"].rsplit("/", 1)[1] for m in manifest}
        # every layer blob hashes to its config's diff id: the original tars, unchanged
        for m in manifest:
            cfg = json.load(tar.extractfile(m["Config"]))
            got = ["sha256:" + p.rsplit("/", 1)[1] for p in m["Layers"]]
            assert got == cfg["rootfs"]["diff_ids"]
    assert configs == {"busybox:latest": busybox, "loaded:1": loaded}


def test_unreproducible_layer_falls_back(pd: Pydock, scratch: Path, registry) -> None:
    # the same path twice in one layer: the first payload is gone from the tree
    dup = layer_tar([Entry("f", b"first"), Entry("f", b"second")])
    name = f"{registry.host}/exact/dup:v1"
    original = _load(pd, scratch, [dup], name)
    out = pd.out("push", name)
    assert "re-exported" in out
    pushed_id = re.search(r"image's id is (sha256:[0-9a-f]{64})", out).group(1)
    assert pushed_id != original
    pd.out("rmi", name)
    pd.out("pull", name)  # every digest of the re-exported image verifies
    assert _id(pd, name) == pushed_id
    assert pd.out("image", "inspect", "-f", "{{.Size}}", name).strip() == "6"
