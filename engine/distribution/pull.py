"""``pydock pull``: manifest -> config -> layers, verified, into the image store.

Blobs are downloaded (three at a time, as Docker does) into
``<root>/distribution/downloads/<hex>.partial`` while their sha256 is computed; a
download cut short keeps its partial file and the next attempt (or the next pull, after a
crash or ``kill -9``) resumes it with an HTTP ``Range`` request. Only a blob whose digest
matched is renamed to ``<hex>`` (the rename is the commit point), and only such files are
applied: gunzipped on the fly into the storage driver through ``ImageStore.add_image``,
which also verifies each layer's uncompressed digest against the config's ``diff_ids``
and removes what it applied if anything fails. Layers already in the store are reported
as ``Already exists`` and never requested.

The store lock is taken only for the apply, so downloads do not block ``pydock run``.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import platform
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO

from ..errors import EngineError, InvalidInput
from ..fsutil import FileLock
from ..images import ImageStore, chain_ids, store_name
from . import reference as refmod
from .blobsums import BlobSums
from .client import MANIFEST_TYPES, Registry, TransientError
from .progress import Progress

MAX_DOWNLOADS = 3
CHUNK = 1 << 20
INDEX_TYPES = set(MANIFEST_TYPES[:2])
IMAGE_TYPES = set(MANIFEST_TYPES[2:])
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1"


def downloads_dir(root: Path) -> Path:
    return root / "distribution" / "downloads"


def pull_lock(root: Path) -> FileLock:
    """Held shared by every pull; ``image prune`` takes it exclusively to clear downloads."""
    (root / "distribution").mkdir(parents=True, exist_ok=True)
    return FileLock(root / "distribution" / "pull.lock")


def host_platform() -> tuple[str, str, str]:
    machine = platform.machine()
    arch, variant = {
        "x86_64": ("amd64", ""),
        "aarch64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", ""),
        "ppc64le": ("ppc64le", ""),
        "s390x": ("s390x", ""),
        "riscv64": ("riscv64", ""),
    }.get(machine, (machine, ""))
    return "linux", arch, variant


def parse_platform(text: str | None) -> tuple[str, str, str]:
    if not text:
        return host_platform()
    parts = text.split("/")
    if len(parts) < 2 or len(parts) > 3 or not all(parts):
        raise InvalidInput(f"invalid platform {text!r}: want os/arch[/variant]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(data: bytes, what: str) -> dict:
    try:
        doc = json.loads(data)
    except ValueError:
        raise InvalidInput(f"invalid {what}: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"invalid {what}: not an object")
    return doc


def choose_manifest(index: dict, want: tuple[str, str, str], name: str) -> dict:
    """The index entry for ``want`` (os, arch, variant); a missing variant matches any."""
    os_, arch, variant = want
    fits = []
    for d in index.get("manifests") or []:
        p = d.get("platform") or {}
        if p.get("os") != os_ or p.get("architecture") != arch:
            continue
        if variant and p.get("variant") and p.get("variant") != variant:
            continue
        fits.append(d)
    if not fits:
        wanted = "/".join(x for x in want if x)
        raise InvalidInput(
            f"no matching manifest for {wanted} in the manifest list entries of {name}"
        )
    # an exact variant match beats an entry that names none
    fits.sort(key=lambda d: (d.get("platform") or {}).get("variant") != variant)
    return fits[0]


@dataclass
class Layer:
    digest: str
    media_type: str
    size: int
    diff_id: str
    chain: str

    @property
    def short(self) -> str:
        return self.digest[7:19]


class Puller:
    def __init__(
        self,
        store: ImageStore,
        driver,
        root: Path,
        *,
        insecure: tuple[str, ...] = (),
        platform_: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.store, self.driver, self.root = store, driver, root
        self.insecure = insecure
        self.want = parse_platform(platform_)
        self.progress = progress or Progress()
        self.registries: dict[str, Registry] = {}

    def registry(self, ref: refmod.Reference) -> Registry:
        reg = self.registries.get(ref.endpoint)
        if reg is None:
            reg = Registry(ref.endpoint, domain=ref.domain, root=self.root, insecure=self.insecure)
            self.registries[ref.endpoint] = reg
        return reg

    # -- manifests -------------------------------------------------------------------
    def resolve(self, ref: refmod.Reference) -> tuple[dict, str, bytes]:
        """(image manifest, the digest Docker prints, config bytes) for ``ref``."""
        reg = self.registry(ref)
        scopes = (f"repository:{ref.path}:pull",)
        body, mt = reg.get_manifest(ref.path, ref.reference, scopes)
        top_digest = sha256_digest(body)
        if ref.digest and top_digest != ref.digest:
            raise InvalidInput(f"manifest digest mismatch: asked {ref.digest}, got {top_digest}")
        doc = _json(body, "manifest")
        mt = mt or doc.get("mediaType", "")
        if mt.startswith(SCHEMA1) or doc.get("schemaVersion") == 1:
            raise InvalidInput(f"{ref.familiar()}: Docker schema 1 manifests are not supported")
        if mt in INDEX_TYPES or "manifests" in doc:
            entry = choose_manifest(doc, self.want, ref.familiar())
            body, mt = reg.get_manifest(ref.path, entry["digest"], scopes)
            if sha256_digest(body) != entry["digest"]:
                raise InvalidInput(f"manifest digest mismatch for {entry['digest']}")
            doc = _json(body, "manifest")
        if "config" not in doc or "layers" not in doc:
            raise InvalidInput(f"{ref.familiar()}: unsupported manifest type {mt or '?'}")
        config = self.fetch_small_blob(ref, doc["config"]["digest"])
        return doc, top_digest, config

    def fetch_small_blob(self, ref: refmod.Reference, digest: str) -> bytes:
        """A config blob: small, read whole; a dropped connection is tried again."""
        reg = self.registry(ref)
        for attempt in range(4):
            try:
                with reg.open(
                    "GET", f"/v2/{ref.path}/blobs/{digest}",
                    scopes=(f"repository:{ref.path}:pull",), what=f"blob {digest}",
                ) as r:  # fmt: skip
                    data = r.read()
                break
            except (HTTPException, ConnectionError, TimeoutError) as e:
                if attempt == 3:
                    raise TransientError(f"download of blob {digest} failed: {e!r}") from None
        if sha256_digest(data) != digest:
            raise InvalidInput(f"digest mismatch for blob {digest}")
        return data

    # -- blobs -----------------------------------------------------------------------
    def download(self, ref: refmod.Reference, layer: Layer) -> Path:
        """The verified blob file for ``layer``, resuming any partial download."""
        ddir = downloads_dir(self.root)
        ddir.mkdir(parents=True, exist_ok=True)
        hexpart = layer.digest[7:]
        final = ddir / hexpart
        if final.exists():
            self.progress.status(layer.short, "Download complete")
            return final
        partial = ddir / (hexpart + ".partial")
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another pull of the same blob finishes first
            if final.exists():
                self.progress.status(layer.short, "Download complete")
                return final
            self._fill(ref, layer, fd)
            os.fsync(fd)
            os.rename(partial, final)
        finally:
            os.close(fd)
        self.progress.status(layer.short, "Download complete")
        return final

    def _fill(self, ref: refmod.Reference, layer: Layer, fd: int) -> None:
        h = hashlib.sha256()
        offset = 0
        os.lseek(fd, 0, os.SEEK_SET)
        while chunk := os.read(fd, CHUNK):
            h.update(chunk)
            offset += len(chunk)
        reg = self.registry(ref)
        errors = 0
        while offset < layer.size or layer.size <= 0:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                with reg.open(
                    "GET",
                    f"/v2/{ref.path}/blobs/{layer.digest}",
                    scopes=(f"repository:{ref.path}:pull",),
                    headers=headers,
                    ok=(200, 206),
                    what=f"blob {layer.digest}",
                ) as r:
                    if offset and r.status == 200:  # no Range support: start over
                        os.ftruncate(fd, 0)
                        h, offset = hashlib.sha256(), 0
                    os.lseek(fd, offset, os.SEEK_SET)
                    while data := r.read(CHUNK):
                        os.write(fd, data)
                        h.update(data)
                        offset += len(data)
                        self.progress.status(layer.short, "Downloading", offset, layer.size)
                        if offset > layer.size > 0:
                            break
                if layer.size <= 0 or offset >= layer.size:
                    break
                raise TransientError("connection closed early")
            except (TransientError, HTTPException, OSError) as e:
                errors += 1
                if errors >= 5:
                    raise EngineError(
                        f"download of blob {layer.digest} failed at {offset} of "
                        f"{layer.size} bytes: {e} (pull again to resume)"
                    ) from None
                self.progress.status(layer.short, f"Retrying after: {e}")
        self.progress.status(layer.short, "Verifying Checksum")
        if offset != layer.size or "sha256:" + h.hexdigest() != layer.digest:
            os.ftruncate(fd, 0)  # useless bytes: the next try starts afresh
            raise InvalidInput(
                f"digest mismatch for blob {layer.digest}: got sha256:{h.hexdigest()} "
                f"({offset} bytes, manifest says {layer.size})"
            )

    # -- the whole pull ------------------------------------------------------------
    def pull(self, ref: refmod.Reference) -> str:
        p = self.progress
        p.line(f"{ref.tag or ref.digest}: Pulling from {ref.path}")
        manifest, digest, config = self.resolve(ref)
        cfg = _json(config, "image config")
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        descs = manifest["layers"]
        if len(diff_ids) != len(descs):
            raise InvalidInput(
                f"{ref.familiar()}: manifest has {len(descs)} layers, config {len(diff_ids)}"
            )
        layers = [
            Layer(d["digest"], d.get("mediaType", ""), int(d.get("size", 0)), di, ch)
            for d, di, ch in zip(descs, diff_ids, chain_ids(diff_ids), strict=True)
        ]
        for layer in layers:
            if not layer.digest.startswith("sha256:") or len(layer.digest) != 71:
                raise InvalidInput(f"unsupported layer digest {layer.digest}")
        lock = pull_lock(self.root).acquire(shared=True)
        try:
            missing = []
            for layer in layers:
                if self._have(layer.chain):
                    p.status(layer.short, "Already exists")
                else:
                    p.status(layer.short, "Pulling fs layer")
                    missing.append(layer)
            files = self._download_all(ref, missing)
            image_id, fresh = self._apply(config, layers, files, ref)
        finally:
            lock.release()
        for f in files.values():
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        sums = BlobSums(self.root)
        for layer in layers:
            entry = {"digest": layer.digest, "size": layer.size, "diff_id": layer.diff_id,
                     "media_type": layer.media_type}  # fmt: skip
            sums.record(layer.chain, entry, f"{ref.endpoint}/{ref.path}")
        p.line(f"Digest: {digest}")
        if ref.tag and not ref.digest:
            with self.store.lock:
                before = self.store.tags().get(ref.familiar())
                self.store.tag(image_id, ref.familiar())
            fresh = fresh or before != image_id
        self.store.add_repo_digest(ref.familiar_name, digest, image_id)
        verb = "Downloaded newer image for" if fresh else "Image is up to date for"
        p.line(f"Status: {verb} {ref.familiar()}")
        return image_id

    def _have(self, chain: str) -> bool:
        return bool(self.store.layer_record(store_name(self.driver), chain)) and self.driver.exists(
            chain[7:]
        )

    def _download_all(self, ref: refmod.Reference, missing: list[Layer]) -> dict[str, Path]:
        if not missing:
            return {}
        for layer in missing[MAX_DOWNLOADS:]:
            self.progress.status(layer.short, "Waiting")
        with ThreadPoolExecutor(MAX_DOWNLOADS, thread_name_prefix="pull") as pool:
            futures = {layer.digest: pool.submit(self.download, ref, layer) for layer in missing}
            errors = []
            files = {}
            for d, fut in futures.items():
                try:
                    files[d] = fut.result()
                except BaseException as e:  # report the first failure after all settle
                    errors.append(e)
            if errors:
                raise errors[0]
        return files

    def _apply(
        self, config: bytes, layers: list[Layer], files: dict[str, Path], ref: refmod.Reference
    ) -> tuple[str, bool]:
        p = self.progress
        image_id = sha256_digest(config)
        done: list[Layer] = []

        @contextlib.contextmanager
        def open_layer(i: int) -> Iterator[BinaryIO]:
            layer = layers[i]
            for prev in done:
                p.status(prev.short, "Pull complete")
            done.clear()
            p.status(layer.short, "Extracting")
            path = files.get(layer.digest)
            if path is None:  # present when checked, gone now (rmi meanwhile): fetch it
                path = self.download(ref, layer)
                files[layer.digest] = path
            with open(path, "rb") as f, decompressed(f, layer.media_type) as stream:
                yield stream
            done.append(layer)

        with self.store.lock:
            fresh = self.store.lookup(image_id) is None
            try:
                self.store.add_image(config, open_layer, [], self.driver)
            except InvalidInput:
                for f in files.values():  # the bytes were wrong: do not resume from them
                    with contextlib.suppress(FileNotFoundError):
                        f.unlink()
                raise
        for prev in done:
            p.status(prev.short, "Pull complete")
        return image_id, fresh


class _Gunzip:
    """Gzip errors as one-line InvalidInput (GzipFile raises EOFError / zlib.error)."""

    def __init__(self, g: gzip.GzipFile) -> None:
        self.g = g

    def read(self, n: int = -1) -> bytes:
        try:
            return self.g.read(n)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise InvalidInput(f"invalid gzip-compressed layer: {e}") from None


@contextlib.contextmanager
def decompressed(f: BinaryIO, media_type: str) -> Iterator[BinaryIO]:
    head = f.read(4)
    f.seek(0)
    if media_type.endswith("zstd") or head == b"\x28\xb5\x2f\xfd":
        raise InvalidInput("zstd-compressed layers are not supported (no zstd library)")
    if media_type.endswith("gzip") or head[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=f) as g:
            yield _Gunzip(g)  # type: ignore[misc]
    else:
        yield f


def pull_all_tags(puller: Puller, ref: refmod.Reference) -> list[str]:
    reg = puller.registry(ref)
    with reg.open(
        "GET",
        f"/v2/{ref.path}/tags/list",
        scopes=(f"repository:{ref.path}:pull",),
        what=f"tags of {ref.familiar_name}",
    ) as r:
        tags = sorted((_json(r.read(), "tag list").get("tags")) or [])
    return [puller.pull(ref.with_tag(t)) for t in tags]
