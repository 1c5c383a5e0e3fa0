"""``pydock load``: images from ``docker save`` tarballs and OCI image layouts.

Accepted inputs (a file, or a directory for an OCI layout):

* docker save (moby image/tarexport): ``manifest.json`` lists each image's ``Config``
  (``<hex>.json``, whose sha256 must be <hex>), ``RepoTags`` and ``Layers`` (tar paths);
* OCI image layout (image-spec image-layout.md): ``oci-layout``, ``index.json`` and
  ``blobs/<alg>/<hex>``; every blob read is checked against its digest, and tags come
  from the ``org.opencontainers.image.ref.name`` annotation. Docker 25+ writes both at once.

Every layer's uncompressed bytes must hash to the config's ``rootfs.diff_ids`` entry; any
mismatch refuses the whole image and leaves the store as it was (ImageStore.add_image).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from .errors import InvalidInput
from .images import ImageStore
from .layercompress import decompressed
from .reference import normalize

MT_INDEX = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MT_MANIFEST = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
REF_ANNOTATION = "org.opencontainers.image.ref.name"


class Source(Protocol):
    """Read access to the archive's files by relative path."""

    def exists(self, name: str) -> bool: ...
    def read(self, name: str) -> bytes: ...
    def open(self, name: str) -> BinaryIO: ...


class TarSource:
    def __init__(self, path: str) -> None:
        try:
            self.tar = tarfile.open(path, "r:")  # noqa: SIM115 - lives as long as the source
            # getmembers reads every header, so a truncated archive fails here, not later
            members = self.tar.getmembers()
        except (tarfile.TarError, OSError) as e:
            raise InvalidInput(f"invalid archive {path}: {e}") from None
        self.members = {posixpath.normpath(m.name): m for m in members if m.isfile()}

    def exists(self, name: str) -> bool:
        return posixpath.normpath(name) in self.members

    def open(self, name: str) -> BinaryIO:
        m = self.members.get(posixpath.normpath(name))
        f = self.tar.extractfile(m) if m else None
        if f is None:
            raise InvalidInput(f"archive has no file {name}")
        return f  # type: ignore[return-value]

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()


class DirSource:
    def __init__(self, path: str) -> None:
        self.root = os.path.realpath(path)

    def _path(self, name: str) -> str:
        p = os.path.realpath(os.path.join(self.root, name))
        if not p.startswith(self.root + os.sep):
            raise InvalidInput(f"path escapes the image layout: {name}")
        return p

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def open(self, name: str) -> BinaryIO:
        try:
            return open(self._path(name), "rb")
        except OSError as e:
            raise InvalidInput(f"cannot read {name}: {e.strerror}") from None

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()


@dataclass
class Candidate:
    """One image found in the archive, ready for ImageStore.add_image."""

    config: bytes
    tags: list[str]
    open_layer: Callable[[int], contextlib.AbstractContextManager[BinaryIO]]
    layer_count: int  # layers the manifest lists

    def check(self) -> None:
        """Refuse what add_image would only find out halfway: a manifest whose layers do
        not pair one to one with the config's diff ids (Docker's tarexport refuses it with
        this message), or a tag that is no reference."""
        try:
            diff_ids = json.loads(self.config)["rootfs"]["diff_ids"]
            if not isinstance(diff_ids, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise InvalidInput("invalid image config: no rootfs.diff_ids") from None
        if self.layer_count != len(diff_ids):
            raise InvalidInput(
                f"invalid manifest, layers length mismatch: expected {self.layer_count}, "
                f"got {len(diff_ids)}"
            )
        for t in self.tags:
            normalize(t)


def _parse_json(data: bytes, what: str) -> object:
    try:
        return json.loads(data)
    except ValueError:
        raise InvalidInput(f"invalid {what}: not JSON") from None


def _digest_path(digest: str) -> str:
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise InvalidInput(f"unsupported or malformed digest: {digest}")
    return f"blobs/sha256/{hexpart}"


def _read_blob(src: Source, digest: str) -> bytes:
    data = src.read(_digest_path(digest))
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise InvalidInput(f"blob digest mismatch: {digest}")
    return data


class _VerifiedBlob:
    """A layer blob stream that fails at EOF if its bytes do not hash to ``digest``."""

    def __init__(self, raw: BinaryIO, digest: str) -> None:
        self.raw, self.digest, self.hash = raw, digest, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        if (not data or n < 0) and "sha256:" + self.hash.hexdigest() != self.digest:
            raise InvalidInput(f"blob digest mismatch: {self.digest}")
        return data

    def close(self) -> None:
        self.raw.close()


def docker_save_images(src: Source) -> list[Candidate]:
    manifest = _parse_json(src.read("manifest.json"), "manifest.json")
    if not isinstance(manifest, list):
        raise InvalidInput("invalid manifest.json: not a list")
    out = []
    for entry in manifest:
        try:
            config_name, layers = entry["Config"], list(entry["Layers"])
        except (KeyError, TypeError):
            raise InvalidInput("invalid manifest.json entry") from None
        config = src.read(config_name)
        base = posixpath.basename(config_name)
        expected = base.removesuffix(".json")
        if base.startswith("sha256:"):
            expected = expected[7:]
        if config_name.startswith("blobs/sha256/"):
            expected = base
        if hashlib.sha256(config).hexdigest() != expected:
            raise InvalidInput(f"image config digest mismatch: {config_name}")

        def opener(i: int, layers: list[str] = layers) -> contextlib.AbstractContextManager:
            return decompressed(src.open(layers[i]), "")

        out.append(Candidate(config, list(entry.get("RepoTags") or []), opener, len(layers)))
    return out


def oci_layout_images(src: Source) -> list[Candidate]:
    layout = _parse_json(src.read("oci-layout"), "oci-layout")
    if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
        raise InvalidInput("invalid oci-layout file")
    index = _parse_json(src.read("index.json"), "index.json")
    out: list[Candidate] = []
    _walk_index(src, index, None, out)
    return out


def _walk_index(src: Source, index: object, tag: str | None, out: list[Candidate]) -> None:
    if not isinstance(index, dict):
        raise InvalidInput("invalid image index")
    for desc in index.get("manifests", []):
        mt = desc.get("mediaType", "")
        ref = (desc.get("annotations") or {}).get(REF_ANNOTATION) or tag
        data = _read_blob(src, desc["digest"])
        doc = _parse_json(data, "manifest")
        if mt in MT_INDEX:
            _walk_index(src, doc, ref, out)
            continue
        if mt not in MT_MANIFEST or not isinstance(doc, dict):
            continue
        platform = desc.get("platform") or {}
        if platform and (platform.get("os"), platform.get("architecture")) != ("linux", "amd64"):
            continue
        config = _read_blob(src, doc["config"]["digest"])
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise InvalidInput("invalid manifest: layers is not a list")

        def opener(i: int, layers: list = layers) -> contextlib.AbstractContextManager:
            d = layers[i]
            blob = _VerifiedBlob(src.open(_digest_path(d["digest"])), d["digest"])
            return decompressed(blob, d.get("mediaType", ""))  # type: ignore[arg-type]

        out.append(Candidate(config, _oci_tags(desc, ref), opener, len(layers)))


def _oci_tags(desc: dict, ref: str | None) -> list[str]:
    """Tags for a manifest of an OCI layout.

    ``org.opencontainers.image.ref.name`` is often a bare tag ("latest", as skopeo writes
    it) that names no repository; containerd and Docker 25+ also write the full name in
    ``io.containerd.image.name``. A bare tag alone cannot name an image: it stays untagged.
    """
    full = (desc.get("annotations") or {}).get("io.containerd.image.name") or ref or ""
    for prefix in ("docker.io/library/", "docker.io/"):
        full = full.removeprefix(prefix)
    if "/" not in full and ":" not in full:
        return []
    if ":" not in full.rsplit("/", 1)[-1]:
        full += ":latest"
    return [full]


def open_source(path: str) -> Source:
    if os.path.isdir(path):
        return DirSource(path)
    if not os.path.exists(path):
        raise InvalidInput(f"open {path}: no such file or directory")
    return TarSource(path)


def load(store: ImageStore, driver, path: str, progress: Callable[[str], None]) -> list[str]:
    """Load every image in ``path``; returns the lines Docker prints (``Loaded image: ...``).

    The caller holds the store lock exclusively.
    """
    src = open_source(path)
    if src.exists("manifest.json"):
        candidates = docker_save_images(src)
    elif src.exists("oci-layout"):
        candidates = oci_layout_images(src)
    else:
        raise InvalidInput(f"{path}: neither a docker save archive nor an OCI image layout")
    if not candidates:
        raise InvalidInput(f"{path}: no linux/amd64 image in the archive")
    for c in candidates:  # all of them before the first is stored: all or nothing
        c.check()
    lines = []
    for c in candidates:
        image_id = store.add_image(c.config, c.open_layer, [], driver, progress)
        for t in c.tags:
            old = store.tag(image_id, t)
            if old:
                progress(
                    f"The image {t} already exists, renaming the old one with ID "
                    f"{old} to empty string"
                )
            lines.append(f"Loaded image: {t}")
        if not c.tags:
            lines.append(f"Loaded image ID: {image_id}")
    return lines
