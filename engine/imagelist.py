"""``pydock images``: rows, filters and ``--format`` as ``docker images`` has them.

Two steps, as Docker splits them between daemon and CLI. :func:`summaries` is the daemon's
image list (daemon/images/images.go): each image with the references the filters let
through. :func:`rows` is the CLI's table (cli/command/formatter/image.go): one row per
repository and tag, digest-only repositories as ``REPO <none>``, and ``<none> <none>`` only
for an image with no reference at all.

Filters (``--filter``, repeatable; AND across keys): ``dangling=true|false``,
``before=IMAGE`` and ``since=IMAGE`` (strictly older / newer by creation time),
``label=KEY`` / ``label=KEY=VALUE`` (every one must hold), ``reference=PATTERN`` (any one;
Go's path.Match on the familiar reference or its name, see :mod:`.pathmatch`). The
``REPOSITORY[:TAG]`` argument is one more reference pattern. ``--format`` takes Docker's
Go-template subset: ``{{.ID}}``, ``{{.Repository}}``, ``{{.Tag}}``, ``{{.Digest}}``,
``{{.Size}}``, ``{{.CreatedSince}}``, ``{{.CreatedAt}}``, ``{{json .}}``, and a ``table``
prefix for aligned columns with headers
(any Go template: engine/gotemplate).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from .containers import parse_time
from .errors import InvalidInput
from .format import human_size, since
from .images import ImageStore
from .pathmatch import familiar_match

HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
           "Size": "SIZE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
           "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE",
           "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}  # fmt: skip
_DIGEST_RE = re.compile(r"\{\{[^}]*\.Digest\b")  # a --format that shows the digest
FILTER_KEYS = ("dangling", "label", "before", "since", "reference")
_EPOCH = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)  # Go's zero time


@dataclass
class Row:
    id: str
    repository: str
    tag: str
    digest: str
    size: int
    created: str

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


@dataclass
class Summary:
    """One image as Docker's API lists it (types.ImageSummary)."""

    id: str
    created: str
    size: int
    repo_tags: list[str]
    repo_digests: list[str]


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """``--filter`` values by key, checked as Docker's CLI and daemon check them."""
    out: dict[str, list[str]] = {}
    for item in items:
        if item == "":
            continue  # the CLI ignores an empty --filter
        key, eq, value = item.partition("=")
        if not eq:
            from .cliutil import ArgError

            raise ArgError(
                f'invalid argument "{item}" for "-f, --filter" flag: '
                "bad format of filter (expected name=value)"
            )
        out.setdefault(key.strip().lower(), []).append(value.strip())
    for key in out:
        if key not in FILTER_KEYS:
            raise InvalidInput(f"Invalid filter '{key}'")
    dangling = out.get("dangling")
    if dangling and "true" not in dangling and "false" not in dangling:
        # Docker takes exactly "true" or "false" and prints the values Go-style
        raise InvalidInput(f"Invalid filter 'dangling=[{' '.join(dangling)}]'")
    return out


def _created(config: dict) -> datetime.datetime:
    return parse_time(config.get("created", "") or "") or _EPOCH


def _labels_match(labels: dict, wanted: list[str]) -> bool:
    if not labels:
        return False  # Docker: a label filter never matches an image without labels
    for want in wanted:
        key, eq, value = want.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def summaries(store: ImageStore, filters: list[str], repository: str | None) -> list[Summary]:
    """The images ``docker images`` would get from the daemon, newest first."""
    by_key = parse_filters(filters)
    if repository:
        by_key.setdefault("reference", []).append(repository)
    dangling_only = "true" in by_key.get("dangling", [])
    before = [_created(store.config(store.resolve(v))) for v in by_key.get("before", [])]
    after = [_created(store.config(store.resolve(v))) for v in by_key.get("since", [])]
    patterns = by_key.get("reference")
    digests = store.repo_digests_map()
    out: list[Summary] = []
    for img in store.images():
        created = _created(img.config)
        if any(created >= b for b in before) or any(created <= s for s in after):
            continue
        labels = (img.config.get("config") or {}).get("Labels") or {}
        if "label" in by_key and not _labels_match(labels, by_key["label"]):
            continue
        tags = list(img.tags)
        repo_digests = sorted(r for r, i in digests.items() if i == img.id)
        if patterns is not None:
            # a reference filter also drops the references that do not match
            def hit(ref: str) -> bool:
                name = ref.partition("@")[0] if "@" in ref else ref.rpartition(":")[0]
                return any(familiar_match(p, ref, name) for p in patterns)

            tags = [t for t in tags if hit(t)]
            repo_digests = [r for r in repo_digests if hit(r)]
        if not tags and not repo_digests:
            if ("dangling" in by_key and not dangling_only) or patterns is not None:
                continue
            tags, repo_digests = ["<none>:<none>"], ["<none>@<none>"]
        elif dangling_only and tags:
            continue  # an image with only digests (pulled by digest) counts as dangling
        out.append(Summary(img.id, img.config.get("created", ""), img.size, tags, repo_digests))
    out.sort(key=lambda s: (parse_time(s.created or "") or _EPOCH, s.id), reverse=True)
    return out


def rows(items: list[Summary], *, digests: bool, need_digest: bool) -> list[Row]:
    """Docker's CLI rows: a repository's tags each with its digests (when shown), then a
    ``REPO <none>`` row per digest-only repository. ``digests`` is ``--digests``;
    ``need_digest`` also covers a ``--format`` that names ``.Digest``."""
    out: list[Row] = []
    for s in items:

        def row(repo: str, tag: str, digest: str, s: Summary = s) -> Row:
            return Row(s.id, repo, tag, digest, s.size, s.created)

        if s.repo_tags == ["<none>:<none>"] and s.repo_digests == ["<none>@<none>"]:
            out.append(row("<none>", "<none>", "<none>"))
            continue
        tags_of: dict[str, list[str]] = {}
        for t in s.repo_tags:
            repo, _, tag = t.rpartition(":")
            tags_of.setdefault(repo, []).append(tag)
        digests_of: dict[str, list[str]] = {}
        for r in s.repo_digests:
            repo, _, digest = r.partition("@")
            digests_of.setdefault(repo, []).append(digest)
        for repo in sorted(tags_of):
            shown = digests_of.pop(repo, []) if need_digest else []
            digests_of.pop(repo, None)
            for tag in sorted(tags_of[repo]):
                out.extend(row(repo, tag, d) for d in shown or ["<none>"])
        for repo in sorted(digests_of):
            if digests:
                out.extend(row(repo, "<none>", d) for d in digests_of[repo])
            else:
                out.append(row(repo, "<none>", ""))  # Docker leaves the digest empty here
    return out


def needs_digest(fmt: str | None) -> bool:
    return bool(fmt) and _DIGEST_RE.search(fmt or "") is not None


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
