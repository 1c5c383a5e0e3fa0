"""``ps``: which containers to list (``--filter``), what each row says, and how it prints.

Sizes (``-s``, or a format that uses ``.Size``) are Docker's: the writable layer's size
is measured now, as ``driver.diff_size(id)`` (the regular-file bytes the layer adds to its
parent: directories, empty mount-point stubs and whiteouts count nothing, hard links
once, as moby's graphdriver DiffSize), so a running container shows what it holds at this
moment and an untouched one ``0B``; the virtual size adds the image's layer sizes recorded
in layerdb. Measuring walks the layer, which is why only ``-s`` asks for it (Docker's
``ps -s`` walks too).
"""

from __future__ import annotations

import json
import re

from .containers import parse_time
from .errors import InvalidInput
from .format import ellipsis, human_size, since

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
FILTER_KEYS = ("id", "name", "label", "status", "ancestor", "exited", "health")

#: column titles of the fields a --format template may use (Docker's)
HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
    "State": "STATE",
}
#: Docker's default ``ps`` table (formatter.NewContainerFormat)
DEFAULT_FORMAT = (
    r"table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)


def state_word(rec: dict) -> str:
    """Docker's one-word state: running, paused, restarting, exited, created, dead."""
    st = rec["State"]
    if st.get("Dead"):
        return "dead"
    if st.get("Restarting"):
        return "restarting"
    if st["Status"] == "running":
        return "paused" if st.get("Paused") else "running"
    return st["Status"]


def status_text(rec: dict) -> str:
    """The STATUS column: "Up 5 minutes (Paused)", "Exited (0) 3 seconds ago", ..."""
    st = rec["State"]
    word = state_word(rec)
    if word in ("running", "paused"):
        up = f"Up {since(parse_time(st['StartedAt']))}"
        if word == "paused":
            return up + " (Paused)"
        if st.get("Health"):  # moby's State.String(): "Up 3 seconds (health: starting)"
            from .health import suffix

            return up + suffix(rec)
        return up
    if word == "restarting":
        return f"Restarting ({st['ExitCode']}) {since(parse_time(st['FinishedAt']))} ago"
    if word == "exited":
        return f"Exited ({st['ExitCode']}) {since(parse_time(st['FinishedAt']))} ago"
    return word.capitalize()


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise InvalidInput(f"bad format of filter (expected name=value): {item}")
        if key not in FILTER_KEYS:
            raise InvalidInput(f"invalid filter '{key}'")
        if key == "status" and value not in STATUSES:
            raise InvalidInput(f"invalid filter 'status={value}'")
        if key == "health" and value not in ("starting", "healthy", "unhealthy", "none"):
            raise InvalidInput(f"Unrecognised filter value for health: {value}")
        if key == "exited":
            try:
                int(value)
            except ValueError:
                raise InvalidInput(f"invalid filter 'exited={value}'") from None
        out.setdefault(key, []).append(value)
    return out


def _match(patterns: list[str], source: str) -> bool:
    """Docker's filters.Match: an exact value or a regular expression found in ``source``."""
    for p in patterns:
        if p == source:
            return True
        try:
            if re.search(p, source):
                return True
        except re.error:
            continue
    return False


def _labels_match(wanted: list[str], labels: dict[str, str]) -> bool:
    """Every ``key`` or ``key=value`` must hold (Docker's MatchKVList)."""
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    return True


class _Ancestors:
    """Image ids a container may descend from: the named image or any image built on it.

    An image descends from another when its layer chain starts with the other's whole
    chain (``commit`` adds a layer on top), which is what ``ancestor=`` means here.
    """

    def __init__(self, engine, refs: list[str]) -> None:
        self.engine = engine
        self.chains: list[list[str]] = []
        self.ids: set[str] = set()
        for ref in refs:
            image_id = engine.images.lookup(ref)
            if image_id:
                self.ids.add(image_id)
                self.chains.append(engine.images.layer_chain(image_id))
        self._cache: dict[str, bool] = {}

    def matches(self, image_id: str) -> bool:
        if image_id in self.ids:
            return True
        if image_id not in self._cache:
            try:
                chain = self.engine.images.layer_chain(image_id)
            except InvalidInput:
                chain = []
            except Exception:  # noqa: BLE001 - an image removed under us descends from nothing
                chain = []
            self._cache[image_id] = any(c and chain[: len(c)] == c for c in self.chains)
        return self._cache[image_id]


def health_status(rec: dict) -> str:
    """The ``health=`` filter's value: State.Health's status, "none" without a check."""
    return (rec["State"].get("Health") or {}).get("Status") or "none"


def select(engine, recs: list[dict], filters: dict[str, list[str]], all_: bool) -> list[dict]:
    """The records ``ps`` shows: running ones (all with ``-a`` or a status filter), filtered.

    Filters of one key are alternatives; different keys must all hold (Docker's rule).
    """
    show_all = all_ or "status" in filters
    ancestors = _Ancestors(engine, filters["ancestor"]) if "ancestor" in filters else None
    out = []
    for r in recs:
        word = state_word(r)
        if not show_all and word not in ("running", "paused", "restarting"):
            continue
        if "id" in filters and not _match(filters["id"], r["Id"]):
            continue
        if "name" in filters and not _match(filters["name"], r["Name"].lstrip("/")):
            continue
        if "label" in filters and not _labels_match(
            filters["label"], r["Config"].get("Labels") or {}
        ):
            continue
        if "status" in filters and word not in filters["status"]:
            continue
        if "exited" in filters and not (
            word == "exited" and str(r["State"]["ExitCode"]) in filters["exited"]
        ):
            continue
        if "health" in filters and health_status(r) not in filters["health"]:
            continue
        if ancestors is not None and not ancestors.matches(r["Image"]):
            continue
        out.append(r)
    out.sort(key=lambda r: r["Created"], reverse=True)
    return out


def sizes(engine, rec: dict) -> tuple[int, int]:
    """(writable layer bytes, writable + image bytes), the layer measured now (Docker's
    SizeRw and SizeRootFs)."""
    from ..drivers.base import DriverError
    from .images import store_name

    try:
        driver = engine.driver(rec["Driver"])
        rw = driver.diff_size(rec["Id"]) if driver.exists(rec["Id"]) else 0
        image = engine.images.image_size(rec["Image"], store_name(driver))
    except (DriverError, OSError, ValueError):
        return 0, 0
    return rw, rw + image


def size_text(rw: int, virtual: int) -> str:
    text = human_size(rw)
    return f"{text} (virtual {human_size(virtual)})" if virtual > 0 else text


def fields(engine, rec: dict, *, no_trunc: bool, with_size: bool) -> dict[str, object]:
    """One row as Docker's ps template context: every value a string, ``Label`` a method."""
    cmd = " ".join([rec["Path"], *rec["Args"]])
    labels = rec["Config"].get("Labels") or {}
    created = parse_time(rec["Created"])
    mounts = rec.get("Mounts") or []
    net = rec["HostConfig"].get("NetworkMode") or ""
    ports = _ports(engine, rec)
    row: dict[str, object] = {
        "ID": rec["Id"] if no_trunc else rec["Id"][:12],
        "Image": image_cell(engine, rec, no_trunc),
        "Command": json.dumps(cmd if no_trunc else ellipsis(cmd, 20), ensure_ascii=False),
        "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if created else "",
        "RunningFor": f"{since(created)} ago",
        "Ports": ports,
        "Status": status_text(rec),
        "State": state_word(rec),
        "Names": rec["Name"].lstrip("/"),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in mounts),
        "Networks": net,
        "LocalVolumes": str(sum(1 for m in mounts if m.get("Type") == "volume")),
        "Size": size_text(*sizes(engine, rec)) if with_size else "0B",
    }
    row["_labels"] = labels
    return row


def image_cell(engine, rec: dict, no_trunc: bool) -> str:
    """The IMAGE cell: the name the container was created from while that name still
    means the container's image, else the image's id, short unless ``no_trunc`` (Docker
    20.10: daemon/list.go keeps "the original ref if possible", and the CLI's formatter
    truncates an id)."""
    ref = rec["Config"].get("Image", "")
    image_id = rec.get("Image", "")
    if not ref:
        return "<no image>"
    if image_id and ref != image_id and engine.images.lookup(ref) != image_id:
        ref = image_id  # untagged, or the name now means another image
    if ref == image_id and not no_trunc:
        return ref.removeprefix("sha256:")[:12]
    return ref


def _ports(engine, rec: dict) -> str:
    """Docker's PORTS cell, "0.0.0.0:8080->80/tcp", for a running container's leases;
    the network package is loaded only for containers that publish ports."""
    hc = rec["HostConfig"]
    if state_word(rec) not in ("running", "paused") or not (
        hc.get("PortBindings") or hc.get("PublishAllPorts")
    ):
        return ""
    from .network.manager import container_ports

    try:
        ports = container_ports(engine.root, rec["Id"])
    except (OSError, ValueError, KeyError):
        return ""
    return ", ".join(
        f"{p['HostIp'] or '0.0.0.0'}:{p['HostPort']}->{p['ContainerPort']}/{p['Proto']}"
        for p in sorted(ports, key=lambda p: (p["ContainerPort"], p["Proto"]))
    )


def render(
    engine,
    recs: list[dict],
    *,
    fmt: str | None,
    quiet: bool,
    no_trunc: bool,
    size: bool,
) -> str:
    if quiet:
        return "\n".join(r["Id"] if no_trunc else r["Id"][:12] for r in recs)
    from . import gotemplate

    if not fmt or fmt == "table":
        fmt = DEFAULT_FORMAT + (r"\t{{.Size}}" if size else "")
    with_size = size or ".Size" in fmt or "json" in fmt
    rows = [row(fields(engine, r, no_trunc=no_trunc, with_size=with_size)) for r in recs]
    return gotemplate.format_list(fmt, rows, HEADERS)


def row(values: dict[str, object]):
    """A ps row as Docker's template sees it: a ``*formatter.ContainerContext`` whose
    fields are strings and whose ``Label`` method takes a key; ``{{json .}}`` leaves the
    method out."""
    from .gotemplate import Func, Struct

    labels = values.pop("_labels", {})
    data = {k: v for k, v in values.items() if not callable(v)}
    return Struct(
        "*formatter.ContainerContext",
        data,
        methods={"Label": Func(lambda key: labels.get(key, ""), ("string",))},
        json_value=dict(sorted(data.items())),
    )
