"""pull / push against a real registry (Debian's docker-registry) on 127.0.0.1.

A counting, fault-injecting proxy (registryfix.Proxy) sits in front of the registry where a
test needs to count blob requests or break answers; everything else is the real thing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from imagetar import Entry, config_for, docker_save, layer_tar
from pdcli import Pydock
from registryfix import REGISTRY_BIN, Proxy

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry absent")


def load_image(pd: Pydock, scratch: Path, layers: list[bytes], tag: str, arch: str = "amd64"):
    config = config_for(layers)
    if arch != "amd64":
        cfg = json.loads(config)
        cfg["architecture"] = arch
        config = json.dumps(cfg, sort_keys=True).encode()
    path = scratch / f"img-{abs(hash(tag))}.tar"
    path.write_bytes(docker_save(layers, tag, config=config))
    pd.out("load", "-i", str(path))


def inspect(pd: Pydock, ref: str) -> dict:
    return json.loads(pd.out("image", "inspect", ref))[0]


def pushed_digest(out: str) -> str:
    return re.search(r"digest: (sha256:[0-9a-f]{64}) size", out).group(1)


def store_state(pd: Pydock) -> tuple:
    """What must not change when a pull fails: images, tags and applied layers."""
    root = pd.root
    images = sorted(os.listdir(root / "images" / "sha256"))
    layers = sorted(os.listdir(root / "layerdb" / "vfs"))
    return images, (root / "repositories.json").read_text(), layers


BASE = layer_tar([Entry("base/", type=b"5", mode=0o755), Entry("base/file", b"base" * 5000)])


def test_push_rmi_pull_by_tag_and_digest(pd: Pydock, registry) -> None:
    name = f"{registry.host}/busybox:v1"
    original = inspect(pd, "busybox")
    pd.out("tag", "busybox", name)
    out = pd.out("push", name)
    assert "Pushed" in out
    assert "re-exported" not in out  # tar-split: the original layer tars went up
    digest = pushed_digest(out)
    pd.out("rmi", name, "busybox")  # the image and its layers are gone from the store
    assert pd("image", "inspect", original["Id"]).returncode != 0
    pulled = pd.out("pull", name)
    assert f"Digest: {digest}" in pulled
    assert f"Status: Downloaded newer image for {name}" in pulled
    first = inspect(pd, name)
    assert first["Id"] == original["Id"]
    assert first["RootFS"]["Layers"] == original["RootFS"]["Layers"]
    assert first["RepoDigests"] == [f"{registry.host}/busybox@{digest}"]
    # a pulled image is pushed back unchanged: same blobs, same manifest digest
    again = pd.out("push", name)
    assert "Layer already exists" in again and pushed_digest(again) == digest
    pd.out("rmi", name)
    by_digest = f"{registry.host}/busybox@{digest}"
    out = pd.out("pull", by_digest)
    assert f"Digest: {digest}" in out
    second = inspect(pd, by_digest)
    assert second["Id"] == first["Id"] == original["Id"]
    assert second["RootFS"]["Layers"] == first["RootFS"]["Layers"]
    assert pd.out("run", "--rm", by_digest, "echo", "hi").strip() == "hi"
    # pulling an image already here says so
    pd.out("tag", by_digest, name)
    assert f"Status: Image is up to date for {name}" in pd.out("pull", name)


def test_shared_layers_already_exist(pd: Pydock, scratch: Path, registry, proxy) -> None:
    a = layer_tar([Entry("a", b"only in a" * 1000)])
    b = layer_tar([Entry("b", b"only in b" * 1000)])
    load_image(pd, scratch, [BASE, a], f"{proxy.host}/app:a")
    load_image(pd, scratch, [BASE, b], f"{proxy.host}/app:b")
    pd.out("push", f"{proxy.host}/app:a")
    out = pd.out("push", f"{proxy.host}/app:b")
    assert "Layer already exists" in out  # the base, pushed with :a
    pd.out("rmi", f"{proxy.host}/app:a", f"{proxy.host}/app:b")
    pd.out("pull", f"{proxy.host}/app:a")
    proxy.requests.clear()
    out = pd.out("pull", f"{proxy.host}/app:b")
    assert out.count("Already exists") == 1 and out.count("Pull complete") == 1
    manifest = json.loads(
        urllib.request.urlopen(
            urllib.request.Request(
                f"http://{registry.host}/v2/app/manifests/b",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            )
        ).read()
    )
    new_layer, config = manifest["layers"][1]["digest"], manifest["config"]["digest"]
    assert sorted(p.rsplit("/", 1)[1] for p in proxy.blob_gets()) == sorted([new_layer, config])


def _put_index(registry, repo: str, tag: str, entries: list[tuple[str, str, int]]) -> None:
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": d,
                "size": size,
                "platform": {"os": "linux", "architecture": arch},
            }
            for d, arch, size in entries
        ],
    }
    req = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        data=json.dumps(index).encode(),
        method="PUT",
        headers={"Content-Type": index["mediaType"]},
    )
    assert urllib.request.urlopen(req).status == 201


def test_manifest_list_picks_platform(pd: Pydock, scratch: Path, registry) -> None:
    load_image(pd, scratch, [layer_tar([Entry("x", b"amd")])], f"{registry.host}/m:amd")
    load_image(pd, scratch, [layer_tar([Entry("x", b"arm")])], f"{registry.host}/m:arm", "arm64")
    entries = []
    for tag, arch in (("arm", "arm64"), ("amd", "amd64")):
        out = pd.out("push", f"{registry.host}/m:{tag}")
        size = int(re.search(r"size: (\d+)", out).group(1))
        entries.append((pushed_digest(out), arch, size))
    _put_index(registry, "m", "multi", entries)
    pd.out("pull", f"{registry.host}/m:multi")
    assert inspect(pd, f"{registry.host}/m:multi")["Architecture"] == "amd64"
    pd.out("pull", "--platform", "linux/arm64", f"{registry.host}/m:multi")
    assert inspect(pd, f"{registry.host}/m:multi")["Architecture"] == "arm64"
    res = pd("pull", "--platform", "linux/s390x", f"{registry.host}/m:multi")
    assert res.returncode == 1
    assert "no matching manifest for linux/s390x" in res.stderr.decode()


@pytest.fixture
def pushed(pd: Pydock, scratch: Path, proxy) -> str:
    """An image in the registry (two layers, ~400 kB) and gone from the local store."""
    big = layer_tar([Entry("big", os.urandom(400_000))])
    name = f"{proxy.host}/faulty:v1"
    load_image(pd, scratch, [BASE, big], name)
    pd.out("push", name)
    pd.out("rmi", name)
    return name


def _layer_gets(proxy: Proxy) -> list[str]:
    return [p for p in proxy.blob_gets() if "/blobs/sha256:" in p]


def test_corrupted_blob_is_refused(pd: Pydock, proxy, pushed: str) -> None:
    before = store_state(pd)
    proxy.fault = lambda m, p: "corrupt" if m == "GET" and "/blobs/" in p else None
    res = pd("pull", pushed)
    assert res.returncode == 1
    err = res.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "digest mismatch" in err
    assert store_state(pd) == before
    proxy.fault = None
    assert "Downloaded newer image" in pd.out("pull", pushed)


def test_500_then_recover_and_truncated_download_resumes(pd: Pydock, proxy, pushed) -> None:
    failures = {"500": 2, "truncate": 1}
    seen = []

    def fault(method: str, path: str) -> str | None:
        if method != "GET" or "/blobs/" not in path:
            return None
        seen.append(path)
        if len(seen) == 1:
            return None  # the config blob; the faults are for the layers
        for kind in ("500", "truncate"):
            if failures[kind]:
                failures[kind] -= 1
                return kind
        return None

    proxy.fault = fault
    out = pd.out("pull", pushed)
    assert "Downloaded newer image" in out
    assert failures == {"500": 0, "truncate": 0}
    # the truncated blob was resumed with a Range request, not restarted
    assert "Retrying" in out
    assert proxy.ranges and all(r != "bytes=0-" for _p, r in proxy.ranges)
    assert len(inspect(pd, pushed)["RootFS"]["Layers"]) == 2


def test_truncated_every_time_fails_cleanly_then_resumes(pd: Pydock, proxy, pushed) -> None:
    before = store_state(pd)
    seen: list[str] = []

    def fault(method: str, path: str) -> str | None:
        if method == "GET" and "/blobs/sha256" in path:
            seen.append(path)
            return "truncate" if len(seen) > 1 else None  # the config passes
        return None

    proxy.fault = fault
    res = pd("pull", pushed)
    assert res.returncode == 1
    assert "pull again to resume" in res.stderr.decode()
    assert store_state(pd) == before
    partials = list((pd.root / "distribution" / "downloads").glob("*.partial"))
    assert partials and all(p.stat().st_size > 0 for p in partials)
    proxy.fault = None
    assert "Downloaded newer image" in pd.out("pull", pushed)
    assert not list((pd.root / "distribution" / "downloads").iterdir())


def test_kill_9_during_pull_then_pull_again(pd: Pydock, proxy, pushed) -> None:
    started = []

    def slow(method: str, path: str) -> None:
        if method == "GET" and "/blobs/sha256" in path:
            started.append(path)
            time.sleep(30)  # held until the puller is killed
        return None

    proxy.fault = slow
    before = store_state(pd)
    proc = pd.popen("pull", pushed)
    try:
        deadline = time.monotonic() + 20
        while not started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    proxy.fault = None
    assert store_state(pd) == before
    assert "Downloaded newer image" in pd.out("pull", pushed)
    assert len(inspect(pd, pushed)["RootFS"]["Layers"]) == 2
    assert not list((pd.root / "distribution" / "downloads").iterdir())


def test_unknown_tag_and_bad_reference(pd: Pydock, registry) -> None:
    res = pd("pull", f"{registry.host}/nothing:here")
    assert res.returncode == 1
    err = res.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "manifest unknown" in err
    res = pd("pull", "UPPER/Case")
    assert res.returncode == 1 and "invalid reference format" in res.stderr.decode()
