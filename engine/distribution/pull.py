"""``pydock pull``: manifest -> config -> layers, verified, into the image store.

Blobs are downloaded (three at a time, as Docker does) into
``<root>/distribution/downloads/<hex>.partial`` while their sha256 is computed; a
download cut short keeps its partial file and the next attempt (or the next pull, after a
crash or ``kill -9``) resumes it with an HTTP ``Range`` request. Only a blob whose digest
matched is renamed to ``<hex>`` (the rename is the commit point), and only such files are
applied: decompressed on the fly (gzip or zstd, :mod:`..layercompress`) into the storage
driver through ``ImageStore.apply_layer``, which also verifies each layer's uncompressed
digest against the config's ``diff_ids``. Layers already in the store are reported as
``Already exists`` and never requested.

Each layer is applied as soon as it and its parents are in (downloads stay three at a
time; application goes in layer order), taking the store lock for that one layer, so
downloads never block ``pydock run`` and a slow last layer does not hold the others back.
A pin (:mod:`..layerpins`) guards the applied layers until the image config is written;
if a later layer fails, the layers this pull applied are removed again. Those of a pull
that was killed are taken over by the next pull of an image that needs them and removed
by any other pull or by ``rmi``/``image prune`` (nothing names them).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO

from ..errors import EngineError, InvalidInput
from ..fsutil import FileLock
from ..images import ImageStore, chain_ids, store_name
from ..layercompress import decompressed
from . import reference as refmod
from .blobsums import BlobSums
from .client import MANIFEST_TYPES, Registry, TransientError
from .endpoints import Endpoint, pull_endpoints
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
        self.registries: dict[Endpoint, Registry] = {}
        #: repository (full name) -> the endpoint its pull is talking to now
        self.endpoint: dict[str, Endpoint] = {}
        self._abort = threading.Event()  # set when a pull fails: other downloads stop

    def registry(self, ref: refmod.Reference) -> Registry:
        ep = self.endpoint.get(ref.full_name) or pull_endpoints(ref, self.root)[-1]
        reg = self.registries.get(ep)
        if reg is None:
            # A mirror gets the credentials stored for its own host, never Docker Hub's
            # (Docker sends the Hub's to every mirror; pydock does not hand them out).
            domain = ep.host if ep.mirror else ref.domain
            reg = Registry(ep.host, domain=domain, root=self.root, insecure=self.insecure,
                           scheme=ep.scheme)  # fmt: skip
            self.registries[ep] = reg
        return reg

    def through_endpoints(self, ref: refmod.Reference, fn):  # noqa: ANN001, ANN201
        """``fn()`` against each of ``ref``'s endpoints in turn until one succeeds: a
        mirror that fails in any way hands over to the next endpoint, and the last
        endpoint's error is the one reported (Docker's pull, distribution/pull.go)."""
        endpoints = pull_endpoints(ref, self.root)
        for i, ep in enumerate(endpoints):
            self.endpoint[ref.full_name] = ep
            try:
                return fn()
            except EngineError:
                if not ep.mirror or i == len(endpoints) - 1:
                    raise
            finally:
                self.endpoint.pop(ref.full_name, None)
        raise AssertionError("pull_endpoints returned no endpoint")

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
                        if self._abort.is_set():  # another layer failed: keep the partial
                            raise EngineError(f"download of blob {layer.digest} stopped")
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
        """Pull ``ref`` into the store (mirrors first for Docker Hub's names); its id."""
        return self.through_endpoints(ref, lambda: self._pull(ref))

    def _pull(self, ref: refmod.Reference) -> str:
        p = self.progress
        manifest, digest, config = self.resolve(ref)
        # after the manifest, as Docker: a mirror that has no such image prints nothing
        p.line(f"{ref.tag or ref.digest}: Pulling from {ref.path}")
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
            image_id, fresh = self._fetch(ref, config, layers)
        finally:
            lock.release()
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

    def _fetch(self, ref: refmod.Reference, config: bytes, layers: list[Layer]) -> tuple[str, bool]:
        """Download the missing layers three at a time and apply each in layer order as
        soon as it and its parents are in: the image id, and whether it is new here.

        Each apply takes the store lock for that layer only. The pin (layerpins) keeps the
        layers of this pull from rmi, prune and other pulls' rollbacks until the config is
        written; if anything fails, the layers this pull applied are rolled back.
        """
        from .. import layerpins

        p = self.progress
        self._abort.clear()
        pin = layerpins.Pin(self.root, store_name(self.driver), [x.chain for x in layers])
        created: list[str] = []
        files: dict[str, Path] = {}
        pool = ThreadPoolExecutor(MAX_DOWNLOADS, thread_name_prefix="pull")
        try:
            missing: dict[str, Layer] = {}
            for layer in layers:
                if self._have(layer.chain):
                    p.status(layer.short, "Already exists")
                elif layer.digest not in missing:
                    p.status(layer.short, "Pulling fs layer")
                    missing[layer.digest] = layer
            for layer in list(missing.values())[MAX_DOWNLOADS:]:
                p.status(layer.short, "Waiting")
            futures: dict[str, Future[Path]] = {
                d: pool.submit(self.download, ref, layer) for d, layer in missing.items()
            }
            for i, layer in enumerate(layers):
                fut = futures.get(layer.digest)
                if fut is not None:
                    files[layer.digest] = fut.result()  # a failed download raises here
                if self._apply_layer(ref, layers, i, files, first=i == 0):
                    created.append(layer.chain)
            image_id = sha256_digest(config)
            with self.store.lock:
                fresh = self.store.lookup(image_id) is None
                # every layer is in by now (pinned); add_image re-checks and writes the config
                self.store.add_image(config, self._opener(ref, layers, files), [], self.driver)
                pin.release()
        except BaseException as e:
            self._abort.set()  # running downloads stop; their partial files stay for resume
            pool.shutdown(wait=True, cancel_futures=True)
            with self.store.lock:
                pin.release()
                layerpins.drop_unclaimed(self.store, self.driver, created, self.root)
            if isinstance(e, InvalidInput):
                for f in files.values():  # the bytes were wrong: do not resume from them
                    with contextlib.suppress(FileNotFoundError):
                        f.unlink()
            raise
        finally:
            pool.shutdown(wait=True)
            pin.release()
        for f in files.values():
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        return image_id, fresh

    def _apply_layer(
        self, ref: refmod.Reference, layers: list[Layer], i: int, files: dict[str, Path],
        *, first: bool,
    ) -> bool:  # fmt: skip
        """Apply layer ``i`` unless the store has it; True if this call applied it."""
        from .. import layerpins

        layer = layers[i]
        while True:
            path = files.get(layer.digest)
            with self.store.lock:
                if first:  # what pulls killed before left behind goes first
                    layerpins.recover(self.store, self.driver, self.root)
                    first = False
                if self._have(layer.chain):
                    return False
                if path is not None:
                    self.progress.status(layer.short, "Extracting")
                    with open(path, "rb") as f, decompressed(f, layer.media_type) as stream:
                        self.store.apply_layer(
                            self.driver, layer.chain, layers[i - 1].chain if i else None,
                            layer.diff_id, stream,
                        )  # fmt: skip
                    self.progress.status(layer.short, "Pull complete")
                    return True
            # present when checked, gone now (rmi meanwhile): fetch it outside the lock
            files[layer.digest] = self.download(ref, layer)

    def _opener(self, ref: refmod.Reference, layers: list[Layer], files: dict[str, Path]):  # noqa: ANN202
        """add_image's layer opener, for a layer that vanished after it was applied."""

        @contextlib.contextmanager
        def open_layer(i: int) -> Iterator[BinaryIO]:
            layer = layers[i]
            path = files.get(layer.digest) or self.download(ref, layer)
            files[layer.digest] = path
            with open(path, "rb") as f, decompressed(f, layer.media_type) as stream:
                yield stream

        return open_layer


def pull_all_tags(puller: Puller, ref: refmod.Reference) -> list[str]:
    def tag_list() -> list[str]:
        with puller.registry(ref).open(
            "GET",
            f"/v2/{ref.path}/tags/list",
            scopes=(f"repository:{ref.path}:pull",),
            what=f"tags of {ref.familiar_name}",
        ) as r:
            return sorted((_json(r.read(), "tag list").get("tags")) or [])

    tags = puller.through_endpoints(ref, tag_list)
    return [puller.pull(ref.with_tag(t)) for t in tags]
