"""Interoperability with other image tools over the test registry (Debian's docker-registry
on 127.0.0.1): skopeo copies what pydock pushed into an OCI layout and pushes an OCI layout
pydock saved; a private dockerd (bench/targets.py's, own data root and socket, no bridge or
iptables) pulls what pydock pushed and pushes what pydock pulls. Each part skips with the
reason when its tool is absent or cannot run here."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from pdcli import Pydock
from registryfix import REGISTRY_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry absent")

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_LAYERS = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
)


def _id(pd: Pydock, ref: str) -> str:
    return pd.out("image", "inspect", "-f", "{{.Id}}", ref).strip()


# -- skopeo ---------------------------------------------------------------------------------


def _skopeo(*args: str) -> str:
    p = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def _check_oci_layout(layout: Path) -> dict:
    """Every blob hashes to its name; media types are OCI's; returns the image config."""
    assert json.loads((layout / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"
    blobs = layout / "blobs" / "sha256"
    for blob in blobs.iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    index = json.loads((layout / "index.json").read_text())
    (desc,) = index["manifests"]
    assert desc["mediaType"] == MT_OCI_MANIFEST
    manifest_bytes = (blobs / desc["digest"][7:]).read_bytes()
    assert len(manifest_bytes) == desc["size"]
    manifest = json.loads(manifest_bytes)
    assert manifest["config"]["mediaType"] == MT_OCI_CONFIG
    for layer in manifest["layers"]:
        assert layer["mediaType"] in OCI_LAYERS
        assert (blobs / layer["digest"][7:]).stat().st_size == layer["size"]
    return json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())


def _tar_dir(src: Path, dest: Path) -> None:
    with tarfile.open(dest, "w") as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, p.relative_to(src).as_posix(), recursive=False)


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo absent (Debian package skopeo)")
def test_skopeo_copies_both_ways(pd: Pydock, scratch: Path, registry) -> None:
    original = _id(pd, "busybox")
    name = f"{registry.host}/interop/busybox:v1"
    pd.out("tag", "busybox", name)
    pd.out("push", name)
    raw = json.loads(_skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{name}"))
    assert raw["mediaType"] == MT_DOCKER_MANIFEST and raw["schemaVersion"] == 2
    # registry -> OCI layout by skopeo. Converting the Docker manifest to OCI, skopeo
    # re-serialises the config (so the image id differs); the layers are pydock's own.
    layout = scratch / "from-registry"
    _skopeo("copy", "--src-tls-verify=false", f"docker://{name}", f"oci:{layout}:v1")
    config = _check_oci_layout(layout)
    layers = json.loads(pd.out("image", "inspect", "busybox"))[0]["RootFS"]["Layers"]
    assert config["rootfs"]["diff_ids"] == layers
    # ... loaded into a fresh pydock store, it runs
    other = Pydock(scratch / "root2", "vfs")
    archive = scratch / "from-registry.tar"
    _tar_dir(layout, archive)
    other.out("load", "-i", str(archive))
    (image,) = other.out("images", "-q", "--no-trunc").split()
    assert json.loads(other.out("image", "inspect", image))[0]["RootFS"]["Layers"] == layers
    assert other.out("run", "--rm", image, "echo", "from skopeo").strip() == "from skopeo"
    # pydock save --format oci -> skopeo pushes the layout -> pydock pulls it
    saved = scratch / "saved"
    pd.out("save", "--format", "oci", "-o", str(scratch / "saved.tar"), "busybox")
    with tarfile.open(scratch / "saved.tar") as tar:
        tar.extractall(saved, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    _check_oci_layout(saved)
    pushed = f"{registry.host}/interop/from-skopeo:v2"
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{saved}:latest", f"docker://{pushed}")
    out = pd.out("pull", pushed)
    assert "Pull complete" in out or "Already exists" in out
    assert _id(pd, pushed) == original
    assert pd.out("run", "--rm", pushed, "echo", "pulled").strip() == "pulled"


# -- docker ---------------------------------------------------------------------------------


@pytest.fixture
def dockerd(scratch: Path):
    from pydock.bench.targets import Docker, Unavailable

    d = Docker(scratch / "root", "vfs", scratch, run_dir=scratch / "dockerd")
    try:
        d.start_daemon()
    except Unavailable as e:
        d.close()
        pytest.skip(f"no private dockerd here: {e}")
    try:
        yield d
    finally:
        d.close()


def test_docker_pulls_and_pushes(pd: Pydock, scratch: Path, registry, dockerd) -> None:
    original = _id(pd, "busybox")
    name = f"{registry.host}/interop/busybox:v1"
    pd.out("tag", "busybox", name)
    pd.out("push", name)
    # docker treats 127.0.0.0/8 registries as insecure by default, as pydock does
    dockerd.cli("pull", name, what="docker pull")
    got = dockerd.cli("image", "inspect", "-f", "{{.Id}}", name).stdout.decode().strip()
    assert got == original
    out = dockerd.cli("run", "--rm", "--network", "none", name, "echo", "in docker")
    assert out.stdout.decode().strip() == "in docker"
    # docker pushes (its own gzip blobs, its own manifest) and pydock pulls that
    theirs = f"{registry.host}/interop/from-docker:v1"
    dockerd.cli("tag", name, theirs)
    dockerd.cli("push", theirs, what="docker push")
    out = pd.out("pull", theirs)
    assert "Digest: sha256:" in out
    assert _id(pd, theirs) == original
    assert pd.out("run", "--rm", theirs, "echo", "from docker").strip() == "from docker"
