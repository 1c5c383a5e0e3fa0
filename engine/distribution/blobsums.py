"""Which registry blob holds which local layer (Docker's "v2 metadata", simplified).

``<root>/distribution/blobsums.json`` maps a layer's chain id to the compressed blob that
carries it: ``{"digest", "size", "media_type", "diff_id", "repos": ["host/repo", ...]}``.
A pull records the registry's own blob (whose uncompressed bytes are exactly the layer's
diff id); a push records the blob it made. ``push`` uses the entry to ask the registry
(HEAD) or mount the blob from another repository before it exports anything, so an image
that was pulled is pushed back unchanged: same blobs, same config, same image id.
"""

from __future__ import annotations

from pathlib import Path

from ..fsutil import FileLock, read_json, write_json


class BlobSums:
    def __init__(self, root: Path) -> None:
        self.dir = root / "distribution"
        self.path = self.dir / "blobsums.json"

    def load(self) -> dict[str, dict]:
        try:
            return read_json(self.path)
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, chain: str) -> dict | None:
        return self.load().get(chain)

    def record(self, chain: str, entry: dict, repo: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with FileLock(self.dir / "blobsums.lock"):
            data = self.load()
            old = data.get(chain)
            repos = list(old.get("repos", [])) if old and old["digest"] == entry["digest"] else []
            if repo not in repos:
                repos.append(repo)
            data[chain] = {**entry, "repos": repos[-8:]}
            write_json(self.path, data)

    def forget(self, keep: set[str]) -> None:
        """Drop entries of layers no image has any more (image prune / rmi)."""
        if not self.path.exists():
            return
        with FileLock(self.dir / "blobsums.lock"):
            data = self.load()
            kept = {c: e for c, e in data.items() if c in keep}
            if kept != data:
                write_json(self.path, kept)
