"""The container store: one directory per container holding its record and its bundle.

::

    containers/<id>/container.json   Docker-inspect-shaped record (Config, HostConfig, State)
    containers/<id>/config.json      the OCI runtime spec (the bundle the runtime runs)
    containers/<id>/<id>-json.log    Docker's json-file log
    containers/<id>/lock             flock(2)ed by every command that reads a record to
                                     change it or the container (see ContainerStore.lock)
    names/<name> -> <id>             a symlink per name: creating it is the atomic test
                                     that a name is free, with no lock and no scan
    containers/.new-<id>-<owner>/    a container being added by process <owner> (pid-start)
    containers/.rm-<id>/             a container being removed

A container appears and disappears by rename(2), so whatever a SIGKILL interrupts, a
directory under its final name always holds its record: the new one is staged (record
written, name claimed) under ``.new-`` and renamed into place; a removal renames it to
``.rm-`` first, so nobody can find, lock or recreate files in it, then deletes it. What a
killed process leaves under either prefix is found by :meth:`ContainerStore.strays` and
deleted by :func:`pydock.engine.orphans.sweep_containers`.

Records are replaced atomically but not fsync'ed (see fsutil): they describe processes that
would not survive a host crash either.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .errors import Conflict, InvalidInput, NotFound
from .fsutil import FileLock, read_json, write_json, write_new

#: prefixes of the directories a container passes through (see the module docstring)
STAGE_PREFIX = ".new-"
REMOVED_PREFIX = ".rm-"

_ADJECTIVES = (
    "agile",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "crisp",
    "curious",
    "deft",
    "eager",
    "fair",
    "gentle",
    "glad",
    "keen",
    "kind",
    "lively",
    "lucid",
    "merry",
    "nimble",
    "patient",
    "plucky",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "serene",
    "sharp",
    "steady",
    "swift",
    "witty",
)
_SURNAMES = (
    "babbage",
    "bell",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "euler",
    "faraday",
    "fermi",
    "franklin",
    "gauss",
    "hamilton",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamarr",
    "lovelace",
    "maxwell",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wozniak",
)


def now() -> str:
    """RFC 3339 in UTC with nanosecond digits, as Docker writes times (time, not datetime:
    this runs on the start path and datetime is slower to import)."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def parse_time(s: str):  # -> datetime.datetime | None
    import datetime

    if not s or s.startswith("0001-"):
        return None
    return datetime.datetime.fromisoformat(s[:26].rstrip("Z") + "+00:00")


def _choice(items: tuple[str, ...]) -> str:
    """A uniform pick from os.urandom (random and secrets cost imports on the start path)."""
    return items[int.from_bytes(os.urandom(4), "little") % len(items)]


_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")


def valid_name(name: str, shortest: int = 2) -> bool:
    """Docker's ``^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`` for containers (moby daemon/names.go):
    ASCII only, at least two characters (``shortest``: 1 for network names)."""
    return (
        len(name) >= max(shortest, 1)
        and name[0] in _NAME_FIRST
        and all(c in _NAME_REST for c in name)
    )


def link_name(name: str) -> str:
    """The entry of names/ that claims ``name``: the name itself, or, for a name longer
    than a file name may be (Docker sets no limit), ``~`` and its sha256 (``~`` is in no
    valid name, and a ``~`` entry maps to itself)."""
    if len(name) <= 255:
        return name
    import hashlib

    return "~" + hashlib.sha256(name.encode()).hexdigest()


def proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: with the pid, it names one process for its whole life."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()[19].decode()


def alive(owner: dict | None) -> bool:
    """Whether the process recorded as ``{"Pid", "Start"}`` still runs (and is that one).

    A zombie is not alive: a detached monitor's parent is init, which may reap late.
    """
    if not owner:
        return False
    try:
        with open(f"/proc/{owner['Pid']}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    fields = stat[stat.rindex(b")") + 2 :].split()
    return fields[0] not in (b"Z", b"X") and fields[19].decode() == owner["Start"]


def me() -> dict:
    pid = os.getpid()
    return {"Pid": pid, "Start": proc_start_time(pid)}


class _ContainerLock(FileLock):
    """A FileLock whose file lives in a container's directory: gone means no container."""

    def acquire(self, shared: bool = False) -> FileLock:
        try:
            return super().acquire(shared)
        except FileNotFoundError:
            cid = os.path.basename(os.path.dirname(self.path))
            raise NotFound(f"No such container: {cid}") from None


class ContainerStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "containers"
        self.names = self.root / "names"

    def path(self, cid: str) -> Path:
        return self.dir / cid

    def ids(self) -> list[str]:
        try:
            return [n for n in os.listdir(self.dir) if len(n) == 64]
        except FileNotFoundError:
            return []

    def load(self, cid: str) -> dict:
        try:
            return read_json(self.dir / cid / "container.json")
        except FileNotFoundError:
            raise NotFound(f"No such container: {cid}") from None

    def save(self, rec: dict) -> None:
        write_json(self.dir / rec["Id"] / "container.json", rec)

    def lock(self, cid: str) -> FileLock:
        """The container's lock (``with store.lock(cid): load, act, save``).

        Daemonless, every command and every monitor acts on a container itself, so each
        check-then-act (is it running? start it; is it paused? thaw, then kill; load,
        rename, save) holds this exclusive flock: two ``start``s cannot both launch a
        monitor, a ``rename`` cannot overwrite the state a monitor just recorded, a
        ``pause`` cannot freeze between a ``stop``'s check and its SIGKILL. Nobody holds it
        while waiting for a container to exit. The descriptor is close-on-exec, and a
        monitor forked under a ``start``'s lock shares it until it execs its lean half.
        """
        return _ContainerLock(self.dir / cid / "lock")

    def all(self) -> list[dict]:
        return self.scan()[0]

    def scan(self) -> tuple[list[dict], list[str]]:
        """Every record, and the strays beside them (one listdir): staged or half-removed
        directories (``.new-``, ``.rm-``) and container directories without a record
        (left by versions that removed in place). Strays are candidates for
        orphans.sweep_containers, which decides under locks whether they are dead."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return [], []
        out, strays = [], []
        for n in names:
            if len(n) != 64:
                if n.startswith((STAGE_PREFIX, REMOVED_PREFIX)):
                    strays.append(n)
                continue
            try:
                out.append(self.load(n))
            except NotFound:
                strays.append(n)
            except ValueError:
                continue  # unreadable: kept for a person to look at
        return out, strays

    def resolve(self, ref: str) -> str:
        """Full id for a name, a full id or an unambiguous id prefix."""
        name = ref.lstrip("/")
        try:
            return os.readlink(self.names / link_name(name))
        except OSError:
            pass
        hits = [c for c in self.ids() if c.startswith(ref)] if ref else []
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InvalidInput(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def reserve_name(self, name: str | None, cid: str) -> str:
        """Claim ``name`` (or a generated one) for ``cid``; the symlink is the claim."""
        self.names.mkdir(mode=0o700, parents=True, exist_ok=True)
        if name is not None:
            if not valid_name(name):
                raise InvalidInput(
                    f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                    125,
                )
            try:
                os.symlink(cid, self.names / link_name(name))
            except FileExistsError:
                other = os.readlink(self.names / link_name(name))
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{other}". You have to remove (or rename) that container to be able to '
                    "reuse that name.",
                    125,
                ) from None
            return name
        for attempt in range(100):
            name = f"{_choice(_ADJECTIVES)}_{_choice(_SURNAMES)}"
            if attempt > 10:
                name += str(int.from_bytes(os.urandom(1), "little") % 100)
            try:
                os.symlink(cid, self.names / link_name(name))
                return name
            except FileExistsError:
                continue
        raise Conflict("could not generate a free container name", 125)

    def add(self, rec: dict, name: str | None) -> str:
        """Add ``rec`` (its Name is set here) under ``name`` or a generated one; the name.

        Staged: an empty ``.new-<id>-<owner>`` directory (owner: the record's, who may be
        asked whether it still runs), then the name's link, then the record, then the
        rename into place. Each crash point leaves a stage whose owner is dead.
        """
        cid = rec["Id"]
        owner = rec["State"]["Owner"]
        # root's only, as Docker's: the record and the bundle hold the environment (-e
        # secrets), and whoever could write the bundle would choose what root runs
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        stage = self.dir / f"{STAGE_PREFIX}{cid}-{owner['Pid']}-{owner['Start']}"
        stage.mkdir(mode=0o700)
        cname = None
        try:
            cname = self.reserve_name(name, cid)
            rec["Name"] = "/" + cname
            # the stage is nobody else's yet: no temporary file and rename needed
            write_new(stage / "container.json", json.dumps(rec, separators=(",", ":")).encode())
            os.rename(stage, self.dir / cid)
        except BaseException:
            if cname is not None:
                self.unlink_name(cname, cid)
            delete_tree(stage)
            raise
        return cname

    def unlink_name(self, name: str, cid: str) -> None:
        """Drop ``names/<name>`` if it still points at ``cid`` (not a successor's)."""
        try:
            if os.readlink(self.names / link_name(name)) == cid:
                os.unlink(self.names / link_name(name))
        except OSError:
            pass

    def remove(self, rec: dict) -> None:
        """Remove the record's directory and name: renamed away first (the container is
        gone at once, for every reader and every lock), then deleted."""
        cid = rec["Id"]
        gone = self.dir / f"{REMOVED_PREFIX}{cid}"
        try:
            os.rename(self.dir / cid, gone)
        except FileNotFoundError:
            pass  # removed already, or never added
        except OSError:  # a .rm- left by a removal that was killed: finish that first
            delete_tree(gone)
            try:
                os.rename(self.dir / cid, gone)
            except FileNotFoundError:
                pass
        name = rec.get("Name", "").lstrip("/")
        if name:
            self.unlink_name(name, cid)
        delete_tree(gone)


def delete_tree(d: Path) -> None:
    """Delete a container directory, tolerating a concurrent sweep deleting it too. The
    usual one is a handful of files: no shutil import on the --rm path."""
    try:
        for entry in os.scandir(d):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass
        os.rmdir(d)
    except FileNotFoundError:
        pass
    except OSError:
        import shutil

        shutil.rmtree(d, ignore_errors=True)
