"""``pydock push``: layers, then the config, then the manifest (so a registry never serves a
manifest whose blobs are missing).

For each layer, cheapest first: the blob this layer came from (``blobsums``) is already in
the target repository (HEAD) -> ``Layer already exists``; it is in another repository of
the same registry -> cross-repository mount (``POST .../uploads/?mount=&from=``) ->
``Mounted from ...``; otherwise the layer is exported through the storage driver
(``Driver.diff_exact``, else ``Driver.diff``: :mod:`..layerexport`), gzip-compressed
(mtime 0, so the same layer gives the same blob every
time), and uploaded: in one ``PUT`` when small (monolithic), else in ``PATCH`` chunks then
a closing ``PUT`` (distribution-spec "chunked upload").

Layers applied from a tar (pulled, loaded, bootstrapped) are written back byte for byte
from their tar-split recording, so the config and the image id stay as they are. Where no
recording exists (an imported layer copied to another driver, a recording refused) the
driver's re-export is an equivalent tar with another digest: the pushed image then gets a
config with the re-exported diff ids (history, env, everything else unchanged) and
therefore a new image id, which push prints. Either way the pushed image is
self-consistent: pulled back, every layer verifies. Images that were pulled keep their
registry blobs (via ``blobsums``) and are pushed unchanged.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import tempfile
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineError, NotFound
from ..images import ImageStore, chain_ids
from ..layerexport import export_layer
from . import reference as refmod
from .blobsums import BlobSums
from .client import Registry, RegistryError
from .progress import Progress

MAX_UPLOADS = 3
MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def chunk_size() -> int:
    """Blobs larger than this go up in PATCH chunks (PYDOCK_PUSH_CHUNK_SIZE, bytes)."""
    return int(os.environ.get("PYDOCK_PUSH_CHUNK_SIZE", str(64 << 20)))


@dataclass
class Blob:
    digest: str
    size: int
    diff_id: str
    path: Path | None = None  # the exported, compressed file (None when not exported)


class _HashWriter:
    """A file that hashes and counts what is written through it."""

    def __init__(self, f) -> None:  # noqa: ANN001
        self.f, self.hash, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


class _TarTee:
    """Receives the driver's tar: hashes it (the diff id) and feeds the gzip stream."""

    def __init__(self, gz: gzip.GzipFile) -> None:
        self.gz, self.hash = gz, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.gz.write(data)

    def flush(self) -> None:
        pass


class Pusher:
    def __init__(
        self,
        store: ImageStore,
        open_driver,
        root: Path,
        *,
        insecure: tuple[str, ...] = (),
        progress: Progress | None = None,
    ) -> None:
        self.store, self.open_driver, self.root = store, open_driver, root
        self.insecure = insecure
        self.progress = progress or Progress()
        self.sums = BlobSums(root)
        self.spool = root / "distribution" / "push"

    def push(self, ref: refmod.Reference, image_id: str) -> tuple[str, str]:
        """Push ``image_id`` as ``ref``; returns (manifest digest, pushed image id)."""
        p = self.progress
        reg = Registry(ref.endpoint, domain=ref.domain, root=self.root, insecure=self.insecure)
        self.reg, self.ref = reg, ref
        self.scopes = (f"repository:{ref.path}:pull,push",)
        p.line(f"The push refers to repository [{ref.full_name}]")
        config = self.store.config(image_id)
        diff_ids = list(config["rootfs"]["diff_ids"])
        chains = chain_ids(diff_ids)
        driver = self._driver_with(chains)
        for c in reversed(chains):
            p.status(self._short(c), "Preparing")
        self.spool.mkdir(parents=True, exist_ok=True)
        try:
            with ThreadPoolExecutor(MAX_UPLOADS, thread_name_prefix="push") as pool:
                futs = [
                    pool.submit(self._layer, driver, c, d)
                    for c, d in zip(chains, diff_ids, strict=True)
                ]
                blobs = [f.result() for f in futs]
        finally:
            for f in self.spool.glob(f"{os.getpid()}-*"):
                f.unlink()
        new_ids = [b.diff_id for b in blobs]
        config_bytes = self.store.config_bytes(image_id)
        pushed_id = image_id
        if new_ids != diff_ids:
            config["rootfs"]["diff_ids"] = new_ids
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            pushed_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
            p.line(
                f"Note: layers were re-exported by the storage driver; the pushed image's "
                f"id is {pushed_id}"
            )
        self._put_blob_bytes(pushed_id, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "size": len(config_bytes), "digest": pushed_id},
            "layers": [{"mediaType": MT_LAYER, "size": b.size, "digest": b.digest} for b in blobs],
        }
        body = json.dumps(manifest, indent=3).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        tag = ref.tag or refmod.DEFAULT_TAG
        with reg.open(
            "PUT",
            f"/v2/{ref.path}/manifests/{tag}",
            scopes=self.scopes,
            headers={"Content-Type": MT_MANIFEST},
            data=body,
            ok=(201, 200, 202),
            what=f"manifest {ref.familiar()}",
        ):
            pass
        repo = f"{ref.endpoint}/{ref.path}"
        for c, b in zip(chains, blobs, strict=True):
            entry = {"digest": b.digest, "size": b.size, "diff_id": b.diff_id,
                     "media_type": MT_LAYER, "driver": driver.name}  # fmt: skip
            if b.diff_id == diff_ids[chains.index(c)]:
                entry.pop("driver")  # the blob is the original layer: any driver's
            self.sums.record(c, entry, repo)
        if pushed_id == image_id:
            self.store.add_repo_digest(ref.familiar_name, digest, image_id)
        p.line(f"{tag}: digest: {digest} size: {len(body)}")
        return digest, pushed_id

    # -- layers ----------------------------------------------------------------------
    def _driver_with(self, chains: list[str]):  # noqa: ANN202
        for name in self.store.drivers_with_layers():
            if all(self.store.layer_record(name, c) for c in chains):
                return self.open_driver(name)
        raise EngineError("the image's layers are in no storage driver; pull or load it again")

    @staticmethod
    def _short(chain: str) -> str:
        return chain[7:19]

    def _layer(self, driver, chain: str, diff_id: str) -> Blob:  # noqa: ANN001
        p = self.progress
        short = self._short(chain)
        known = self.sums.get(chain)
        if known and known.get("driver", driver.name) == driver.name:
            blob = Blob(known["digest"], known["size"], known["diff_id"])
            if self._exists(blob.digest):
                p.status(short, "Layer already exists")
                return blob
            source = self._mount(blob.digest, known.get("repos", []))
            if source:
                p.status(short, f"Mounted from {source}")
                return blob
        blob = self._export(driver, chain, diff_id)
        if self._exists(blob.digest):
            p.status(short, "Layer already exists")
            return blob
        source = self._mount(blob.digest, known.get("repos", []) if known else [])
        if source:
            p.status(short, f"Mounted from {source}")
            return blob
        p.status(short, "Pushing")
        assert blob.path is not None
        self._upload(blob.digest, blob.path, blob.size)
        p.status(short, "Pushed")
        return blob

    def _export(self, driver, chain: str, diff_id: str) -> Blob:  # noqa: ANN001
        fd, name = tempfile.mkstemp(dir=self.spool, prefix=f"{os.getpid()}-")
        os.close(fd)
        path = Path(name)
        result: list[Blob] = []

        def attempt(write) -> str:  # noqa: ANN001
            result.clear()
            with open(path, "wb") as raw:
                out = _HashWriter(raw)
                with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:  # type: ignore[arg-type]
                    tee = _TarTee(gz)
                    write(tee)
            blob = Blob(
                "sha256:" + out.hash.hexdigest(), out.size, "sha256:" + tee.hash.hexdigest(), path
            )
            result.append(blob)
            return blob.diff_id

        export_layer(driver, chain[7:], diff_id, attempt)
        return result[0]

    def _exists(self, digest: str) -> bool:
        try:
            self.reg.open(
                "HEAD", f"/v2/{self.ref.path}/blobs/{digest}", scopes=self.scopes, what="blob"
            ).close()
            return True
        except NotFound:
            return False

    def _mount(self, digest: str, repos: list[str]) -> str | None:
        """Cross-repository mount from a repository of the same registry, if any."""
        for repo in repos:
            host, _, path = repo.partition("/")
            if host != self.ref.endpoint or path == self.ref.path:
                continue
            q = urllib.parse.urlencode({"mount": digest, "from": path})
            try:
                r = self.reg.open(
                    "POST", f"/v2/{self.ref.path}/blobs/uploads/?{q}",
                    scopes=(*self.scopes, f"repository:{path}:pull"),
                    data=b"", ok=(201, 202), what="blob mount", retry=False,
                )  # fmt: skip
            except RegistryError:
                continue
            with r:
                if r.status == 201:
                    return path
                self._cancel(r.headers.get("Location"))
        return None

    def _cancel(self, location: str | None) -> None:
        if location:
            with contextlib.suppress(RegistryError, NotFound):
                self.reg.open("DELETE", self._abs(location), scopes=self.scopes,
                              ok=(204, 200, 202), retry=False).close()  # fmt: skip

    def _abs(self, location: str) -> str:
        return location if "://" in location else self.reg.url(location)

    def _start(self) -> str:
        with self.reg.open(
            "POST", f"/v2/{self.ref.path}/blobs/uploads/", scopes=self.scopes, data=b"",
            ok=(202,), what="blob upload",
        ) as r:  # fmt: skip
            loc = r.headers.get("Location")
        if not loc:
            raise RegistryError("registry gave no upload location")
        return self._abs(loc)

    def _upload(self, digest: str, path: Path, size: int) -> None:
        last: Exception | None = None
        for _attempt in range(3):  # an upload session is not idempotent: start a new one
            loc = self._start()
            try:
                if size <= chunk_size():
                    self._put(loc, digest, path, size)
                else:
                    self._chunked(loc, digest, path, size)
                return
            except (RegistryError, OSError) as e:
                last = e
                self._cancel(loc)
        raise EngineError(f"upload of blob {digest} failed: {last}")

    def _put(self, loc: str, digest: str, path: Path, size: int) -> None:
        sep = "&" if "?" in loc else "?"
        with open(path, "rb") as f, self.reg.open(
            "PUT", f"{loc}{sep}digest={digest}", scopes=self.scopes, data=f,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            ok=(201,), what=f"blob {digest}", retry=False,
        ):  # fmt: skip
            pass

    def _chunked(self, loc: str, digest: str, path: Path, size: int) -> None:
        step = chunk_size()
        with open(path, "rb") as f:
            offset = 0
            while offset < size:
                data = f.read(step)
                end = offset + len(data) - 1
                with self.reg.open(
                    "PATCH", loc, scopes=self.scopes, data=data,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"{offset}-{end}",
                             "Content-Length": str(len(data))},
                    ok=(202,), what=f"blob {digest} chunk", retry=False,
                ) as r:  # fmt: skip
                    loc = self._abs(r.headers.get("Location") or loc)
                offset += len(data)
        sep = "&" if "?" in loc else "?"
        with self.reg.open(
            "PUT", f"{loc}{sep}digest={digest}", scopes=self.scopes, data=b"",
            headers={"Content-Length": "0"}, ok=(201,), what=f"blob {digest}", retry=False,
        ):  # fmt: skip
            pass

    def _put_blob_bytes(self, digest: str, data: bytes) -> None:
        if self._exists(digest):
            return
        loc = self._start()
        sep = "&" if "?" in loc else "?"
        with self.reg.open(
            "PUT", f"{loc}{sep}digest={digest}", scopes=self.scopes, data=data,
            headers={"Content-Type": "application/octet-stream"}, ok=(201,),
            what=f"config blob {digest}", retry=False,
        ):  # fmt: skip
            pass
