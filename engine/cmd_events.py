"""``events``: the event log (engine/events.py), filtered and printed as Docker's CLI does.

Without ``--since``/``--until`` only new events are shown, until interrupted; ``--since``
starts in the past; ``--until`` ends the stream (at once if it is past). The filters are
moby's daemon/events/filter.go: different keys must all hold, values of one key are
alternatives; ``container``/``network``/``volume`` match an id or name by prefix,
``image`` an image's id or name (with or without its tag), or a container's image;
``event`` the action, ``type`` the object type, ``label`` a ``key`` or ``key=value``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .cliutil import add_command
from .engine import Engine
from .errors import InvalidInput

FILTER_KEYS = ("container", "event", "image", "label", "network", "type", "volume", "daemon",
               "scope", "plugin", "node", "service", "secret", "config")  # fmt: skip


def _stamp(ns: int) -> str:
    """RFC 3339 with 9 digits in UTC (jsonmessage.RFC3339NanoFixed)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}"


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise InvalidInput(f"bad format of filter (expected name=value): {item}")
        if key not in FILTER_KEYS:
            raise InvalidInput(f"Invalid filter '{key}'")
        out.setdefault(key, []).append(value)
    return out


def _fuzzy(values: list[str] | None, *sources: str) -> bool:
    return values is None or any(s and s.startswith(v) for v in values for s in sources)


def _exact(values: list[str] | None, *sources: str) -> bool:
    return values is None or any(s == v for v in values for s in sources)


def _strip_tag(name: str) -> str:
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def include(ev: dict, f: dict[str, list[str]]) -> bool:
    kind, action, actor = ev["Type"], ev["Action"], ev["Actor"]
    attrs = actor.get("Attributes") or {}
    name = attrs.get("name", "")
    if "event" in f:
        fuzzy = {"health_status", "exec_create", "exec_start"} & set(f["event"])
        if not (_fuzzy if fuzzy else _exact)(f["event"], action):
            return False
    if not _exact(f.get("type"), kind) or not _exact(f.get("scope"), ev.get("scope", "local")):
        return False
    for key in ("container", "network", "volume"):
        if key in f and not (kind == key and _fuzzy(f[key], actor["ID"], name)):
            return False
    if "image" in f:
        image_name = name if kind == "image" else attrs.get("image", "")
        sources = (actor["ID"], image_name, _strip_tag(actor["ID"]), _strip_tag(image_name))
        if not _exact(f["image"], *sources):
            return False
    for key in ("plugin", "node", "service", "secret", "config", "daemon"):
        if key in f:
            return False  # pydock has none of these objects, so no event of theirs
    for want in f.get("label", []):
        k, eq, v = want.partition("=")
        if k not in attrs or (eq and attrs[k] != v):
            return False
    return True


def pretty(ev: dict) -> str:
    """Docker's line: time, type, action, actor id, then the attributes sorted."""
    attrs = ev["Actor"].get("Attributes") or {}
    line = f"{_stamp(ev['timeNano'])}Z {ev['Type']} {ev['Action']} {ev['Actor']['ID']}"
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line + "\n"


def _templated(fmt: str, ev: dict) -> str:
    from .gotemplate import StrMap, Struct, format_list

    actor = Struct("events.Actor", {"ID": ev["Actor"]["ID"],
                                    "Attributes": StrMap(ev["Actor"].get("Attributes") or {})},
                   json_value=ev["Actor"])  # fmt: skip
    data = {"Status": ev.get("status", ""), "ID": ev.get("id", ""), "From": ev.get("from", ""),
            "Type": ev["Type"], "Action": ev["Action"], "Actor": actor,
            "Scope": ev.get("scope", "local"), "Time": ev["time"],
            "TimeNano": ev["timeNano"]}  # fmt: skip
    return format_list(fmt, [Struct("events.Message", data, json_value=ev)])


def cmd_events(engine: Engine, a: argparse.Namespace) -> int:
    from . import events
    from .logtime import parse_bound

    since = parse_bound(a.since, "since")
    until = parse_bound(a.until, "until")
    filters = parse_filters(a.filter)
    path = os.path.join(engine.root, events.FILE)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    f = os.fdopen(fd, "rb")
    if since is None and until is None:
        f.seek(0, os.SEEK_END)  # Docker: only what happens from now on
    seen, skip_to = 0, 0
    try:
        while True:
            for raw in f.readlines():
                if not raw.endswith(b"\n"):
                    f.seek(-len(raw), 1)  # half-appended: read it whole next round
                    break
                try:
                    ev = json.loads(raw)
                except ValueError:
                    continue  # a line cut by a trim
                if ev["timeNano"] <= skip_to:
                    continue  # read before the file was trimmed
                seen = max(seen, ev["timeNano"])
                stamp = _stamp(ev["timeNano"])
                if until and stamp > until:
                    return 0
                if (since and stamp < since) or not include(ev, filters):
                    continue
                sys.stdout.write(_templated(a.format, ev) if a.format else pretty(ev))
                sys.stdout.flush()
            if until and _stamp(time.time_ns()) > until:
                return 0
            time.sleep(0.1)
            try:
                moved = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                moved = False
            if moved:  # trimmed (events.py): the new file holds what we have not read
                f.close()
                f = open(path, "rb")  # noqa: SIM115 - closed in finally
                skip_to = seen
    except KeyboardInterrupt:
        return 0
    finally:
        f.close()


def setup(sub) -> None:
    """Register ``events`` on the ``pydock`` subparsers."""
    p = add_command(sub, "events", cmd_events)
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output based on conditions provided")  # fmt: skip
    p.add_argument("--format", help="format the output using the given Go template")
    p.add_argument("--since", help="show all events created since timestamp")
    p.add_argument("--until", help="stream events until this timestamp")
