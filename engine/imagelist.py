"""``pydock images``: rows, filters and ``--format`` as ``docker images`` has them.

Filters (``--filter``, repeatable, AND across keys, OR within one key as Docker):
``dangling=true|false``, ``before=IMAGE``, ``since=IMAGE`` (by creation time),
``label=KEY`` / ``label=KEY=VALUE``, ``reference=PATTERN`` (shell-style match on
``repo`` or ``repo:tag``). ``--format`` takes Docker's Go-template subset: ``{{.ID}}``,
``{{.Repository}}``, ``{{.Tag}}``, ``{{.Digest}}``, ``{{.Size}}``, ``{{.CreatedSince}}``,
``{{.CreatedAt}}``, ``{{json .}}``, and a ``table`` prefix for aligned columns with headers
(any Go template: engine/gotemplate).
"""

from __future__ import annotations

import datetime
import fnmatch
from dataclasses import dataclass

from .containers import parse_time
from .errors import InvalidInput
from .format import human_size, since
from .images import ImageStore

HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
           "Size": "SIZE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
           "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE",
           "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}  # fmt: skip


@dataclass
class Row:
    id: str
    repository: str
    tag: str
    digest: str
    size: int
    created: str
    labels: dict
    dangling: bool

    def fields(self, no_trunc: bool) -> dict[str, str]:
        when = parse_time(self.created) if self.created else None
        at = when.strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if when else ""
        return {
            "ID": self.id if no_trunc else self.id[7:19],
            "Repository": self.repository,
            "Tag": self.tag,
            "Digest": self.digest,
            "Size": human_size(self.size),
            "CreatedSince": f"{since(when)} ago" if when else "N/A",
            "CreatedAt": at,
        }


def rows(store: ImageStore) -> list[Row]:
    out = []
    digests = store.repo_digests_map()
    for img in store.images():
        created = img.config.get("created", "")
        labels = (img.config.get("config") or {}).get("Labels") or {}
        mine = [r for r, i in digests.items() if i == img.id]
        for t in img.tags or ["<none>:<none>"]:
            repo, _, tag = t.rpartition(":")
            digest = next((r.rpartition("@")[2] for r in mine if r.rpartition("@")[0] == repo),
                          "<none>")  # fmt: skip
            out.append(Row(img.id, repo, tag, digest, img.size, created, labels, not img.tags))
    out.sort(key=lambda r: (r.created, r.repository, r.tag), reverse=True)
    return out


def _when(store: ImageStore, ref: str) -> datetime.datetime:
    t = parse_time(store.config(store.resolve(ref)).get("created", ""))
    if t is None:
        raise InvalidInput(f"image {ref} has no creation time")
    return t


def apply_filters(store: ImageStore, items: list[Row], filters: list[str], repo: str | None):
    by_key: dict[str, list[str]] = {}
    for f in filters:
        key, eq, value = f.partition("=")
        if not eq or key not in ("dangling", "before", "since", "label", "reference"):
            raise InvalidInput(f"invalid filter '{f}'")
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise InvalidInput(f"invalid filter 'dangling={value}'")
        by_key.setdefault(key, []).append(value)
    if repo:
        by_key.setdefault("reference", []).append(repo)

    def keep(r: Row) -> bool:
        when = parse_time(r.created) if r.created else None
        for key, values in by_key.items():
            if key == "dangling" and (values[-1].lower() in ("true", "1")) != r.dangling:
                return False
            if key == "before" and not all(when and when < _when(store, v) for v in values):
                return False
            if key == "since" and not all(when and when > _when(store, v) for v in values):
                return False
            if key == "label":
                for v in values:
                    k, eq, val = v.partition("=")
                    if k not in r.labels or (eq and r.labels[k] != val):
                        return False
            if key == "reference":
                names = [r.repository, f"{r.repository}:{r.tag}"]
                if r.dangling or not any(fnmatch.fnmatchcase(n, p) for p in values for n in names):
                    return False
        return True

    return [r for r in items if keep(r)]


def render(items: list[Row], *, fmt: str | None, quiet: bool, no_trunc: bool,
           digests: bool) -> str:  # fmt: skip
    if quiet:
        seen: list[str] = []
        for r in items:
            shown = r.fields(no_trunc)["ID"]
            if shown not in seen:
                seen.append(shown)
        return "\n".join(seen)
    if not fmt or fmt == "table":
        # Docker's default (formatter.NewImageFormat)
        fmt = r"table {{.Repository}}\t{{.Tag}}" + (r"\t{{.Digest}}" if digests else "")
        fmt += r"\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    return _template(items, fmt, no_trunc)


def _template(items: list[Row], fmt: str, no_trunc: bool) -> str:
    """Docker's image formatter: each row a ``*formatter.imageContext`` (string fields)."""
    from . import gotemplate

    rows = []
    for r in items:
        f = r.fields(no_trunc)
        doc = {**f, "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
               "VirtualSize": f["Size"]}  # fmt: skip
        rows.append(gotemplate.Struct("*formatter.imageContext", doc,
                                      json_value=dict(sorted(doc.items()))))  # fmt: skip
    return gotemplate.format_list(fmt, rows, HEADERS)
