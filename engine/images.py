"""The image store: image configs by content address, tags, and per-driver layer records.

On disk, under the pydock root::

    images/sha256/<hex>            image config bytes; the image id is sha256 of them
    repositories.json              {"busybox:latest": "sha256:<hex>", ...}
    repodigests.json               {"busybox@sha256:<manifest>": "sha256:<image>", ...}
    layerdb/<store>/<chain>.json   {"chain_id", "diff_id", "parent", "size"} one per layer
                                   (<store>: the driver name, or the store it shares)
    image.lock                     flock: exclusive for changes, shared to pin images

Layers are named by OCI chain ids (image-spec config.md): the chain id of the first layer
is its diff id, and ChainID(L1..Ln) = sha256(ChainID(L1..Ln-1) + " " + DiffID(Ln)). The
driver layer id is the chain id's hex, so a layer record is the commit point: a driver
layer without a record is the remains of a crash and is removed before it is used again.

Image configs are driver-independent; layers are materialised per driver. When a container
asks a driver for an image whose layers live in another driver only, the layers are copied
across through the driver interface (``diff`` from one, ``apply_diff`` into the other), so
no tar blobs need to be kept.
"""

from __future__ import annotations

import json
import os
from collections import namedtuple
from collections.abc import Callable, Iterable
from pathlib import Path

from . import reference
from .errors import Conflict, EngineError, InvalidInput, NotFound
from .fsutil import FileLock, read_json, write_atomic, write_json

TYPE_CHECKING = False  # typing costs milliseconds to import on the start path
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import BinaryIO

    #: opens the uncompressed tar stream of layer i (called once, in order, in a ``with``)
    LayerOpener = Callable[[int], AbstractContextManager[BinaryIO]]


def sha256_hex(data: bytes) -> str:
    import hashlib  # only images with more than one layer need it on the start path

    return hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """OCI chain ids for a list of diff ids (image-spec config.md, "Layer ChainID")."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + sha256_hex(f"{out[-1]} {d}".encode()))
    return out


def store_name(driver) -> str:
    """The layerdb key of ``driver``: its layer store's name, which drivers sharing one store
    (fuse-union mounts overlay2's layers) have in common, so their records are shared too."""
    return getattr(driver, "layer_store", None) or driver.name


def short_id(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


class HashingReader:
    """Wraps a stream, hashing every byte read; ``drain`` reads what the consumer left."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        import hashlib

        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class ImageInfo(namedtuple("ImageInfo", "id config tags size")):
    """One image for ``images``: id, config dict, tags, recorded size."""

    __slots__ = ()


class ImageStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.images_dir = self.root / "images" / "sha256"
        self.tags_file = self.root / "repositories.json"
        self.digests_file = self.root / "repodigests.json"
        self.lock = FileLock(self.root / "image.lock")

    def ensure_dirs(self) -> None:
        self.images_dir.mkdir(parents=True, exist_ok=True)

    # -- reading ---------------------------------------------------------------------
    def tags(self) -> dict[str, str]:
        try:
            return read_json(self.tags_file)
        except FileNotFoundError:
            return {}

    def image_ids(self) -> list[str]:
        try:
            return ["sha256:" + n for n in os.listdir(self.images_dir) if len(n) == 64]
        except FileNotFoundError:
            return []

    def config_bytes(self, image_id: str) -> bytes:
        try:
            return (self.images_dir / image_id.split(":", 1)[-1]).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"No such image: {image_id}") from None

    def config(self, image_id: str) -> dict:
        return json.loads(self.config_bytes(image_id))

    def lookup(self, ref: str) -> str | None:
        """An image id for a tag, a full id or an unambiguous id prefix; None if none."""
        hexpart = ref[7:] if ref.startswith("sha256:") else ref
        if "@" in ref:
            return self._lookup_digest(ref)
        if len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart):
            if (self.images_dir / hexpart).exists():
                return "sha256:" + hexpart
            return None
        try:
            found = self.tags().get(reference.normalize(ref))
        except InvalidInput:
            found = None
        if found:
            return found
        if 1 <= len(hexpart) < 64 and all(c in "0123456789abcdef" for c in hexpart):
            hits = [i for i in self.image_ids() if i[7:].startswith(hexpart)]
            if len(hits) == 1:
                return hits[0]
        return None

    # -- repo digests: which manifest a registry served (or took) for an image --------
    def repo_digests_map(self) -> dict[str, str]:
        try:
            return read_json(self.digests_file)
        except FileNotFoundError:
            return {}

    def repo_digests(self, image_id: str) -> list[str]:
        return sorted(r for r, i in self.repo_digests_map().items() if i == image_id)

    def add_repo_digest(self, name: str, digest: str, image_id: str) -> None:
        """Record ``name@digest`` for the image; a repository keeps one digest per image."""
        entries = {
            r: i
            for r, i in self.repo_digests_map().items()
            if not (i == image_id and r.rpartition("@")[0] == name)
        }
        entries[f"{name}@{digest}"] = image_id
        write_json(self.digests_file, entries, durable=True)

    def remove_repo_digest(self, ref: str) -> None:
        """Forget ``name@digest`` (a missing one is no error: Docker's untag is idempotent)."""
        entries = self.repo_digests_map()
        if entries.pop(ref, None) is not None:
            write_json(self.digests_file, entries, durable=True)

    def _lookup_digest(self, ref: str) -> str | None:
        name, _, digest = ref.partition("@")
        name = reference.familiar_name(name)
        found = self.repo_digests_map().get(f"{name}@{digest}")
        return found if found and (self.images_dir / found[7:]).exists() else None

    def resolve(self, ref: str) -> str:
        image_id = self.lookup(ref)
        if image_id is None:
            raise NotFound(f"No such image: {ref}")
        return image_id

    def tags_of(self, image_id: str) -> list[str]:
        return sorted(t for t, i in self.tags().items() if i == image_id)

    def layer_chain(self, image_id: str) -> list[str]:
        return chain_ids(self.config(image_id).get("rootfs", {}).get("diff_ids", []))

    # -- layer records ---------------------------------------------------------------
    def _layerdb(self, driver_name: str) -> Path:
        return self.root / "layerdb" / driver_name

    def layer_record(self, driver_name: str, chain_id: str) -> dict | None:
        try:
            return read_json(self._layerdb(driver_name) / (chain_id[7:] + ".json"))
        except FileNotFoundError:
            return None

    def layer_records(self, driver_name: str) -> dict[str, dict]:
        d = self._layerdb(driver_name)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return {}
        return {"sha256:" + n[:-5]: read_json(d / n) for n in names if n.endswith(".json")}

    def drivers_with_layers(self) -> list[str]:
        try:
            return sorted(os.listdir(self.root / "layerdb"))
        except FileNotFoundError:
            return []

    def image_size(self, image_id: str, driver_name: str | None = None) -> int:
        """Sum of the image's layer sizes as recorded when they were applied."""
        try:
            chain = self.layer_chain(image_id)
        except NotFound:
            return 0  # deleted under a container that still uses its layers (rmi -f)
        for name in [driver_name] if driver_name else self.drivers_with_layers():
            recs = [self.layer_record(name, c) for c in chain]
            if all(recs):
                return sum(r["size"] for r in recs)  # type: ignore[index]
        return 0

    def images(self) -> list[ImageInfo]:
        tags = self.tags()
        by_id: dict[str, list[str]] = {}
        for t, i in tags.items():
            by_id.setdefault(i, []).append(t)
        out = []
        for image_id in self.image_ids():
            out.append(
                ImageInfo(
                    image_id,
                    self.config(image_id),
                    sorted(by_id.get(image_id, [])),
                    self.image_size(image_id),
                )
            )
        return out

    # -- writing (callers hold self.lock exclusively) ------------------------------
    def apply_layer(
        self,
        driver,
        chain_id: str,
        parent: str | None,
        diff_id: str,
        stream: BinaryIO,
        *,
        verify: bool = True,
    ) -> int:
        """Apply one layer into ``driver`` under its chain id, verifying its diff id.

        ``verify=False`` is for tars pydock exported itself from another driver: they
        differ byte-wise from the original, so the original diff id is kept unverified.
        Returns the applied size. On any failure the driver layer is removed again, so the
        store is as it was.
        """
        layer_id = chain_id[7:]
        parent_id = parent[7:] if parent else None
        if driver.exists(layer_id):
            driver.remove(layer_id)  # no record: remains of an interrupted apply
        driver.create(layer_id, parent_id)
        try:
            reader = HashingReader(stream)
            size = driver.apply_diff(layer_id, parent_id, reader)
            reader.drain()
            if verify and reader.digest() != diff_id:
                raise InvalidInput(
                    f"layer digest mismatch: expected {diff_id}, got {reader.digest()}"
                )
        except BaseException:
            # A driver may already have removed the layer (overlay2 and vfs do when
            # apply_diff fails); removing it again would raise LayerNotFound and hide the
            # real error (an unsafe entry, a bad tar) behind "no layer ...".
            if driver.exists(layer_id):
                driver.remove(layer_id)
            raise
        db = self._layerdb(store_name(driver))
        db.mkdir(parents=True, exist_ok=True)
        write_json(
            db / (layer_id + ".json"),
            {"chain_id": chain_id, "diff_id": diff_id, "parent": parent, "size": size},
            durable=True,
        )
        return size

    def add_image(
        self,
        config_bytes: bytes,
        open_layer: LayerOpener,
        tags: list[str],
        driver,
        progress: Callable[[str], None] | None = None,
    ) -> str:
        """Store an image: apply its missing layers, then its config, then its tags.

        Layers created by this call are removed again if a later step fails, so a failed
        add leaves the store unchanged. The caller holds ``self.lock`` exclusively.
        """
        try:
            config = json.loads(config_bytes)
            diff_ids = list(config["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise InvalidInput("invalid image config: no rootfs.diff_ids") from None
        image_id = "sha256:" + sha256_hex(config_bytes)
        chains = chain_ids(diff_ids)
        created: list[str] = []
        try:
            for i, (chain, diff_id) in enumerate(zip(chains, diff_ids, strict=True)):
                if self.layer_record(store_name(driver), chain) and driver.exists(chain[7:]):
                    if progress:
                        progress(f"{diff_id[7:19]}: Already exists")
                    continue
                with open_layer(i) as stream:
                    self.apply_layer(driver, chain, chains[i - 1] if i else None, diff_id, stream)
                created.append(chain)
                if progress:
                    progress(f"Loading layer {diff_id[7:19]}: done")
            self.ensure_dirs()
            write_atomic(self.images_dir / image_id[7:], config_bytes, durable=True)
        except BaseException:
            for chain in reversed(created):
                self._drop_layer(driver, chain)
            raise
        for t in tags:
            self.tag(image_id, t)
        return image_id

    def _drop_layer(self, driver, chain: str) -> None:
        try:
            (self._layerdb(store_name(driver)) / (chain[7:] + ".json")).unlink()
        except FileNotFoundError:
            pass
        if driver.exists(chain[7:]):
            from .prestart import settle_teardowns

            settle_teardowns(str(self.root))  # a served run's layer may still sit on it
            driver.remove(chain[7:])

    def tag(self, image_id: str, ref: str) -> str | None:
        """Point ``ref`` at ``image_id``; returns the image it pointed at before, if any."""
        ref = reference.normalize(ref)
        tags = self.tags()
        old = tags.get(ref)
        tags[ref] = image_id
        write_json(self.tags_file, tags, durable=True)
        return old if old != image_id else None

    def untag(self, ref: str) -> str:
        ref = reference.normalize(ref)
        tags = self.tags()
        if ref not in tags:
            raise NotFound(f"No such image: {ref}")
        image_id = tags.pop(ref)
        write_json(self.tags_file, tags, durable=True)
        return image_id

    def layers_under(self, tops: Iterable[str]) -> set[str]:
        """The chain ids of the layers ``tops`` (layer ids, as a container's ``Parent``)
        stand on, from the layer records: what containers need even when the image they
        were made from is gone (``rmi -f`` of an image a stopped container uses)."""
        records: dict[str, dict] = {}
        for name in self.drivers_with_layers():
            records.update(self.layer_records(name))
        out: set[str] = set()
        for top in tops:
            chain: str | None = "sha256:" + top.removeprefix("sha256:")
            while chain and chain not in out:
                out.add(chain)
                chain = (records.get(chain) or {}).get("parent")
        return out

    def delete_image(
        self, image_id: str, open_driver: Callable[[str], object], keep: Iterable[str] = ()
    ) -> list[str]:
        """Remove an untagged image's config and every layer no other image needs.

        Returns the removed layer chain ids. ``open_driver(name)`` gives the driver that
        holds a layerdb; ``keep``: more chain ids to keep (the layers containers stand on).
        """
        if self.tags_of(image_id):
            raise Conflict(f"image {short_id(image_id)} is still tagged")
        (self.images_dir / image_id[7:]).unlink()
        digests = self.repo_digests_map()
        if image_id in digests.values():
            kept = {r: i for r, i in digests.items() if i != image_id}
            write_json(self.digests_file, kept, durable=True)
        from .layerpins import held

        wanted = held(self.root)  # layers of pulls in progress are not garbage yet
        wanted.update(keep)
        for other in self.image_ids():
            wanted.update(self.layer_chain(other))
        removed = []
        for name in self.drivers_with_layers():
            records = self.layer_records(name)
            unused = [c for c in records if c not in wanted]
            if not unused:
                continue
            driver = open_driver(name)
            # children before parents: a layer's depth is its chain length
            for chain in sorted(unused, key=lambda c: -_depth(records, c)):
                self._drop_layer(driver, chain)
                removed.append(chain)
        return removed

    # -- materialising across drivers ----------------------------------------------
    def ensure_layers(self, image_id: str, driver, open_driver: Callable[[str], object]) -> str:
        """Make sure ``driver`` holds every layer of the image; return the top layer id.

        Missing layers are copied from another driver that has them. The caller holds
        ``self.lock`` (shared is enough to pin the image; copying takes it exclusively).
        """
        config = self.config(image_id)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        chains = chain_ids(diff_ids)
        if not chains:
            raise EngineError(f"image {short_id(image_id)} has no layers")
        missing = [
            c
            for c in chains
            if not (self.layer_record(store_name(driver), c) and driver.exists(c[7:]))
        ]
        for chain in missing:
            self._copy_layer(chain, chains, diff_ids, driver, open_driver)
        return chains[-1][7:]

    def _copy_layer(
        self,
        chain: str,
        chains: list[str],
        diff_ids: list[str],
        driver,
        open_driver: Callable[[str], object],
    ) -> None:
        i = chains.index(chain)
        for name in self.drivers_with_layers():
            if name == store_name(driver) or not self.layer_record(name, chain):
                continue
            source = open_driver(name)
            if not source.exists(chain[7:]):  # type: ignore[attr-defined]
                continue
            import tempfile

            from .layerexport import export_layer

            with tempfile.TemporaryFile(dir=self.root) as spool:

                def attempt(write) -> str:  # noqa: ANN001
                    spool.seek(0)
                    spool.truncate()
                    reader = HashingReader(spool)
                    write(spool)
                    spool.seek(0)
                    reader.drain()
                    return reader.digest()

                # The original tar when the source kept its framing: verified, and recorded
                # again by the target driver, so the copy exports exactly too.
                exact = export_layer(source, chain[7:], diff_ids[i], attempt)
                spool.seek(0)
                self.apply_layer(
                    driver, chain, chains[i - 1] if i else None, diff_ids[i], spool, verify=exact
                )
            return
        raise EngineError(f"layer {chain[7:19]} is in no storage driver; load the image again")


def _depth(records: dict[str, dict], chain: str | None) -> int:
    n = 0
    while chain:
        n += 1
        chain = (records.get(chain) or {}).get("parent")
    return n
