"""``pydock save`` (docker-save archives, or OCI image layouts) and ``pydock import``.

The default archive is what Docker 25+ writes: a ``manifest.json`` for ``docker load`` *and*
an OCI layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``) over the same blobs,
so both kinds of loaders read it; ``--format oci`` writes the OCI layout alone.

Layers are written back byte for byte from their tar-split recording (``Driver.diff_exact``,
:mod:`.layerexport`), so a saved image keeps its id. A layer without one is re-exported
through the storage driver (``Driver.diff``), an equivalent but not byte-identical tar: the
saved image then carries a config with the re-exported diff ids (a new image id); every
digest in the archive is true either way, and ``load`` verifies them all. See
engine/distribution/push.py for the same choice.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import io
import json
import os
import shlex
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from .errors import InvalidInput
from .images import ImageStore, chain_ids
from .layerexport import export_layer

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Archive:
    """Files of the archive, written once each (blobs are shared between images)."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar, self.names = tar, set[str]()

    def add_bytes(self, name: str, data: bytes) -> None:
        if name in self.names:
            return
        self.names.add(name)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        self.tar.addfile(info, io.BytesIO(data))

    def add_file(self, name: str, path: str) -> None:
        if name in self.names:
            return
        self.names.add(name)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = os.path.getsize(path), 0o644, 0
        with open(path, "rb") as f:
            self.tar.addfile(info, f)

    def add_dir(self, name: str) -> None:
        if name not in self.names:
            self.names.add(name)
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            self.tar.addfile(info)


def _driver_with(store: ImageStore, open_driver, chains: list[str]):  # noqa: ANN001, ANN202
    for name in store.drivers_with_layers():
        if all(store.layer_record(name, c) for c in chains):
            return open_driver(name)
    raise InvalidInput("the image's layers are in no storage driver")


def save(
    store: ImageStore,
    open_driver,  # noqa: ANN001
    refs: list[str],
    output: str | None,
    *,
    oci: bool,
    output_mode: int = 0o644,
) -> None:
    """Write ``refs`` as one archive to ``output`` (a file made with ``output_mode``, the
    caller's umask applied by the CLI) or to stdout."""
    from .reference import normalize

    wanted: dict[str, list[str]] = {}
    for ref in refs:
        image_id = store.resolve(ref)
        tags = wanted.setdefault(image_id, [])
        try:
            n = normalize(ref)
            if n in store.tags_of(image_id) and n not in tags:
                tags.append(n)
        except InvalidInput:
            pass  # an id: saved untagged, as docker does
    spool = tempfile.TemporaryDirectory(dir=store.root, prefix=".save-")
    dest = None
    fobj: BinaryIO
    try:
        if output:
            dest = Path(output)
            fobj = open(f"{output}.tmp-{os.getpid()}", "wb")  # noqa: SIM115
            os.fchmod(fobj.fileno(), output_mode)
        else:
            fobj = sys.stdout.buffer
        with tarfile.open(fileobj=fobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _write(store, open_driver, wanted, _Archive(tar), Path(spool.name), oci)
        if dest is not None:
            fobj.close()
            os.rename(fobj.name, dest)
    except BaseException:
        if dest is not None:
            fobj.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(fobj.name)
        raise
    finally:
        spool.cleanup()


def _write(store, open_driver, wanted, ar: _Archive, spool: Path, oci: bool) -> None:  # noqa: ANN001
    exported: dict[str, tuple[str, int, str]] = {}  # chain -> (digest, size, path)
    manifest_json = []
    index = []
    ar.add_dir("blobs/")
    ar.add_dir("blobs/sha256/")
    for image_id, tags in wanted.items():
        config = store.config(image_id)
        diff_ids = config["rootfs"]["diff_ids"]
        chains = chain_ids(diff_ids)
        driver = _driver_with(store, open_driver, chains)
        new_ids = []
        for c in chains:
            if c not in exported:
                path = spool / c[7:]

                digests: list[str] = []

                def attempt(write, path: Path = path, digests: list[str] = digests) -> str:  # noqa: ANN001
                    h = hashlib.sha256()
                    with open(path, "wb") as f:
                        write(_Hashing(f, h))
                    digests.append("sha256:" + h.hexdigest())
                    return digests[-1]

                export_layer(driver, c[7:], diff_ids[chains.index(c)], attempt)
                exported[c] = (digests[-1], path.stat().st_size, str(path))
            new_ids.append(exported[c][0])
        config_bytes = store.config_bytes(image_id)
        if new_ids != diff_ids:
            config["rootfs"]["diff_ids"] = new_ids
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
        cdig = _sha(config_bytes)
        ar.add_bytes(f"blobs/sha256/{cdig[7:]}", config_bytes)
        for c in chains:
            d, _size, layer_file = exported[c]
            ar.add_file(f"blobs/sha256/{d[7:]}", layer_file)
        layers = [exported[c] for c in chains]
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": cdig, "size": len(config_bytes)},
            "layers": [{"mediaType": MT_OCI_LAYER, "digest": d, "size": s} for d, s, _ in layers],
        }
        mbytes = json.dumps(manifest, separators=(",", ":")).encode()
        mdig = _sha(mbytes)
        ar.add_bytes(f"blobs/sha256/{mdig[7:]}", mbytes)
        desc = {"mediaType": MT_OCI_MANIFEST, "digest": mdig, "size": len(mbytes)}
        for t in tags or [None]:
            entry = dict(desc)
            if t:
                repo, _, tag = t.rpartition(":")
                entry["annotations"] = {
                    "io.containerd.image.name": _canonical(repo) + ":" + tag,
                    "org.opencontainers.image.ref.name": tag,
                }
            index.append(entry)
        manifest_json.append({
            "Config": f"blobs/sha256/{cdig[7:]}",
            "RepoTags": tags,
            "Layers": [f"blobs/sha256/{d[7:]}" for d, _, _ in layers],
        })  # fmt: skip
    ar.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    idx = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": index}
    ar.add_bytes("index.json", json.dumps(idx, separators=(",", ":")).encode())
    if not oci:
        ar.add_bytes("manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode())


def _canonical(repo: str) -> str:
    first = repo.split("/", 1)[0]
    if "/" in repo and ("." in first or ":" in first or first == "localhost"):
        return repo
    return "docker.io/" + (repo if "/" in repo else "library/" + repo)


class _Hashing:
    def __init__(self, f, h) -> None:  # noqa: ANN001
        self.f, self.h = f, h

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


# -- import ---------------------------------------------------------------------------------


def _apply_changes(cfg: dict, changes: list[str]) -> None:
    """The Dockerfile instructions ``import -c`` accepts: CMD ENTRYPOINT ENV WORKDIR USER
    LABEL EXPOSE."""
    for change in changes:
        word, _, rest = change.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word in ("CMD", "ENTRYPOINT"):
            try:
                value = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            except ValueError:
                raise InvalidInput(f"invalid {word} in --change: {rest}") from None
            cfg["Cmd" if word == "CMD" else "Entrypoint"] = value
        elif word == "ENV":
            for kv in shlex.split(rest):
                k, eq, v = kv.partition("=")
                env = [e for e in cfg.get("Env", []) if e.split("=", 1)[0] != k]
                cfg["Env"] = [*env, f"{k}={v}"] if eq else env
        elif word == "WORKDIR":
            cfg["WorkingDir"] = rest
        elif word == "USER":
            cfg["User"] = rest
        elif word == "LABEL":
            for kv in shlex.split(rest):
                k, _, v = kv.partition("=")
                cfg.setdefault("Labels", {})[k] = v
        elif word == "EXPOSE":
            for port in rest.split():
                cfg.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        else:
            raise InvalidInput(f"{word} is not a valid change command")


def import_rootfs(
    store: ImageStore,
    driver,  # noqa: ANN001
    source: str,
    ref: str | None,
    *,
    message: str = "",
    changes: list[str],
    platform_: str | None = None,
) -> str:
    """A rootfs tarball (plain or gzip; ``-`` for stdin) as a one-layer image."""
    from .reference import normalize

    tag = normalize(ref) if ref else None
    os_, arch = "linux", "amd64"
    if platform_:
        os_, _, arch = platform_.partition("/")
        arch = arch.split("/")[0] or "amd64"
    with tempfile.TemporaryFile(dir=store.root) as spool:
        raw = sys.stdin.buffer if source == "-" else None
        try:
            f = raw or open(source, "rb")  # noqa: SIM115
        except OSError as e:
            raise InvalidInput(f"open {source}: {e.strerror}") from None
        with f:
            head = f.peek(2)[:2] if hasattr(f, "peek") else b""
            stream = gzip.GzipFile(fileobj=f) if head == b"\x1f\x8b" else f
            h = hashlib.sha256()
            try:
                while data := stream.read(1 << 20):
                    h.update(data)
                    spool.write(data)
            except (OSError, EOFError) as e:
                raise InvalidInput(f"invalid tarball {source}: {e}") from None
        spool.seek(0)
        diff_id = "sha256:" + h.hexdigest()
        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        cfg: dict = {}
        _apply_changes(cfg, changes)
        config = {
            "architecture": arch,
            "os": os_,
            "created": now,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [
                {"created": now, "created_by": "", "comment": message or f"Imported from {source}"}
            ],  # fmt: skip
        }
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        with store.lock:
            image_id = store.add_image(
                config_bytes, lambda _i: contextlib.nullcontext(spool), [], driver
            )
            if tag:
                store.tag(image_id, tag)
    return image_id
