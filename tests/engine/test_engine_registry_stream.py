"""pull against a real registry (docker-registry on 127.0.0.1): zstd layers, and layers
applied while later ones still download, with rollback when a later one fails.

Images with zstd layers are pushed as hand-built OCI manifests over the registry's HTTP API
(registryfix.push_oci_image). A slow last layer is a registryfix.Proxy fault that holds
that blob's GET until the test lets it go (or corrupts it).
"""

from __future__ import annotations

import json
import os
import signal
import tarfile
import threading
import time
from pathlib import Path

import pytest
from imagetar import Entry, compress_layer, config_for, layer_tar, sha
from pdcli import Pydock
from pydock.engine.images import chain_ids
from registryfix import REGISTRY_BIN, push_oci_image

BUSYBOX = Path("/bin/busybox")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry absent"),
    pytest.mark.skipif(not BUSYBOX.is_file(), reason="needs the host's /bin/busybox"),
]


def base() -> bytes:
    """busybox with sh, and /etc/msg: enough to run ``cat``."""
    return layer_tar(
        [
            Entry("bin", type=tarfile.DIRTYPE, mode=0o755),
            Entry("bin/busybox", BUSYBOX.read_bytes(), mode=0o755),
            Entry("bin/sh", type=tarfile.SYMTYPE, link="busybox"),
            Entry("bin/cat", type=tarfile.SYMTYPE, link="busybox"),
            Entry("etc", type=tarfile.DIRTYPE, mode=0o755),
            Entry("etc/msg", b"from the base\n"),
        ]
    )


def app(n: int, size: int = 1000) -> bytes:
    return layer_tar([Entry("etc", type=tarfile.DIRTYPE, mode=0o755),
                      Entry(f"etc/app{n}", os.urandom(size))])  # fmt: skip


def push(host: str, name: str, layers: list[bytes], codecs: list[str]) -> list[bytes]:
    """Push ``layers`` compressed with ``codecs`` as ``host/name``; the layer blobs."""
    blobs = [compress_layer(x, c) for x, c in zip(layers, codecs, strict=True)]
    repo, tag = name.split(":")
    push_oci_image(host, repo, tag, config_for(layers), blobs)
    return [b for b, _mt in blobs]


def store_state(pd: Pydock) -> tuple:
    """What must not change when a pull fails: images, tags and applied layers."""
    root = pd.root
    images = sorted(os.listdir(root / "images" / "sha256"))
    layers = sorted(os.listdir(root / "layerdb" / "vfs"))
    return images, (root / "repositories.json").read_text(), layers


def record(pd: Pydock, chain: str) -> Path:
    return pd.root / "layerdb" / "vfs" / (chain[7:] + ".json")


def one_line(res) -> str:
    err = res.stderr.decode().strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# -- zstd ---------------------------------------------------------------------------------
def test_zstd_layers_pull_and_run(pd: Pydock, registry) -> None:
    layers = [base(), app(1)]
    name = f"{registry.host}/zimg:v1"
    push(registry.host, "zimg:v1", layers, ["zstd", "zstd"])
    out = pd.out("pull", name)
    assert out.count("Pull complete") == 2 and "Downloaded newer image" in out
    info = json.loads(pd.out("image", "inspect", name))[0]
    assert info["RootFS"]["Layers"] == [sha(x) for x in layers]  # the uncompressed diff ids
    assert pd.out("run", "--rm", name, "cat", "/etc/msg") == "from the base\n"
    # a gzip image on the same zstd base: the base is shared, not fetched again
    gz = f"{registry.host}/zimg:gz"
    push(registry.host, "zimg:gz", [layers[0], app(2)], ["zstd", "gzip"])
    out = pd.out("pull", gz)
    assert out.count("Already exists") == 1 and out.count("Pull complete") == 1


def test_corrupt_zstd_layer_is_refused_and_rolled_back(pd: Pydock, registry) -> None:
    layers = [base(), app(1, 50_000)]
    blob, mt = compress_layer(layers[1], "zstd")
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0xFF  # the frame checksum no longer matches
    before = store_state(pd)
    # the manifest names the corrupt bytes: the download verifies, the decompression fails
    repo_config = config_for(layers)
    push_oci_image(registry.host, "zbad", "v1", repo_config,
                   [compress_layer(layers[0], "gzip"), (bytes(bad), mt)])  # fmt: skip
    res = pd("pull", f"{registry.host}/zbad:v1")
    assert res.returncode == 1
    assert "invalid zstd-compressed layer" in one_line(res)
    out = res.stdout.decode()
    assert out.count("Pull complete") == 1  # the base went in first ...
    assert store_state(pd) == before  # ... and was rolled back
    assert not list((pd.root / "distribution" / "pins").iterdir())


# -- layers applied while the last one downloads -------------------------------------------
class HeldBlob:
    """A proxy fault holding the GET of one blob until ``let_go(action)``."""

    def __init__(self, digest: str) -> None:
        self.digest = digest
        self.arrived = threading.Event()
        self.gate = threading.Event()
        self.action: str | None = None

    def __call__(self, method: str, path: str) -> str | None:
        if method == "GET" and path.endswith("/blobs/" + self.digest):
            self.arrived.set()
            self.gate.wait(60)
            return self.action
        return None

    def let_go(self, action: str | None = None) -> None:
        self.action = action
        self.gate.set()


def wait_for(cond, what: str, timeout: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def slow_last(pd: Pydock, proxy):
    """A three-layer image whose last layer's download is held by the proxy."""
    layers = [base(), app(1), app(2, 300_000)]
    name = f"{proxy.host}/slow:v1"
    blobs = push(proxy.host, "slow:v1", layers, ["gzip", "zstd", "gzip"])
    held = HeldBlob(sha(blobs[2]))
    proxy.fault = held
    try:
        yield name, chain_ids([sha(x) for x in layers]), held
    finally:
        held.let_go()
        proxy.fault = None


def test_first_layers_applied_before_last_download_ends(pd: Pydock, slow_last) -> None:
    name, chains, held = slow_last
    proc = pd.popen("pull", name)
    try:
        wait_for(held.arrived.is_set, "the last layer's GET")
        wait_for(lambda: record(pd, chains[1]).exists(), "the second layer's record")
        assert record(pd, chains[0]).exists() and not record(pd, chains[2]).exists()
        assert proc.poll() is None  # still downloading the last layer
        # a prune meanwhile must not take the applied layers: the pull holds them
        pd.out("image", "prune", "-a", "-f")
        assert record(pd, chains[0]).exists() and record(pd, chains[1]).exists()
        held.let_go()
        assert proc.wait(60) == 0
    finally:
        held.let_go()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert all(record(pd, c).exists() for c in chains)
    assert pd.out("run", "--rm", name, "cat", "/etc/msg") == "from the base\n"
    assert not list((pd.root / "distribution" / "pins").iterdir())


def test_last_layer_failure_rolls_back_the_applied_ones(pd: Pydock, slow_last) -> None:
    name, chains, held = slow_last
    before = store_state(pd)
    proc = pd.popen("pull", name)
    try:
        wait_for(lambda: record(pd, chains[1]).exists(), "the second layer's record")
        held.let_go("corrupt")
        assert proc.wait(60) == 1
    finally:
        held.let_go()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert store_state(pd) == before
    assert not list((pd.root / "distribution" / "pins").iterdir())


def test_kill_9_after_some_layers_applied(pd: Pydock, slow_last) -> None:
    name, chains, held = slow_last
    before = store_state(pd)
    proc = pd.popen("pull", name)
    try:
        wait_for(lambda: record(pd, chains[1]).exists(), "the second layer's record")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    held.let_go()
    # the dead pull's pin is stale: prune rolls back what it applied and drops the pin
    assert list((pd.root / "distribution" / "pins").iterdir())
    pd.out("image", "prune", "-f")
    assert store_state(pd) == before
    assert not list((pd.root / "distribution" / "pins").iterdir())
    out = pd.out("pull", name)
    assert "Downloaded newer image" in out and out.count("Pull complete") == 3


def test_kill_9_then_pull_again_reuses_the_applied_layers(pd: Pydock, slow_last) -> None:
    name, chains, held = slow_last
    proc = pd.popen("pull", name)
    try:
        wait_for(lambda: record(pd, chains[1]).exists(), "the second layer's record")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    held.let_go()
    out = pd.out("pull", name)  # the next pull takes over the dead one's layers
    assert out.count("Already exists") == 2 and out.count("Pull complete") == 1
    assert not list((pd.root / "distribution" / "pins").iterdir())
    assert pd.out("run", "--rm", name, "cat", "/etc/msg") == "from the base\n"


def test_failed_pull_keeps_layers_another_pull_used(pd: Pydock, proxy, slow_last) -> None:
    """Pull B takes A's freshly applied base as ``Already exists`` and finishes; then A
    fails: its rollback must leave the base, which B's image now names."""
    name, chains, held = slow_last
    other = f"{proxy.host}/other:v1"
    push(proxy.host, "other:v1", [base(), app(3)], ["gzip", "gzip"])
    proc = pd.popen("pull", name)
    try:
        wait_for(lambda: record(pd, chains[1]).exists(), "the second layer's record")
        out = pd.out("pull", other)
        assert out.count("Already exists") == 1  # the base A applied
        held.let_go("corrupt")
        assert proc.wait(60) == 1
    finally:
        held.let_go()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert record(pd, chains[0]).exists() and not record(pd, chains[1]).exists()
    assert pd.out("run", "--rm", other, "cat", "/etc/msg") == "from the base\n"
