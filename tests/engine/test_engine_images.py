"""``pydock load / images / rmi / inspect`` end to end: real archives, real store, real kernel.

Archives are built byte-exact by :mod:`imagetar` so that digests can be broken on purpose.
Each image carries the host's static busybox so that ``run`` can look at its merged root.
A refused archive must leave the store exactly as it was (same images, same files under the
layer records and the driver's home) and write nothing outside it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from helpers import PYDOCK
from imagetar import Entry, config_for, docker_save, layer_tar, oci_layout, sha, tar_of
from pydock.engine.engine import Engine
from pydock.engine.images import ImageStore, chain_ids, store_name

BUSYBOX = Path("/bin/busybox")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

pytestmark = pytest.mark.skipif(not BUSYBOX.is_file(), reason="needs the host's /bin/busybox")


# -- building images ------------------------------------------------------------------------
def _dir(name: str) -> Entry:
    return Entry(name, type=tarfile.DIRTYPE, mode=0o755)


def base_layer(*extra: Entry) -> bytes:
    """busybox as /bin/busybox with sh and cat pointing at it, plus ``extra`` entries."""
    return layer_tar(
        [
            _dir("bin"),
            Entry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755),
            Entry("bin/sh", type=tarfile.SYMTYPE, link="busybox"),
            Entry("bin/cat", type=tarfile.LNKTYPE, link="bin/busybox"),
            _dir("etc"),
            *extra,
        ]
    )


def two_layer_app() -> list[bytes]:
    """Layer 1: busybox, /etc/keep, /etc/gone; layer 2 whites out gone, adds /etc/added."""
    l1 = base_layer(Entry("etc/keep", data=b"kept\n"), Entry("etc/gone", data=b"gone\n"))
    l2 = layer_tar([_dir("etc"), Entry("etc/.wh.gone"), Entry("etc/added", data=b"from layer 2\n")])
    return [l1, l2]


def image_id_of(layers: list[bytes]) -> str:
    return sha(config_for(layers))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def write_layout(dest: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return dest


# -- looking at the store -------------------------------------------------------------------
def driver_of(pydock):
    return Engine(pydock.root, pydock.driver).driver()


def store_of(pydock) -> str:
    """The layer store the driver keeps its layers in (fuse-union shares overlay2's)."""
    return store_name(driver_of(pydock))


def layer_records(pydock) -> dict[str, dict]:
    return ImageStore(pydock.root).layer_records(store_of(pydock))


def driver_layer_dirs(pydock) -> set[str]:
    """Layer directories in the driver's home, read from disk rather than from the driver."""
    home = pydock.root / store_of(pydock)
    base = home / "dir" if pydock.driver == "vfs" else home
    return {n for n in os.listdir(base) if not n.startswith(".") and n != "l"}


def store_files(root: Path) -> set[str]:
    """Every path under the store root except lock files (flock targets appear on use)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            if n.endswith(".lock"):
                continue
            if n == ".refs" and not os.listdir(os.path.join(dirpath, n)):
                continue  # overlay2 makes its (empty) mount-count dir on first remove
            out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return out


def images_q(pydock) -> str:
    return pydock.out("images", "-q", "--no-trunc")


def one_line_error(res) -> str:
    """The single ``pydock: ...`` error line; progress lines ("Loading layer") may precede it."""
    err = res.stderr.decode()
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if not PROGRESS.fullmatch(ln)]
    assert len(errors) == 1 and errors[0] == lines[-1], err
    return errors[0]


PROGRESS = re.compile(r"(Loading layer [0-9a-f]{12}: done|[0-9a-f]{12}: Already exists)")


def images_table(pydock) -> list[list[str]]:
    lines = pydock.out("images").splitlines()
    return [re.split(r" {2,}", ln.strip()) for ln in lines]


# -- 1. docker save --------------------------------------------------------------------------
def test_load_docker_save_then_images_and_run(pydock, scratch: Path):
    layers = two_layer_app()
    archive = write(scratch / "app.tar", docker_save(layers, "app:v1"))
    res = pydock("load", "-i", str(archive))
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == "Loaded image: app:v1\n"

    table = images_table(pydock)
    assert table[0] == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    row = [r for r in table[1:] if r[:2] == ["app", "v1"]]
    assert len(row) == 1, table
    assert row[0][2] == image_id_of(layers)[7:19]
    assert row[0][3].endswith(" ago")
    assert re.fullmatch(r"[\d.]+(B|kB|MB)", row[0][4]), row[0]

    script = "cat /etc/keep /etc/added; test -e /etc/gone && echo present || echo whited-out"
    res = pydock("run", "--rm", "app:v1", "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"kept\nfrom layer 2\nwhited-out\n"

    # loading the same archive again reuses every layer and keeps one image
    res = pydock("load", "-i", str(archive))
    assert res.returncode == 0, res.stderr
    assert res.stderr.decode().count("Already exists") == 2
    assert images_q(pydock).split().count(image_id_of(layers)) == 1


# -- 2. OCI layouts ------------------------------------------------------------------------
@pytest.mark.parametrize("as_tar", [False, True], ids=["directory", "tar"])
def test_load_oci_layout(pydock, scratch: Path, as_tar: bool):
    layers = two_layer_app()
    files = oci_layout(layers, "docker.io/library/ociapp:2.0", compress=True)
    if as_tar:
        src = write(scratch / "oci.tar", tar_of(files))
    else:
        src = write_layout(scratch / "oci", files)
    res = pydock("load", "-i", str(src))
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == "Loaded image: ociapp:2.0\n"
    info = json.loads(pydock.out("inspect", "ociapp:2.0"))[0]
    # the layers were gzip'ed; the store keeps the uncompressed diff ids
    assert info["RootFS"]["Layers"] == [sha(x) for x in layers]
    res = pydock("run", "--rm", "ociapp:2.0", "cat", "/etc/added")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"from layer 2\n"


def test_load_oci_layout_zstd(pydock, scratch: Path):
    """zstd-compressed layers (image-spec ``tar+zstd``) load like gzip'ed ones."""
    layers = two_layer_app()
    files = oci_layout(layers, "docker.io/library/zapp:1", compress="zstd")
    assert sum(v[:4] == ZSTD_MAGIC for v in files.values()) == 2
    res = pydock("load", "-i", str(write(scratch / "z.tar", tar_of(files))))
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == "Loaded image: zapp:1\n"
    info = json.loads(pydock.out("inspect", "zapp:1"))[0]
    assert info["RootFS"]["Layers"] == [sha(x) for x in layers]
    res = pydock("run", "--rm", "zapp:1", "cat", "/etc/added", "/etc/keep")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"from layer 2\nkept\n"


# -- 3. rmi while a container uses the image ---------------------------------------------------
def test_rmi_conflict_until_container_removed(pydock, scratch: Path):
    layers = two_layer_app()
    pydock("load", "-i", str(write(scratch / "a.tar", docker_save(layers, "app:v1"))), check=True)
    image_id = image_id_of(layers)
    chains = chain_ids([sha(x) for x in layers])
    res = pydock("run", "--name", "user", "app:v1", "cat", "/etc/keep")
    assert res.returncode == 0, res.stderr  # exited, not removed

    res = pydock("rmi", "app:v1")
    assert res.returncode == 1
    line = one_line_error(res)
    assert "conflict: unable to remove" in line
    assert "container" in line and "is using its referenced image" in line
    assert image_id in images_q(pydock).split()

    pydock("rm", "user", check=True)
    res = pydock("rmi", "app:v1")
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode().splitlines()
    assert out[0] == "Untagged: app:v1"
    assert f"Deleted: {image_id}" in out
    assert image_id not in images_q(pydock).split()
    drv = driver_of(pydock)
    records = layer_records(pydock)
    for c in chains:
        assert not drv.exists(c[7:])
        assert c not in records


# -- 4. shared base layer ----------------------------------------------------------------
def test_shared_base_layer_survives_first_rmi(pydock, scratch: Path):
    base = base_layer(Entry("etc/base", data=b"base\n"))
    one = [base, layer_tar([_dir("etc"), Entry("etc/who", data=b"one\n")])]
    two = [base, layer_tar([_dir("etc"), Entry("etc/who", data=b"two\n")])]
    pydock("load", "-i", str(write(scratch / "1.tar", docker_save(one, "one:1"))), check=True)
    res = pydock("load", "-i", str(write(scratch / "2.tar", docker_save(two, "two:1"))))
    assert res.returncode == 0, res.stderr
    assert "Already exists" in res.stderr.decode()  # the base was reused, not applied twice
    base_hex = sha(base)[7:]
    top_one = chain_ids([sha(x) for x in one])[-1][7:]

    res = pydock("rmi", "one:1")
    assert res.returncode == 0, res.stderr
    drv = driver_of(pydock)
    assert drv.exists(base_hex)
    assert "sha256:" + base_hex in layer_records(pydock)
    assert not drv.exists(top_one)
    res = pydock("run", "--rm", "two:1", "cat", "/etc/base", "/etc/who")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"base\ntwo\n"

    res = pydock("rmi", "two:1")
    assert res.returncode == 0, res.stderr
    assert f"Deleted: sha256:{base_hex}" in res.stdout.decode().splitlines()
    assert not driver_of(pydock).exists(base_hex)
    assert "sha256:" + base_hex not in layer_records(pydock)


# -- 5. hostile and broken archives --------------------------------------------------------
def _hostile_archive(kind: str, scratch: Path, canary: Path) -> Path:
    """An archive of ``kind``; ``canary`` is a directory outside the store it aims at."""
    if kind == "missing-file":
        return scratch / "no-such-archive.tar"
    if kind == "oci-blob-mismatch":
        layers = [base_layer()]
        files = oci_layout(layers, "bad:oci", compress=True)
        blob = next(k for k, v in files.items() if v[:2] == b"\x1f\x8b")
        raw = bytearray(gzip.decompress(files[blob]))
        raw[5000] ^= 0xFF  # inside busybox: the tar stays valid, its digest does not
        files[blob] = gzip.compress(bytes(raw), mtime=0)
        return write_layout(scratch / "oci-bad", files)
    if kind == "oci-gzip-truncated":
        # every digest matches, but the layer blob is only the first part of a gzip stream
        files = oci_layout([base_layer()], "bad:gz", compress=True)
        blob = next(k for k, v in files.items() if v[:2] == b"\x1f\x8b")
        return write_layout(scratch / "oci-gz", _replace_blob(files, blob, files[blob][:200_000]))
    if kind in ("oci-zstd-corrupt", "oci-zstd-truncated"):
        # every digest matches the blob as stored; its zstd stream is broken. Two layers:
        # the first (good) one is applied and must be rolled back.
        layers = two_layer_app()
        files = oci_layout(layers, f"bad:{kind[4:]}", compress="zstd")
        blob = next(k for k, v in files.items() if v[:4] == ZSTD_MAGIC and len(v) < 100_000)
        data = bytearray(files[blob])
        if kind == "oci-zstd-corrupt":
            data[len(data) // 2] ^= 0xFF  # the frame checksum no longer matches
        else:
            data = data[: len(data) // 2]
        return write_layout(scratch / kind, _replace_blob(files, blob, bytes(data)))
    if kind == "truncated":
        data = docker_save(two_layer_app(), "bad:trunc")
        return write(scratch / "trunc.tar", data[: len(data) // 2])
    if kind == "layer-count-second-image":
        return write(scratch / f"{kind}.tar", _two_images_second_miscounted())
    layers = [base_layer()]
    config = None
    config_name = None
    if kind == "dotdot":
        layers.append(layer_tar([Entry("../escape", data=b"x"), Entry("ok", data=b"y")]))
    elif kind == "deep-dotdot":
        layers.append(layer_tar([Entry("../" * 12 + str(canary)[1:] + "/deep", data=b"x")]))
    elif kind == "absolute":
        layers.append(layer_tar([Entry(f"{canary}/abs-escape", data=b"x")]))
    elif kind == "symlink-then-through":
        layers.append(
            layer_tar(
                [
                    Entry("link", type=tarfile.SYMTYPE, link=str(canary)),
                    Entry("link/pwned", data=b"pwned"),
                ]
            )
        )
    elif kind == "hardlink-outside":
        layers.append(
            layer_tar([Entry("hl", type=tarfile.LNKTYPE, link="../../" + str(canary)[1:] + "/f")])
        )
    elif kind == "hardlink-absolute":
        layers.append(layer_tar([Entry("hl", type=tarfile.LNKTYPE, link=f"{canary}/f")]))
    elif kind == "hardlink-via-symlink":
        layers.append(
            layer_tar(
                [
                    Entry("out", type=tarfile.SYMTYPE, link=str(canary)),
                    Entry("hl", type=tarfile.LNKTYPE, link="out/f"),
                ]
            )
        )
    elif kind == "config-digest":
        config_name = "0" * 64 + ".json"
    elif kind == "layer-count-more":
        # the manifest lists a layer the config has no diff id for (main loaded it)
        config = config_for(layers)
        layers.append(layer_tar([Entry("etc/extra", data=b"x")]))
    elif kind == "layer-count-fewer":
        config = config_for([*layers, layer_tar([Entry("etc/extra", data=b"x")])])
    elif kind == "diff-id":
        layers.append(layer_tar([Entry("etc/x", data=b"x")]))
        config = config_for(layers, diff_ids=[sha(layers[0]), "sha256:" + "1" * 64])
    else:
        raise AssertionError(kind)
    return write(
        scratch / f"{kind}.tar",
        docker_save(layers, f"bad:{kind}", config=config, config_name=config_name),
    )


def _two_images_second_miscounted() -> bytes:
    """A docker-save archive of two images: a good one, then one whose manifest lists two
    layers for a config with one diff id. Docker would keep the first; pydock loads none."""
    good = [base_layer(Entry("etc/good", data=b"good\n"))]
    bad = [base_layer(), layer_tar([Entry("etc/extra", data=b"x")])]
    good_cfg, bad_cfg = config_for(good), config_for(bad[:1])
    files: dict[str, bytes] = {}
    manifest = []
    for n, (layers, cfg, tag) in enumerate([(good, good_cfg, "good:1"), (bad, bad_cfg, "bad:1")]):
        cname = sha(cfg)[7:] + ".json"
        files[cname] = cfg
        paths = [f"{n}{i:063x}/layer.tar" for i in range(len(layers))]
        files.update(zip(paths, layers, strict=True))
        manifest.append({"Config": cname, "RepoTags": [tag], "Layers": paths})
    files["manifest.json"] = json.dumps(manifest).encode()
    return tar_of(files)


def _replace_blob(files: dict[str, bytes], path: str, data: bytes) -> dict[str, bytes]:
    """Swap a layer blob of an OCI layout for ``data``, re-pointing manifest and index."""
    old = "sha256:" + path.rsplit("/", 1)[1]
    files = dict(files)
    del files[path]
    files[f"blobs/sha256/{sha(data)[7:]}"] = data
    index = json.loads(files["index.json"])
    for desc in index["manifests"]:
        mpath = f"blobs/sha256/{desc['digest'][7:]}"
        manifest = json.loads(files.pop(mpath))
        for layer in manifest["layers"]:
            if layer["digest"] == old:
                layer["digest"], layer["size"] = sha(data), len(data)
        raw = json.dumps(manifest).encode()
        files[f"blobs/sha256/{sha(raw)[7:]}"] = raw
        desc["digest"], desc["size"] = sha(raw), len(raw)
    files["index.json"] = json.dumps(index).encode()
    return files


#: archive kind -> a fragment of the one-line error it must give
HOSTILE = {
    "dotdot": "contains '..'",
    "deep-dotdot": "contains '..'",
    "absolute": "has an absolute path",
    "symlink-then-through": "is a symlink",
    "hardlink-outside": "contains '..'",
    "hardlink-absolute": "has an absolute path",
    "hardlink-via-symlink": "symlink",
    "config-digest": "image config digest mismatch",
    "diff-id": "layer digest mismatch",
    "oci-blob-mismatch": "blob digest mismatch",
    "oci-gzip-truncated": "invalid gzip-compressed layer",
    "oci-zstd-corrupt": "invalid zstd-compressed layer",
    "oci-zstd-truncated": "the stream ends inside a frame",
    "truncated": "invalid archive",
    "layer-count-more": "invalid manifest, layers length mismatch: expected 2, got 1",
    "layer-count-fewer": "invalid manifest, layers length mismatch: expected 1, got 2",
    "layer-count-second-image": "invalid manifest, layers length mismatch: expected 2, got 1",
    "missing-file": "no such file or directory",
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_refused_archive_leaves_store_unchanged(pydock, scratch: Path, kind: str):
    canary = scratch / "canary"
    canary.mkdir()
    (canary / "f").write_text("canary\n")
    archive = _hostile_archive(kind, scratch, canary)
    before_images = images_q(pydock)
    before_files = store_files(pydock.root)
    outside_before = sorted(p.name for p in scratch.iterdir())

    res = pydock("load", "-i", str(archive))
    assert res.returncode == 1, (res.stdout, res.stderr)
    line = one_line_error(res)
    assert line.startswith("pydock: ") and HOSTILE[kind] in line, line
    assert res.stdout == b""

    assert images_q(pydock) == before_images
    assert store_files(pydock.root) == before_files
    assert sorted(p.name for p in scratch.iterdir()) == outside_before
    assert sorted(os.listdir(canary)) == ["f"]
    assert (canary / "f").read_text() == "canary\n"
    assert not Path("/abs-escape").exists()
    # every record still has its layer, and no layer lacks a record
    recs = layer_records(pydock)
    assert {c[7:] for c in recs} == driver_layer_dirs(pydock)


# -- 6. SIGKILL during load --------------------------------------------------------------
BIG = 300 * 1024 * 1024


def _write_big_archive(path: Path) -> list[str]:
    """A docker-save archive on disk whose 2nd layer holds one 300 MB file of zeros.

    Both tars are streamed to disk; returns the diff ids.
    """
    base = base_layer()
    big_layer = path.with_suffix(".layer")
    with open(big_layer, "wb") as raw, tarfile.open(fileobj=raw, mode="w|") as tar:
        info = tarfile.TarInfo("zeros")
        info.size, info.mode, info.mtime = BIG, 0o644, 1_700_000_000
        tar.addfile(info, _Zeros(BIG))
    h = hashlib.sha256()
    with open(big_layer, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    diff_ids = [sha(base), "sha256:" + h.hexdigest()]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    cname = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": cname, "RepoTags": ["big:1"], "Layers": ["0/layer.tar", "1/layer.tar"]}]
    with tarfile.open(path, "w") as tar:
        for name, data in [
            (cname, config),
            ("0/layer.tar", base),
            ("manifest.json", json.dumps(manifest).encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(big_layer, arcname="1/layer.tar")
    big_layer.unlink()
    return diff_ids


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def _tmp_dirs(home: Path) -> list[str]:
    return [n for n in os.listdir(home) if n.startswith(".tmp-")] if home.exists() else []


def test_sigkill_during_load_then_reload(pydock, scratch: Path):
    archive = scratch / "big.tar"
    try:
        diff_ids = _write_big_archive(archive)
        home = pydock.root / store_of(pydock)
        proc = subprocess.Popen(
            [PYDOCK, "--root", str(pydock.root), "-s", pydock.driver, "load", "-i", str(archive)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # kill it mid-apply: once a layer is being built (a .tmp- dir), wait a little
            deadline = time.monotonic() + 30
            while not _tmp_dirs(home) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.3)
            assert proc.poll() is None, "load finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()

        res = pydock("images")
        assert res.returncode == 0, res.stderr
        assert "big" not in res.stdout.decode()

        res = pydock("load", "-i", str(archive), timeout=300)
        assert res.returncode == 0, res.stderr
        assert res.stdout == b"Loaded image: big:1\n"
        res = pydock("run", "--rm", "big:1", "sh", "-c", "cat /zeros | busybox wc -c")
        assert res.returncode == 0, res.stderr
        assert res.stdout.decode().strip() == str(BIG)

        drv = driver_of(pydock)
        recs = layer_records(pydock)
        for c in chain_ids(diff_ids):
            assert c in recs
        for c in recs:
            assert drv.exists(c[7:]), c
        assert driver_layer_dirs(pydock) == {c[7:] for c in recs}
        assert _tmp_dirs(home) == []
        pydock("rmi", "big:1", check=True)
    finally:
        archive.unlink(missing_ok=True)
        archive.with_suffix(".layer").unlink(missing_ok=True)


# -- 7. rmi of an unknown image; inspect --------------------------------------------------
def test_rmi_unknown_image(pydock):
    res = pydock("rmi", "no-such-image:1")
    assert res.returncode == 1
    assert "No such image" in one_line_error(res)


def test_inspect_image(pydock, scratch: Path):
    layers = two_layer_app()
    pydock("load", "-i", str(write(scratch / "a.tar", docker_save(layers, "app:v1"))), check=True)
    info = json.loads(pydock.out("inspect", "app:v1"))
    assert len(info) == 1
    assert info[0]["Id"] == image_id_of(layers)
    assert info[0]["RepoTags"] == ["app:v1"]
    assert info[0]["RootFS"] == {"Type": "layers", "Layers": [sha(x) for x in layers]}
    assert pydock.out("image", "inspect", "-f", "{{.Id}}", "app:v1").strip() == info[0]["Id"]
