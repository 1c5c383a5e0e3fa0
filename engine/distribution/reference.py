"""Image references with Docker Hub's naming rules (distribution/reference grammar).

``busybox`` means ``docker.io/library/busybox:latest`` and is served by
``registry-1.docker.io``; ``host:5000/app:v1`` names another registry: the first path
component is a registry host when it has a ``.`` or a ``:`` or is ``localhost``.
Locally, names are kept the way ``docker images`` shows them ("familiar" names):
``busybox``, ``user/app``, ``127.0.0.1:5000/app``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidInput

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
#: Docker Hub's API endpoint for the name docker.io
HUB_ENDPOINT = "registry-1.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    """A fully qualified reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def endpoint(self) -> str:
        """host[:port] to talk HTTP to (Docker Hub's API host differs from its name)."""
        return HUB_ENDPOINT if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def familiar_name(self) -> str:
        """The repository as ``docker images`` shows it (``busybox``, ``host:5000/app``)."""
        if self.domain != DEFAULT_DOMAIN:
            return f"{self.domain}/{self.path}"
        rest = self.path.removeprefix(OFFICIAL_PREFIX)
        return rest if "/" not in rest else self.path

    @property
    def full_name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def familiar(self) -> str:
        """``busybox:latest``, ``busybox@sha256:...``, ``host:5000/app:v1``."""
        if self.digest:
            return f"{self.familiar_name}@{self.digest}"
        return f"{self.familiar_name}:{self.tag or DEFAULT_TAG}"

    def canonical(self) -> str:
        """``docker.io/library/busybox:latest`` (the last line ``docker pull`` prints)."""
        if self.digest:
            return f"{self.full_name}@{self.digest}"
        return f"{self.full_name}:{self.tag or DEFAULT_TAG}"

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN_RE.match(first):
            raise InvalidInput(f"invalid reference format: bad registry host {first!r}")
        domain = DEFAULT_DOMAIN if first == LEGACY_DOMAIN else first
        return domain, rest
    return DEFAULT_DOMAIN, name


def parse(ref: str, *, default_tag: bool = True) -> Reference:
    """Parse what a user typed; Docker's rules, one-line errors for bad input."""
    if not ref or len(ref) > 4096:
        raise InvalidInput(f"invalid reference format: {ref!r}")
    name, at, digest = ref.partition("@")
    if at and not _DIGEST_RE.match(digest):
        raise InvalidInput(f"invalid reference format: bad digest in {ref}")
    tag = None
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidInput(f"invalid reference format: bad tag in {ref}")
    domain, path = _split_domain(name)
    if not _PATH_RE.match(path):
        if path.lower() != path and _PATH_RE.match(path.lower()):
            raise InvalidInput(
                f"invalid reference format: repository name must be lowercase: {ref}"
            )
        raise InvalidInput(f"invalid reference format: {ref}")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if len(domain) + 1 + len(path) > 255:
        raise InvalidInput(f"invalid reference format: repository name too long: {ref}")
    if tag is None and not at and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest or None)


def familiarize(ref: str) -> str:
    """The local spelling of a reference: ``docker.io/library/busybox`` -> ``busybox:latest``."""
    return parse(ref).familiar()
