"""The event log: what every state-changing command appends, what ``pydock events`` reads.

pydock has no daemon to keep Docker's in-memory event ring, so events are a file,
``<root>/events.log``: one JSON object a line, Docker's events.Message
(``Type``, ``Action``, ``Actor {ID, Attributes}``, ``scope``, ``time``, ``timeNano``, and
for containers and images the old ``status``/``id``/``from``). Each event is one
``write`` to a file opened ``O_APPEND``, so lines of concurrent commands never interleave
and no lock is taken. There is no fsync: an event reports a change that its store has
already made durable (or not); it is a notification, and an fsync would cost `pydock run`
milliseconds for each of its three events (Docker's own events do not survive a daemon
restart at all). The file is cut to its newer half past MAX_BYTES by the writer
that crosses it (under a lock, rare).

This module is on the start path: standard library C modules only (``_json``), no
``json``/``datetime``.
"""

from __future__ import annotations

import os
import time
from _json import encode_basestring_ascii as _jstr

FILE = "events.log"
MAX_BYTES = 8 << 20


def _attrs_json(attrs: dict[str, str]) -> str:
    return "{" + ",".join(f"{_jstr(k)}:{_jstr(str(v))}" for k, v in sorted(attrs.items())) + "}"


def emit(root, kind: str, action: str, actor: str, attrs: dict[str, str] | None = None) -> None:  # noqa: ANN001
    """Append one event; never fails the command that reports it (a full disk or a
    read-only root loses the event, not the change)."""
    ns = time.time_ns()
    attrs = attrs or {}
    old = ""
    if kind in ("container", "image"):  # the API's deprecated fields, as Docker still sends
        old = f'"status":{_jstr(action)},"id":{_jstr(actor)},'
        if kind == "container" and "image" in attrs:
            old += f'"from":{_jstr(attrs["image"])},'
    line = (
        f'{{{old}"Type":{_jstr(kind)},"Action":{_jstr(action)},"Actor":{{"ID":{_jstr(actor)},'
        f'"Attributes":{_attrs_json(attrs)}}},"scope":"local","time":{ns // 10**9},'
        f'"timeNano":{ns}}}\n'
    ).encode()
    path = os.path.join(os.fspath(root), FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            _trim(path)
    except OSError:
        pass


def container(root, rec: dict, action: str, **more: str) -> None:  # noqa: ANN001
    """A container event with Docker's attributes: its labels, image and name."""
    attrs = dict(rec["Config"].get("Labels") or {})
    attrs.update(image=rec["Config"].get("Image", ""), name=rec.get("Name", "").lstrip("/"))
    attrs.update(more)
    emit(root, "container", action, rec["Id"], attrs)


def _trim(path: str) -> None:
    """Keep the newer half of the log (whole lines), replaced atomically."""
    import fcntl

    with open(path + ".lock", "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size <= MAX_BYTES:
                    return  # another writer trimmed it
                f.seek(-(MAX_BYTES // 2), os.SEEK_END)
                f.readline()
                rest = f.read()
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "wb") as out:
                out.write(rest)
            os.replace(tmp, path)
        except OSError:
            pass
