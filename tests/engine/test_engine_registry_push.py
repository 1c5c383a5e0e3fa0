"""push's upload paths and pull -a, against the real registry through the counting proxy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from imagetar import Entry, docker_save, layer_tar
from pdcli import Pydock
from registryfix import REGISTRY_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry absent")


def _load(pd: Pydock, scratch: Path, layers: list[bytes], tag: str) -> None:
    path = scratch / f"{tag.replace('/', '_').replace(':', '_')}.tar"
    path.write_bytes(docker_save(layers, tag))
    pd.out("load", "-i", str(path))


def _image_id(pd: Pydock, ref: str) -> str:
    return pd.out("image", "inspect", "-f", "{{.Id}}", ref).strip()


def test_chunked_upload(pd: Pydock, scratch: Path, proxy) -> None:
    """A layer larger than the chunk size goes up in PATCH requests, then comes back whole."""
    big = layer_tar([Entry("big", os.urandom(300_000))])
    name = f"{proxy.host}/chunked:v1"
    _load(pd, scratch, [big], name)
    before = _image_id(pd, name)
    env = {**os.environ, "PYDOCK_PUSH_CHUNK_SIZE": str(64 * 1024)}
    pd.out("push", name, env=env)
    patches = [p for m, p in proxy.requests if m == "PATCH"]
    assert len(patches) >= 4  # ~300 kB of compressed random data in 64 KiB chunks
    pd.out("rmi", name)
    pd.out("pull", name)
    assert _image_id(pd, name) == before


def test_cross_repository_mount(pd: Pydock, scratch: Path, proxy) -> None:
    """Pushing an image already in another repository of the registry mounts its blobs."""
    layer = layer_tar([Entry("data", os.urandom(50_000))])
    first = f"{proxy.host}/one/app:v1"
    _load(pd, scratch, [layer], first)
    pd.out("push", first)
    second = f"{proxy.host}/two/app:v1"
    pd.out("tag", first, second)
    proxy.requests.clear()
    out = pd.out("push", second)
    assert "Mounted from one/app" in out
    mounts = [p for m, p in proxy.requests if m == "POST" and "mount=" in p]
    assert mounts
    # no layer bytes went up again: no chunks, and the one monolithic upload is the small
    # image config (whose digest is the image id), which is not mounted
    assert not [p for m, p in proxy.requests if m == "PATCH"]
    uploads = [p for m, p in proxy.requests if m == "PUT" and "/blobs/uploads/" in p]
    assert all(p.endswith("digest=" + _image_id(pd, first)) for p in uploads)


def test_pull_all_tags(pd: Pydock, scratch: Path, registry) -> None:
    """pull -a fetches every tag of a repository."""
    repo = f"{registry.host}/multi"
    ids = {}
    for tag in ("a", "b"):
        layer = layer_tar([Entry(f"tag-{tag}", tag.encode() * 100)])
        _load(pd, scratch, [layer], f"{repo}:{tag}")
        ids[tag] = _image_id(pd, f"{repo}:{tag}")
        pd.out("push", f"{repo}:{tag}")
        pd.out("rmi", f"{repo}:{tag}")
    pd.out("pull", "-a", repo)
    for tag, image_id in ids.items():
        assert _image_id(pd, f"{repo}:{tag}") == image_id
