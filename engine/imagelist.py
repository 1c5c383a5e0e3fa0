"""``pydock images``: rows, filters and ``--format`` as ``docker images`` has them.

Filters (``--filter``, repeatable, AND across keys, OR within one key as Docker):
``dangling=true|false``, ``before=IMAGE``, ``since=IMAGE`` (by creation time),
``label=KEY`` / ``label=KEY=VALUE``, ``reference=PATTERN`` (shell-style match on
``repo`` or ``repo:tag``). ``--format`` takes Docker's Go-template subset: ``{{.ID}}``,
``{{.Repository}}``, ``{{.Tag}}``, ``{{.Digest}}``, ``{{.Size}}``, ``{{.CreatedSince}}``,
``{{.CreatedAt}}``, ``{{json .}}``, and a ``table`` prefix for aligned columns with headers.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import re
from dataclasses import dataclass

from .containers import parse_time
from .errors import InvalidInput
from .format import human_size, since, table
from .images import ImageStore

HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
           "Size": "SIZE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"}  # fmt: skip
_FIELD_RE = re.compile(r"\{\{\s*(?:\.(\w+)|json\s+\.)\s*\}\}")


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
    if fmt:
        return _template(items, fmt, no_trunc)
    cols = ["Repository", "Tag"] + (["Digest"] if digests else []) + ["ID", "CreatedSince", "Size"]
    body = [[r.fields(no_trunc)[c] for c in cols] for r in items]
    return table([HEADERS[c] for c in cols], body)


def _template(items: list[Row], fmt: str, no_trunc: bool) -> str:
    is_table = fmt.startswith("table")
    fmt = fmt[5:].lstrip() if is_table else fmt
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    for m in _FIELD_RE.finditer(fmt):
        if m.group(1) and m.group(1) not in HEADERS:
            raise InvalidInput(f"template: can't evaluate field {m.group(1)}")

    def one(r: Row) -> str:
        f = r.fields(no_trunc)

        def sub(m: re.Match) -> str:
            if m.group(1):
                return f[m.group(1)]
            doc = {**f, "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
                   "VirtualSize": f["Size"]}  # fmt: skip
            return json.dumps(dict(sorted(doc.items())), separators=(",", ":"))

        return _FIELD_RE.sub(sub, fmt)

    lines = [one(r) for r in items]
    if not is_table:
        return "\n".join(lines)
    header = _FIELD_RE.sub(lambda m: HEADERS.get(m.group(1) or "", ""), fmt)
    cells = [line.split("\t") for line in [header, *lines]]
    return table(cells[0], cells[1:])
