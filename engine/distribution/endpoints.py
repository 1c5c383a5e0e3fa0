"""Which hosts a pull or a search talks to, decided from the reference and daemon.json alone.

Nothing here opens a connection: the choice is a pure function of the reference and the
settings, so it can be tested without any traffic (and must be: Docker Hub is not reachable
from the test machines). Docker's rules (registry/service_v2.go, registry/config.go):

- a reference on Docker Hub (``busybox``, ``user/app``, ``docker.io/...``) is pulled from
  each of ``registry-mirrors`` in ``<root>/daemon.json`` first, in their order, then from
  ``https://registry-1.docker.io``; a mirror that fails hands over to the next endpoint;
- any other registry is its own endpoint: HTTPS, or HTTPS then plain HTTP when it is
  insecure (``insecure-registries``, ``--insecure-registry``, loopback addresses);
- mirrors never serve other registries, and ``search`` never uses mirrors: Docker Hub's
  search is its index, ``https://index.docker.io/v1/``.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInput
from . import reference as refmod

#: Docker Hub's index (search, the v1 API): registry.IndexServer
HUB_INDEX = "index.docker.io"


@dataclass(frozen=True)
class Endpoint:
    """One place to pull from: ``host[:port]`` and its scheme (None: HTTPS, or HTTPS then
    HTTP for an insecure registry, found by trying; a mirror's URL fixes its scheme)."""

    host: str
    scheme: str | None = None
    mirror: bool = False

    def url(self) -> str:
        return f"{self.scheme or 'https'}://{self.host}"


def _daemon_json(root: Path) -> dict:
    path = root / "daemon.json"
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise InvalidInput(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: not a JSON object")
    return data


def validate_mirror(value: str) -> Endpoint:
    """A ``registry-mirrors`` entry as Docker's ValidateMirror takes it: an http or https
    URL with no path, query, fragment or credentials."""
    try:
        uri = urllib.parse.urlsplit(value)
        uri.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidInput(f"invalid mirror: {value!r} is not a valid URI") from None
    if uri.scheme not in ("http", "https"):
        raise InvalidInput(f"invalid mirror: unsupported scheme {uri.scheme!r} in {value!r}")
    if uri.username is not None or uri.password is not None:
        raise InvalidInput("invalid mirror: username/password not allowed in URI")
    if uri.path not in ("", "/") or uri.query or uri.fragment:
        raise InvalidInput(f"invalid mirror: path, query, or fragment at end of the URI {value!r}")
    if not uri.netloc:
        raise InvalidInput(f"invalid mirror: {value!r} is not a valid URI")
    return Endpoint(uri.netloc, uri.scheme, mirror=True)


def registry_mirrors(root: Path) -> list[Endpoint]:
    """The mirrors ``<root>/daemon.json`` names, checked (a bad one is an error, as it
    stops dockerd from starting)."""
    found = _daemon_json(root).get("registry-mirrors") or []
    if not isinstance(found, list) or not all(isinstance(m, str) for m in found):
        raise InvalidInput(f"{root / 'daemon.json'}: registry-mirrors must be a list of URLs")
    return [validate_mirror(m) for m in found]


def pull_endpoints(ref: refmod.Reference, root: Path) -> list[Endpoint]:
    """Where to pull ``ref`` from, in the order to try."""
    if ref.domain != refmod.DEFAULT_DOMAIN:
        return [Endpoint(ref.domain)]
    return [*registry_mirrors(root), Endpoint(refmod.HUB_ENDPOINT, "https")]


def search_target(term: str) -> tuple[str, str]:
    """(index host, what to ask it for) for ``search TERM`` (splitReposSearchTerm): a first
    path component that looks like a host names the index; anything else is Docker Hub's,
    where ``library/x`` is searched as ``x``."""
    first, slash, rest = term.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if first in (refmod.DEFAULT_DOMAIN, refmod.LEGACY_DOMAIN):
            return HUB_INDEX, rest.removeprefix(refmod.OFFICIAL_PREFIX)
        if first.startswith("-") or first.endswith("-"):
            raise InvalidInput(f"invalid index name ({first}). Cannot begin or end with a hyphen.")
        return first, rest
    return HUB_INDEX, term.removeprefix(refmod.OFFICIAL_PREFIX)
