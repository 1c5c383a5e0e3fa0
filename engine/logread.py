"""``logs``: a container's json-file (or pydock's local) log, across its rotated files.

The files are read oldest first (``.N[.gz]`` ... ``.1``, then the live one); ``--tail``
counts over all of them. ``--follow`` stays on the live file and, when the monitor rotates
it (a new inode) or truncates it (max-file 1), finishes the old one and goes on at the
new one's start; it ends when the container is no longer running (Docker's rule).

``--details`` puts each entry's extras first (the log-opt labels/env attrs, sorted,
``k=v`` query-escaped, comma-joined) and a space: with no extras, just the space, as
Docker's API writes it; ``--timestamps`` goes before that.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from urllib.parse import quote_plus

from .containers import alive
from .errors import InvalidInput
from .logconfig import files_oldest_first, log_file, rotation
from .logtime import parse_bound


class _Printer:
    def __init__(self, a) -> None:  # noqa: ANN001 - argparse namespace
        self.since = parse_bound(a.since, "since")
        self.until = parse_bound(a.until, "until")
        self.timestamps, self.details = a.timestamps, getattr(a, "details", False)

    def show(self, raw: bytes) -> bool:
        """Print one entry; False once past --until (nothing later is shown)."""
        entry = json.loads(raw)
        stamp = entry["time"]
        if self.until and stamp[:29] > self.until:
            return False
        if self.since and stamp[:29] < self.since:
            return True
        head = stamp + " " if self.timestamps else ""
        if self.details:
            attrs = entry.get("attrs") or {}
            head += ",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(attrs.items()))
            head += " "
        out = sys.stdout if entry["stream"] == "stdout" else sys.stderr
        out.write(head + entry["log"])
        out.flush()
        return True


def _lines(path: str) -> list[bytes]:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return f.readlines()
    except FileNotFoundError:
        return []  # rotated away meanwhile


def show(engine, rec: dict, a) -> int:  # noqa: ANN001
    """Print the container's log as ``a`` (the parsed ``logs`` flags) asks."""
    cdir = str(engine.containers.path(rec["Id"]))
    path = log_file(rec, cdir)
    if path is None:
        print("Error response from daemon: configured logging driver does not support reading",
              file=sys.stderr)  # fmt: skip
        return 1
    n = None
    if a.tail not in (None, "all"):
        try:
            n = int(a.tail)
        except ValueError:
            raise InvalidInput(f"invalid value for --tail: {a.tail}") from None
    printer = _Printer(a)
    try:
        live = open(path, "rb")  # noqa: SIM115 - followed below
    except FileNotFoundError:
        return 0
    with live:
        _, files, _ = rotation(rec["HostConfig"].get("LogConfig") or {})
        lines = [x for p in files_oldest_first(path, files)[:-1] for x in _lines(p)]
        lines += live.readlines()
        if n is not None:
            lines = lines[-n:] if n > 0 else []
        while True:
            for raw in lines:
                if not raw.endswith(b"\n"):
                    live.seek(-len(raw), 1)  # half-written by the monitor: read it next round
                    break
                if not printer.show(raw):
                    return 0
            if not a.follow:
                return 0
            lines = live.readlines()
            if lines:
                continue
            moved = _moved(path, live)
            if moved is not None:
                lines = live.readlines() + (moved.readlines() if moved is not live else [])
                if moved is not live:
                    live.close()
                    live = moved
                continue
            # --follow ends when the container is no longer running (Docker's rule)
            st = engine.containers.load(rec["Id"])["State"]
            if st["Status"] != "running" or not alive(st.get("Owner")):
                lines = live.readlines()
                if not lines:
                    return 0
            time.sleep(0.1)


def _moved(path: str, live):  # noqa: ANN001, ANN202 - a binary file object, or None
    """The live file anew if the monitor rotated (new inode) or truncated it, else None."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return None  # between the rename and the new file: look again next round
    mine = os.fstat(live.fileno())
    if now.st_ino != mine.st_ino:
        return open(path, "rb")  # noqa: SIM115 - the caller keeps it
    if mine.st_size < live.tell():
        live.seek(0)
        return live
    return None
