"""``search TERM``: the v1 search API of an index (Docker Hub's, or the registry the term names).

The term picks the index as Docker's splitReposSearchTerm does (endpoints.search_target):
``busybox`` and ``user/x`` ask Docker Hub's index (``https://index.docker.io/v1/``),
``host:5000/x`` asks ``host:5000`` for ``x``. The request is ``GET /v1/search?q=TERM&n=LIMIT``;
the answer's ``results`` are filtered as the daemon filters them (``stars``, ``is-official``,
``is-automated``, daemon/images/image_search.go) and sorted by stars, most first, as the CLI
sorts them. A registry that serves only the v2 API (distribution's, the usual private one)
has no search and answers 404: that is said in one line, with Docker's exit code 1.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from ..errors import EngineError, InvalidInput, NotFound
from .client import Registry, RegistryError
from .endpoints import HUB_INDEX, search_target

DEFAULT_LIMIT = 25
ACCEPTED = ("is-automated", "is-official", "stars")


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """``--filter k=v`` values by key, checked as the CLI (name=value) and the daemon
    (known keys, booleans, numbers) check them."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise InvalidInput(
                f'invalid argument "{item}" for "-f, --filter" flag: bad format of filter '
                "(expected name=value)",
                125,  # a flag that does not parse: Docker's CLI exits 125
            )
        filters.setdefault(key.strip().lower(), []).append(value.strip())
    for key in filters:
        if key not in ACCEPTED:
            raise InvalidInput(f"Error response from daemon: Invalid filter '{key}'")
    for key in ("is-automated", "is-official"):
        values = filters.get(key)
        if values is not None and (len(set(values)) != 1 or values[0] not in ("true", "false")):
            shown = "[" + " ".join(values) + "]"  # Go's %s of a []string
            raise InvalidInput(f"Error response from daemon: Invalid filter '{key}={shown}'")
    for value in filters.get("stars", []):
        try:
            int(value)
        except ValueError:
            raise InvalidInput(
                f"Error response from daemon: Invalid filter 'stars={value}'"
            ) from None
    return filters


def _keep(result: dict, filters: dict[str, list[str]]) -> bool:
    for key, field in (("is-automated", "is_automated"), ("is-official", "is_official")):
        if key in filters and bool(result.get(field)) != (filters[key][0] == "true"):
            return False
    stars = max((int(v) for v in filters.get("stars", [])), default=None)
    return stars is None or int(result.get("star_count") or 0) >= stars


def index_registry(root: Path, index: str, insecure: tuple[str, ...] = ()) -> Registry:
    """The client for ``index`` (no connection yet): Docker Hub's index over verified
    HTTPS with Docker Hub's credentials; another index as any registry (insecure rules)."""
    hub = index == HUB_INDEX
    return Registry(index, domain="docker.io" if hub else index, root=root, insecure=insecure,
                    scheme="https" if hub else None)  # fmt: skip


def search(
    root: Path, term: str, *, limit: int = DEFAULT_LIMIT, filters: dict[str, list[str]],
    insecure: tuple[str, ...] = (),
) -> list[dict]:  # fmt: skip
    """The index's results for ``term`` that pass ``filters``, most stars first."""
    index, remote = search_target(term)
    if limit < 1 or limit > 100:
        raise InvalidInput(f"Error response from daemon: Limit {limit} is outside the range of "
                           "[1, 100]")  # fmt: skip
    reg = index_registry(root, index, insecure)
    query = urllib.parse.urlencode({"q": remote, "n": str(limit)})
    try:
        with reg.open(
            "GET", f"/v1/search?{query}", headers={"X-Docker-Token": "true"},
            what=f"search {index}", retry=True,
        ) as r:  # fmt: skip
            body = r.read()
    except NotFound:
        raise EngineError(
            f"Error response from daemon: Unexpected status code 404: {index} has no search "
            "API (GET /v1/search); a v2-only registry cannot be searched"
        ) from None
    except RegistryError as e:
        if e.status:
            raise EngineError(
                f"Error response from daemon: Unexpected status code {e.status}"
            ) from None
        raise EngineError(f"Error response from daemon: {e}") from None
    try:
        doc = json.loads(body)
        results = [x for x in doc.get("results") or [] if isinstance(x, dict)]
    except (ValueError, AttributeError):
        raise EngineError(
            f"Error response from daemon: {index}: the search answer is not JSON"
        ) from None
    kept = [x for x in results if _keep(x, filters)]
    kept.sort(key=lambda x: -int(x.get("star_count") or 0))  # stable: the index's order next
    return kept
