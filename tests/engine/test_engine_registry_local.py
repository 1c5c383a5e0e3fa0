"""Image references (Docker Hub rules) and the local image commands: tag, images filters and
--format/--digests, history, save (docker and OCI) -> load, import, image prune."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from imagetar import Entry, layer_tar
from pdcli import Pydock
from pydock.engine.distribution.reference import parse
from pydock.engine.errors import InvalidInput
from pydock.engine.reference import normalize


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest", "familiar"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None, "busybox:latest"),
        ("docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", None,
         "busybox:1.36"),
        ("index.docker.io/user/app", "docker.io", "user/app", "latest", None, "user/app:latest"),
        ("localhost/app", "localhost", "app", "latest", None, "localhost/app:latest"),
        ("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000", "a/b", "v1", None, "127.0.0.1:5000/a/b:v1"),
        ("reg.example:443/x@sha256:" + "a" * 64, "reg.example:443", "x", None, "sha256:" + "a" * 64,
         "reg.example:443/x@sha256:" + "a" * 64),
    ],
)  # fmt: skip
def test_reference_parsing(text, domain, path, tag, digest, familiar) -> None:
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert ref.familiar() == familiar
    assert parse("busybox").endpoint == "registry-1.docker.io"
    assert parse("busybox").canonical() == "docker.io/library/busybox:latest"


@pytest.mark.parametrize("bad", ["UPPER", "a@sha256:zz", "a:b:c", "-x", "a//b", "a:" + "t" * 200])
def test_bad_references(bad: str) -> None:
    with pytest.raises(InvalidInput, match="invalid reference format"):
        parse(bad)


def test_local_names_are_familiar() -> None:
    assert normalize("docker.io/library/busybox") == "busybox:latest"
    assert normalize("docker.io/user/app:v2") == "user/app:v2"
    assert normalize("127.0.0.1:5000/app") == "127.0.0.1:5000/app:latest"


def test_tag_images_filters_and_format(pd: Pydock, scratch: Path) -> None:
    pd.out("tag", "busybox", "docker.io/library/mybox:v1")
    out = pd.out("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert sorted(out.split()) == ["busybox:latest", "mybox:v1"]
    assert pd.out("images", "--filter", "reference=my*", "--format", "{{.Tag}}").split() == ["v1"]
    assert pd.out("images", "mybox", "-q") == pd.out("images", "busybox", "-q")
    # a rootfs tarball imported with a label, then re-pointing its tag leaves it dangling
    rootfs = scratch / "rootfs.tar"
    rootfs.write_bytes(layer_tar([Entry("hello", b"world")]))
    first = pd.out("import", "-c", "LABEL team=blue", str(rootfs), "imp:1").strip()
    assert first.startswith("sha256:")
    assert pd.out("images", "-f", "label=team=blue", "-q").strip() == first[7:19]
    assert pd.out("images", "-f", "label=team=red", "-q").strip() == ""
    rootfs.write_bytes(layer_tar([Entry("hello", b"again")]))
    second = pd.out("import", str(rootfs), "imp:1").strip()
    assert second != first
    dangling = pd.out("images", "-f", "dangling=true", "--format", "{{.ID}} {{.Repository}}")
    assert dangling.split() == [first[7:19], "<none>"]
    table = pd.out("images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}")
    assert table.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID"]
    doc = json.loads(pd.out("images", "imp", "--format", "{{json .}}"))
    assert doc["ID"] == second[7:19] and doc["Tag"] == "1" and "CreatedSince" in doc
    assert "DIGEST" in pd.out("images", "--digests").splitlines()[0]
    res = pd("images", "--filter", "bogus=1")
    assert res.returncode == 1 and "Invalid filter 'bogus'" in res.stderr.decode()
    # prune removes the dangling one only; -a removes every unused image
    out = pd.out("image", "prune", "-f")
    assert f"deleted: {first}" in out and "Total reclaimed space" in out
    assert pd("image", "inspect", first).returncode != 0
    assert pd("image", "inspect", second).returncode == 0
    cid = pd.out("create", "busybox", "true").strip()
    out = pd.out("image", "prune", "-a", "-f")
    assert f"deleted: {second}" in out and "untagged: imp:1" in out
    assert pd("image", "inspect", "busybox").returncode == 0  # a container uses it
    pd.out("rm", cid)


def test_history(pd: Pydock) -> None:
    lines = pd.out("history", "busybox").splitlines()
    assert lines[0].split()[:2] == ["IMAGE", "CREATED"]
    image_id = pd.out("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    assert lines[1].startswith(image_id[7:19])
    assert pd.out("history", "-q", "--no-trunc", "busybox").splitlines()[0] == image_id


def _blobs_ok(tar: tarfile.TarFile) -> list[str]:
    names = tar.getnames()
    bad = []
    for n in names:
        if n.startswith("blobs/sha256/") and len(n) == 13 + 64:
            data = tar.extractfile(n).read()
            if hashlib.sha256(data).hexdigest() != n[13:]:
                bad.append(n)
    return bad


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_save_load_roundtrip(pd: Pydock, scratch: Path, fmt: str) -> None:
    out = scratch / f"save-{fmt}.tar"
    pd.out("save", "--format", fmt, "-o", str(out), "busybox")
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert "oci-layout" in names and "index.json" in names
        assert ("manifest.json" in names) == (fmt == "docker")
        assert _blobs_ok(tar) == []
        index = json.load(tar.extractfile("index.json"))
        desc = index["manifests"][0]
        assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert desc["annotations"]["io.containerd.image.name"] == "docker.io/library/busybox:latest"
        manifest = json.load(tar.extractfile(f"blobs/sha256/{desc['digest'][7:]}"))
        config = json.load(tar.extractfile(f"blobs/sha256/{manifest['config']['digest'][7:]}"))
        assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
        layer_digests = [d["digest"] for d in manifest["layers"]]
        assert config["rootfs"]["diff_ids"] == layer_digests  # uncompressed: digest == diff id
    saved_id = "sha256:" + manifest["config"]["digest"][7:]
    pd.out("rmi", "busybox")
    loaded = pd.out("load", "-i", str(out))
    assert "Loaded image: busybox:latest" in loaded
    assert pd.out("image", "inspect", "-f", "{{.Id}}", "busybox").strip() == saved_id
    assert pd.out("run", "--rm", "busybox", "echo", "ok").strip() == "ok"


def test_save_to_stdout(pd: Pydock) -> None:
    res = pd("save", "busybox")
    assert res.returncode == 0
    with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
        assert "manifest.json" in tar.getnames() and _blobs_ok(tar) == []
