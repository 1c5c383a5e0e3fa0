"""Image references as users type them: ``busybox``, ``busybox:1.36``, ``host:5000/app:v1``.

pydock keeps references short, the way ``docker images`` shows them (``busybox:latest``);
Docker Hub's long forms (``docker.io/library/busybox``) are shortened the same way; other
registry-qualified names are kept verbatim. Digest references (``name@sha256:...``) are
resolved through the store's RepoDigests (engine/distribution/reference.py parses them).
"""

from __future__ import annotations

import re

from .errors import InvalidInput

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DEFAULT_TAG = "latest"


def parse(ref: str) -> tuple[str, str]:
    """Split ``ref`` into (repository, tag), applying the default tag; raise on bad input."""
    if "@" in ref:
        raise InvalidInput(f"invalid reference format: digest references are not supported: {ref}")
    name, tag = ref, DEFAULT_TAG
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1 :]
    if not _NAME_RE.match(name) or not _TAG_RE.match(tag):
        raise InvalidInput(f"invalid reference format: {ref}")
    return name, tag


def familiar_name(name: str) -> str:
    """Docker Hub's long spellings as ``docker images`` shows them:
    ``docker.io/library/busybox`` -> ``busybox``, ``docker.io/user/app`` -> ``user/app``."""
    for hub in ("docker.io/", "index.docker.io/"):
        if name.startswith(hub):
            rest = name[len(hub) :]
            short = rest.removeprefix("library/")
            return short if "/" not in short else rest
    return name


def normalize(ref: str) -> str:
    """``busybox`` -> ``busybox:latest``; ``docker.io/library/busybox`` -> the same."""
    name, tag = parse(ref)
    return f"{familiar_name(name)}:{tag}"
