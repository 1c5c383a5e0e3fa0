"""Build image archives for tests: ``docker save`` tarballs and OCI layouts, from layers
described as lists of tar entries. Kept byte-exact so digests can be corrupted on purpose."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass


@dataclass
class Entry:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    mode: int = 0o644
    link: str = ""
    uid: int = 0
    gid: int = 0


def layer_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.mode, info.linkname = e.type, e.mode, e.link
            info.uid, info.gid, info.mtime = e.uid, e.gid, 1_700_000_000
            info.size = len(e.data) if e.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(e.data) if info.size else None)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(
    layers: list[bytes], cmd: list[str] | None = None, diff_ids: list[str] | None = None
) -> bytes:
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": cmd or ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids or [sha(x) for x in layers]},
    }
    return json.dumps(cfg, sort_keys=True).encode()


def docker_save(
    layers: list[bytes],
    tag: str | None,
    *,
    config: bytes | None = None,
    config_name: str | None = None,
) -> bytes:
    """A docker-save archive of one image (``config_name`` overrides the digest name)."""
    config = config or config_for(layers)
    cname = config_name or hashlib.sha256(config).hexdigest() + ".json"
    files: dict[str, bytes] = {cname: config}
    paths = []
    for i, layer in enumerate(layers):
        p = f"{i:064x}/layer.tar"
        files[p] = layer
        paths.append(p)
    manifest = [{"Config": cname, "RepoTags": [tag] if tag else None, "Layers": paths}]
    files["manifest.json"] = json.dumps(manifest).encode()
    return _tar(files)


def compress_layer(layer: bytes, codec: str) -> tuple[bytes, str]:
    """(blob, OCI media type) of a layer tar: ``codec`` is "gzip", "zstd" or "" (plain)."""
    mt = "application/vnd.oci.image.layer.v1.tar"
    if codec == "gzip":
        return gzip.compress(layer, mtime=0), mt + "+gzip"
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(write_checksum=True).compress(layer), mt + "+zstd"
    return layer, mt


def oci_layout(layers: list[bytes], ref: str, *, compress: bool | str = True) -> dict[str, bytes]:
    """An OCI image layout as {relative path: bytes}; layers gzip'ed when ``compress`` is
    True, compressed with that codec when it names one ("zstd")."""
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    config = config_for(layers)
    descs = []
    for layer in layers:
        blob, mt = compress_layer(layer, "gzip" if compress is True else compress or "")
        files[f"blobs/sha256/{sha(blob)[7:]}"] = blob
        descs.append({"mediaType": mt, "digest": sha(blob), "size": len(blob)})
    files[f"blobs/sha256/{sha(config)[7:]}"] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": descs,
        }
    ).encode()
    files[f"blobs/sha256/{sha(manifest)[7:]}"] = manifest
    files["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha(manifest),
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": ref.split(":")[-1],
                    },
                }
            ],
        }
    ).encode()
    return files


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_of(files: dict[str, bytes]) -> bytes:
    return _tar(files)
