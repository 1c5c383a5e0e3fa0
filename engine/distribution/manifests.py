"""``manifest inspect [--insecure] [-v] REF``: a registry's manifest as docker's CLI prints it.

Docker's CLI does this itself (cli/command/manifest/inspect.go), so the store is not
involved. What it prints:

- an image manifest: the registry's bytes, re-indented with tabs (json.Indent);
- a manifest list or OCI index: a Docker manifest list rebuilt from the manifests it names
  (each one fetched: its media type, size and digest; the platform as the list gives it),
  indented with three spaces as distribution's manifestlist package writes it;
- ``-v``: for each image manifest an ``ImageManifest`` record (Ref, Descriptor with the
  platform, Raw as base64, and the manifest under SchemaV2Manifest or OCIManifest), one
  object for an image, an array for a list (each Ref ``REF@child-digest``, as docker's).

A registry is reached over HTTPS; ``--insecure`` allows unverified HTTPS and then plain
HTTP, as docker's ``--insecure``. Any failure to get the manifest reads ``no such manifest:
REF``, docker's words, except a transport failure, which says what failed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from ..errors import EngineError, NotFound
from . import gojson
from . import reference as refmod
from .client import MANIFEST_TYPES, ConnectError, Registry, RegistryError, TransientError

INDEX_TYPES = set(MANIFEST_TYPES[:2])
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: Go's field order of a platform (ocispec.Platform / manifestlist.PlatformSpec)
PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant", "features")


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _platform(src: dict, keys: tuple[str, ...] = PLATFORM_KEYS) -> dict:
    """The platform fields Go would marshal: in its order, empty ones left out."""
    out: dict = {"architecture": src.get("architecture", ""), "os": src.get("os", "")}
    for k in keys[2:]:
        if src.get(k):
            out[k] = src[k]
    return out


class Inspector:
    def __init__(self, root: Path, *, insecure: bool) -> None:
        self.root = root
        self.insecure = insecure
        self.regs: dict[str, Registry] = {}

    def registry(self, ref: refmod.Reference) -> Registry:
        reg = self.regs.get(ref.endpoint)
        if reg is None:
            # docker's CLI knows no mirrors: Docker Hub's names go to registry-1.docker.io
            reg = Registry(
                ref.endpoint, domain=ref.domain, root=self.root,
                insecure=(ref.endpoint,) if self.insecure else (),
                scheme=None if self.insecure else "https",
            )  # fmt: skip
            self.regs[ref.endpoint] = reg
        return reg

    def _get(self, ref: refmod.Reference, what: str) -> tuple[bytes, str]:
        scopes = (f"repository:{ref.path}:pull",)
        try:
            body, mt = self.registry(ref).get_manifest(ref.path, what, scopes)
        except ConnectError as e:
            raise EngineError(
                f"failed to configure transport: error pinging v2 registry: {e}"
            ) from None
        except TransientError:
            raise
        except (NotFound, RegistryError):
            raise NotFound(f"no such manifest: {ref.canonical()}") from None
        try:
            doc = json.loads(body)
        except ValueError:
            raise EngineError(f"{ref.canonical()}: the manifest is not JSON") from None
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
            raise EngineError(f"{ref.canonical()}: unsupported manifest format")
        return body, mt or doc.get("mediaType", "")

    def _config_platform(self, ref: refmod.Reference, doc: dict) -> dict:
        digest = (doc.get("config") or {}).get("digest", "")
        with self.registry(ref).open(
            "GET", f"/v2/{ref.path}/blobs/{digest}", scopes=(f"repository:{ref.path}:pull",),
            what=f"config {digest}",
        ) as r:  # fmt: skip
            data = r.read()
        if _digest(data) != digest:
            raise EngineError(f"digest mismatch for config blob {digest}")
        cfg = json.loads(data)
        return _platform(cfg if isinstance(cfg, dict) else {}, PLATFORM_KEYS[:5])

    @staticmethod
    def _record(name: str, body: bytes, mt: str, platform: dict) -> dict:
        """docker's types.ImageManifest as json.MarshalIndent writes it."""
        doc = json.loads(body)
        key = "OCIManifest" if mt == OCI_MANIFEST else "SchemaV2Manifest"
        return {
            "Ref": name,
            "Descriptor": {
                "mediaType": mt,
                "digest": _digest(body),
                "size": len(body),
                "platform": platform,
            },  # fmt: skip
            "Raw": base64.b64encode(body).decode(),
            key: doc,
        }

    def inspect(self, ref: refmod.Reference, *, verbose: bool) -> str:
        body, mt = self._get(ref, ref.reference)
        doc = json.loads(body)
        if mt not in INDEX_TYPES and "manifests" not in doc:
            if "config" not in doc or "layers" not in doc:
                raise EngineError(f"{ref.canonical()}: unsupported manifest type {mt or '?'}")
            if not verbose:
                return gojson.indent(body, "\t") + "\n"
            platform = self._config_platform(ref, doc)
            return gojson.dumps(self._record(ref.canonical(), body, mt, platform)) + "\n"
        entries = []
        for entry in doc.get("manifests") or []:
            child, child_mt = self._get(ref, entry.get("digest", ""))
            entries.append((entry, child, child_mt))
        if verbose:
            records = [
                self._record(f"{ref.canonical()}@{_digest(child)}", child, child_mt,
                             _platform(entry.get("platform") or {}, PLATFORM_KEYS[:5]))
                for entry, child, child_mt in entries
            ]  # fmt: skip
            return gojson.dumps(records) + "\n"
        listed = {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                {"mediaType": child_mt, "size": len(child), "digest": _digest(child),
                 "platform": _platform(entry.get("platform") or {})}
                for entry, child, child_mt in entries
            ],
        }  # fmt: skip
        return gojson.dumps(listed, "   ") + "\n"


def inspect(root: Path, text: str, *, insecure: bool, verbose: bool) -> str:
    return Inspector(root, insecure=insecure).inspect(refmod.parse(text), verbose=verbose)
